"""The release binary keeps the hardening DEVELOPERS.md asks for: PIE, full RELRO (BIND_NOW), a
non-executable stack, stack protector and _FORTIFY_SOURCE checks. Sanitizer builds turn hardening off
(-Dhardening=false), so there the test is skipped with that reason.
"""
import json
import subprocess

import pytest

import harness


def build_option(name):
    info = harness.build_dir() / "meson-info" / "intro-buildoptions.json"
    for opt in json.loads(info.read_text()):
        if opt["name"] == name:
            return opt["value"]
    raise KeyError(name)


@pytest.fixture(scope="module")
def elf():
    if not build_option("hardening"):
        pytest.skip("this build was configured with -Dhardening=false (sanitizer build)")
    path = harness.paddock_path()

    def readelf(*args):
        return subprocess.run(["readelf", *args, path], capture_output=True, text=True, check=True).stdout

    return readelf


def test_position_independent(elf):
    assert "DYN (Position-Independent Executable file)" in elf("-h")


def test_full_relro(elf):
    dyn = elf("-d")
    assert "BIND_NOW" in dyn or "NOW" in dyn.split("FLAGS_1", 1)[-1]
    assert "GNU_RELRO" in elf("-l")


def test_stack_not_executable(elf):
    seg = elf("-lW")
    line = next(l for l in seg.splitlines() if "GNU_STACK" in l)
    assert "RWE" not in line and line.split()[-2] == "RW"


def test_stack_protector_and_fortify(elf):
    syms = elf("-W", "--dyn-syms")
    assert "__stack_chk_fail" in syms
    assert "_chk@" in syms  # glibc's checked variants: _FORTIFY_SOURCE is in effect


def test_openssl_not_linked(elf):
    """OpenSSL is loaded on first use (src/gateway/ossl.h), never at startup."""
    needed = [l for l in elf("-d").splitlines() if "(NEEDED)" in l]
    assert needed and not any("libssl" in l or "libcrypto" in l for l in needed), needed
