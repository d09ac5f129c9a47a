"""`make demo` is the end-to-end test of the standalone product: scripts/demo.sh with the binary under
test, one-shot (no terminal) and interactive (a terminal: the shell it opens inside the same sandbox).
Each run must report every outcome as expected, exit 0, and leave nothing behind: its origin stopped
(nothing listens on its loopback address any more) and its temporary directory removed."""

import os
import pty
import re
import select
import socket
import subprocess
import time

import pytest

import harness

SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(SRC_DIR, "scripts", "demo.sh")
ORIGIN = ("127.77.0.1", 443)
OUTCOMES = 8


def env(**extra):
    e = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
         "USER": "root", "LANG": "C.UTF-8", "TERM": "dumb", "PADDOCK_BIN": harness.paddock_path()}
    e.update(extra)
    return e


def assert_left_nothing(out):
    work = re.search(r"(/tmp/paddock-demo\.\w+)/demo\.yaml", out)
    assert work, out
    assert not os.path.exists(work.group(1)), "the demo's directory was not removed"
    s = socket.socket()
    s.settimeout(2)
    try:
        assert s.connect_ex(ORIGIN) != 0, "the demo's origin is still listening"
    finally:
        s.close()


def assert_all_outcomes_ok(out):
    rows = re.findall(r"^  \d\. .*?(allowed|refused)\s+(allowed|refused)\s+(ok|UNEXPECTED)\s*$", out, re.M)
    assert len(rows) == OUTCOMES, out
    assert all(r[0] == r[1] and r[2] == "ok" for r in rows), out
    assert '"x-api-key": "received, matches the demo key"' in out
    assert "Every outcome was the expected one" in out


@pytest.fixture(autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("the demo binds port 443 on loopback: needs root")


def test_demo_one_shot():
    r = subprocess.run(["bash", DEMO], capture_output=True, text=True, timeout=180, env=env(PADDOCK_DEMO_ONESHOT="1"),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert_all_outcomes_ok(r.stdout)
    assert "You are inside the same sandbox" not in r.stdout
    assert_left_nothing(r.stdout)


def test_demo_in_a_terminal_opens_a_shell_in_the_same_sandbox():
    master, slave = pty.openpty()
    p = subprocess.Popen(["bash", DEMO], stdin=slave, stdout=slave, stderr=slave, env=env(),
                         start_new_session=True)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 1)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break  # the terminal closed: the demo is done
                if not chunk:
                    break
                out += chunk
            if not sent and b"paddock-demo:" in out:
                os.write(master, b"echo inside-$((6*7)) $(hostname) $(pwd)\nexit\n")
                sent = True
            if p.poll() is not None and not r:
                break
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    text = out.decode(errors="replace").replace("\r\n", "\n")
    assert sent, text[-4000:]
    assert rc == 0, text[-4000:]
    assert "inside-42 paddock /workspace" in text, text[-4000:]
    assert_all_outcomes_ok(text)
    assert_left_nothing(text)
