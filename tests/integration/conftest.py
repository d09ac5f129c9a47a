"""Fixtures for the black-box tests: every daemon started through them is stopped at teardown."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

# Sanitizer builds (build-*-asan): UBSan keeps running after a report, and LeakSanitizer only changes the exit
# status, so every daemon's stderr is checked at teardown.
SANITIZER_MARKERS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer")


@pytest.fixture
def daemons():
    """A factory: daemons(argv, **kw) -> harness.Daemon; all are stopped (SIGTERM, then SIGKILL) at teardown."""
    started = []

    def start(argv, **kw):
        d = harness.Daemon(argv, **kw)
        started.append(d)
        return d

    yield start
    reports = []
    for d in started:
        d.stop()
        text = d.stderr_text()
        if any(m in text for m in SANITIZER_MARKERS):
            reports.append(f"{d.argv}:\n{text}")
    if reports:
        pytest.fail("sanitizer report in daemon stderr:\n" + "\n\n".join(reports), pytrace=False)


@pytest.fixture
def testd(daemons):
    """testd(*args, **kw): start paddock-testd with these arguments and wait until it listens."""

    def start(*args, **kw):
        return daemons([harness.testd_path(), *args], **kw)

    return start


@pytest.fixture
def server(testd):
    """A default paddock-testd on an ephemeral loopback port."""
    return testd("--listen", "127.0.0.1:0", "--workers", "2")


@pytest.fixture
def paddock():
    return harness.paddock_path()
