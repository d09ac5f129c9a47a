"""Black-box tests of `paddock doctor` (src/cli/cmd_doctor.c over src/sandbox/probe.h).

The expectations describe this kind of host (a recent kernel with user namespaces, seccomp, Landlock and pidfd)
but hold whichever cgroup version it mounts: the cgroup layer may be available through v1 or v2.
"""

import glob
import json
import os
import pty
import shutil
import subprocess
import time

import pytest

from harness import IO_TIMEOUT

IDS = ["userns", "mountns", "pidns", "netns", "utsns", "ipcns", "cgroupns", "seccomp", "no_new_privs",
       "caps", "landlock", "pidfd", "cgroup", "tmpfs", "devpts", "tty"]
# Present on this host for root and unprivileged users alike.
KERNEL_LAYERS = ["userns", "mountns", "pidns", "netns", "utsns", "ipcns", "cgroupns", "seccomp",
                 "no_new_privs", "caps", "landlock", "pidfd", "tmpfs", "devpts"]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def run(argv, stdin=subprocess.DEVNULL):
    return subprocess.run(argv, capture_output=True, text=True, timeout=IO_TIMEOUT, stdin=stdin)


def table(stdout):
    """{id: (state, detail)} from the table rows."""
    rows = {}
    lines = stdout.splitlines()
    assert lines[0].split() == ["LAYER", "STATE", "DETAIL"]
    for line in lines[1:]:
        if not line.strip():
            break
        layer, rest = line[:13].strip(), line[14:]
        state, detail = rest[:10].strip(), rest[11:]
        rows[layer] = (state, detail)
    return rows


def probe_groups():
    """Cgroup test groups anywhere under /sys/fs/cgroup."""
    return glob.glob("/sys/fs/cgroup/**/paddock-probe-*", recursive=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="these expectations are for root")


@needs_root
def test_doctor_as_root_everything_available(paddock):
    assert probe_groups() == []
    t0 = time.monotonic()
    r = run([paddock, "doctor"])
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    rows = table(r.stdout)
    assert list(rows) == IDS
    for layer in KERNEL_LAYERS + ["cgroup"]:
        state, detail = rows[layer]
        assert state in ("available", "in use"), f"{layer}: {state} {detail}"
        assert detail
    assert "unprivileged too" in rows["userns"][1]
    assert "ABI " in rows["landlock"][1]
    assert "SECCOMP_RET_ERRNO verified" in rows["seccomp"][1]
    assert "x86_64" in rows["seccomp"][1] and "i386 ABI" in rows["seccomp"][1]
    assert "x32 ABI" in rows["seccomp"][1]
    assert rows["cgroup"][1].startswith(("cgroup v1:", "cgroup v2:"))
    # stdin is /dev/null here: the terminal is informational, never a reason to fail
    assert rows["tty"][0] == "missing" and "not a terminal" in rows["tty"][1]
    assert "ok: every layer the sandbox needs is available" in r.stdout
    assert probe_groups() == []
    assert elapsed < 2.0  # the probe itself takes milliseconds; this only catches a hang


@needs_root
def test_doctor_json_has_every_layer(paddock):
    r = run([paddock, "doctor", "--json"])
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["ok"] is True
    assert d["not_available"] == []
    assert [e["id"] for e in d["layers"]] == IDS
    for e in d["layers"]:
        assert set(e) == {"id", "state", "in_use", "required", "detail"}
        assert e["state"] in ("available", "partial", "missing")
        assert e["detail"]
        assert e["required"] is (e["id"] != "tty")
    by_id = {e["id"]: e for e in d["layers"]}
    assert by_id["cgroup"]["state"] == "available"
    assert by_id["seccomp"]["in_use"] is False  # nothing confines the doctor itself


def test_doctor_json_and_table_agree(paddock):
    t = table(run([paddock, "doctor"]).stdout)
    d = json.loads(run([paddock, "doctor", "--json"]).stdout)
    for e in d["layers"]:
        state = "in use" if e["in_use"] and e["state"] == "available" else e["state"]
        assert t[e["id"]][0] == state


def test_doctor_with_a_terminal(paddock):
    master, slave = pty.openpty()
    try:
        r = run([paddock, "doctor", "--json"], stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    tty = {e["id"]: e for e in json.loads(r.stdout)["layers"]}["tty"]
    assert tty["state"] == "available" and "/dev/pts/" in tty["detail"]


def test_doctor_unknown_option(paddock):
    r = run([paddock, "doctor", "--bogus"])
    assert r.returncode == 2
    assert "paddock doctor: unknown option '--bogus'" in r.stderr
    assert r.stdout == ""


def test_doctor_takes_no_arguments(paddock):
    r = run([paddock, "doctor", "extra"])
    assert r.returncode == 2
    assert "takes no arguments" in r.stderr
    assert r.stdout == ""


def test_doctor_help_and_listing(paddock):
    r = run([paddock, "doctor", "--help"])
    assert r.returncode == 0 and r.stdout.startswith("usage: paddock doctor")
    assert "\n  doctor " in run([paddock, "--help"]).stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to become nobody")
def test_doctor_as_nobody(paddock):
    r = run(AS_NOBODY + [paddock, "doctor", "--json"])
    assert r.returncode in (0, 1), r.stderr
    d = json.loads(r.stdout)
    by_id = {e["id"]: e for e in d["layers"]}
    assert list(by_id) == IDS
    # user namespaces work unprivileged on this kernel, and with them every other namespace and mount
    for layer in KERNEL_LAYERS:
        assert by_id[layer]["state"] == "available", f"{layer}: {by_id[layer]['detail']}"
    assert "uid 65534" in by_id["userns"]["detail"]
    assert "inside a new user namespace" in by_id["caps"]["detail"]
    cg = by_id["cgroup"]
    assert cg["detail"]
    if cg["state"] != "available":
        # no delegated subtree for nobody: the reason names the errno, and the exit status says so
        assert "Permission denied" in cg["detail"] or "rlimits only" in cg["detail"]
        assert r.returncode == 1
        assert "cgroup" in d["not_available"]
    assert (r.returncode == 0) == d["ok"]

    t = run(AS_NOBODY + [paddock, "doctor"])
    assert t.returncode == r.returncode
    if t.returncode == 1:
        tail = t.stdout.strip().splitlines()[-2:]
        assert tail[0].startswith("not available: ") and "cgroup" in tail[0]
        assert "--allow-degraded=LAYER" in tail[1]
    assert probe_groups() == []
