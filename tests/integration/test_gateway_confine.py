"""Black-box tests of the gateway's confinement (src/gateway/confine.h): after startup the process runs
as --user, with no capability, no_new_privs and its seccomp filter, and the gateway's behaviours
(plain HTTP, CONNECT, reload, budget persistence, aliases over TLS) still work under it. The whole of
test_gateway.py also runs with the filter on (the default). Tests that switch users need root."""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

import harness
from test_gateway import (SECRET, access_lines, base_cfg, echo, origin, raw_req, send,  # noqa: F401
                          tls_cfg, tls_origin)

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="switching users needs root")
CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def nobody():
    return pwd.getpwnam("nobody")


def proc_status(pid, tid=None):
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


@pytest.fixture
def shared_dir():
    """A directory the target user can read (pytest's tmp_path is 0700 root), removed afterwards."""
    d = tempfile.mkdtemp(prefix="pd-confine-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def gateway(daemons, shared_dir):
    started = []

    def start(cfg, *args, name="gw.json"):
        path = os.path.join(shared_dir, name)
        with open(path, "w") as f:
            f.write(json.dumps(cfg))
        os.chmod(path, 0o644)
        env = dict(os.environ, PD_TEST_GW_SECRET=SECRET)
        d = daemons([harness.paddock_path(), "gateway", "--config", path, "--listen", "127.0.0.1:0",
                     "--admin", "127.0.0.1:0", "--workers", "2", *args], env=env)
        by = {int(r["listener"]): int(r["port"]) for r in d.listening}
        d.proxy_port, d.admin_port = by[0], by[1]
        d.config_path = path
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()
        assert SECRET not in d.stderr_text(), "the credential value appeared in a log line"


def write_cfg(gw, cfg):
    with open(gw.config_path, "w") as f:
        f.write(json.dumps(cfg))


def assert_confined(pid, uid, gid, seccomp="2"):
    tids = os.listdir(f"/proc/{pid}/task")
    assert len(tids) >= 3, tids  # main + 2 workers: the filter must cover threads started after it
    for tid in tids:
        st = proc_status(pid, tid)
        assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
        assert st["Gid"].split() == [str(gid)] * 4, st["Gid"]
        assert st["Groups"] == "", st["Groups"]
        assert st["NoNewPrivs"] == "1"
        assert st["Seccomp"] == seccomp, (tid, st["Seccomp"])
        for k in CAP_FIELDS:
            assert int(st[k], 16) == 0, (k, st[k])


# ---------------------------------------------------------------- the process state


@needs_root
def test_user_nobody_confined(gateway, origin):
    pw = nobody()
    gw = gateway(base_cfg(origin.port), "--user", "nobody")
    assert_confined(gw.pid, pw.pw_uid, pw.pw_gid)
    (rec,) = gw.records("confined")
    assert rec["uid"] == pw.pw_uid and rec["gid"] == pw.pw_gid
    assert rec["no_new_privs"] is True and rec["seccomp"] == "filter" and rec["syscalls_allowed"] > 50
    assert not gw.records("running_as_root")
    # The working directory left behind is "/".
    assert os.readlink(f"/proc/{gw.pid}/cwd") == "/"


@needs_root
def test_root_without_user_warns_and_still_confines(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    (w,) = gw.records("running_as_root")
    assert w["level"] == "warn" and "pass --user to drop privileges" in w["reason"]
    assert_confined(gw.pid, 0, 0)
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/x", f"api.test:{origin.port}"))
    assert r.status == 200


@needs_root
def test_no_seccomp_is_loud(gateway, origin):
    pw = nobody()
    gw = gateway(base_cfg(origin.port), "--user", "nobody", "--no-seccomp")
    assert_confined(gw.pid, pw.pw_uid, pw.pw_gid, seccomp="0")
    (w,) = gw.records("seccomp_disabled")
    assert w["level"] == "warn" and "debugging only" in w["reason"]
    assert gw.records("confined")[0]["seccomp"] == "disabled"


def test_unknown_user_fails(shared_dir, origin):
    path = os.path.join(shared_dir, "gw.json")
    with open(path, "w") as f:
        f.write(json.dumps(base_cfg(origin.port)))
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", path, "--listen", "127.0.0.1:0",
                        "--user", "no-such-user"], capture_output=True, timeout=10,
                       env=dict(os.environ, PD_TEST_GW_SECRET=SECRET))
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert "confine: --user no-such-user: no such user" in err, err
    assert not any(json.loads(ln).get("event") == "listening" for ln in err.splitlines() if ln.startswith("{"))


@needs_root
def test_non_root_cannot_switch_user(shared_dir, origin):
    pw = nobody()
    path = os.path.join(shared_dir, "gw.json")
    with open(path, "w") as f:
        f.write(json.dumps(base_cfg(origin.port)))
    os.chmod(path, 0o644)
    other = next(p.pw_name for p in pwd.getpwall() if p.pw_uid not in (0, pw.pw_uid))
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", path, "--listen", "127.0.0.1:0",
                        "--user", other], capture_output=True, timeout=10, user=pw.pw_uid, group=pw.pw_gid,
                       extra_groups=[], env=dict(os.environ, PD_TEST_GW_SECRET=SECRET))
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert f"--user {other}" in err and "only root can switch" in err, err


def test_usage_user_needs_value():
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", "x", "--user"], capture_output=True,
                       timeout=10)
    assert r.returncode == 2 and b"--user" in r.stderr


# ---------------------------------------------------------------- behaviours under the filter, as nobody


@needs_root
def test_get_connect_reload_budget_as_nobody(gateway, origin, echo, shared_dir):
    pw = nobody()
    state_dir = os.path.join(shared_dir, "state")
    os.mkdir(state_dir, 0o700)
    os.chown(state_dir, pw.pw_uid, pw.pw_gid)
    state = os.path.join(state_dir, "budget.json")
    cfg = base_cfg(origin.port, extra_ports=[echo.port])
    cfg["budgets"] = [{"domain": "budget.test", "bytes_sent_per_hour": 1000}]
    cfg["state_file"] = state
    gw = gateway(cfg, "--user", "nobody")
    assert_confined(gw.pid, pw.pw_uid, pw.pw_gid)

    # A plain GET (upstream dial, pool, access log).
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/v1", f"api.test:{origin.port}"))
    assert r.status == 200 and r.json()["target"] == "/v1"

    # A CONNECT tunnel, both ways.
    with harness.Conn(gw.proxy_port) as c:
        c.send(f"CONNECT api.test:{echo.port} HTTP/1.1\r\nHost: api.test:{echo.port}\r\n\r\n".encode())
        assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        payload = os.urandom(100000)
        c.send(payload)
        assert c._read_exact(len(payload)) == payload
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_until_close() == b""

    # The budget: spent, refused, and persisted by the once-a-second flush (temp file + rename in a
    # directory only nobody can write).
    body = b"b" * 1500
    r = send(gw, raw_req("POST", f"http://budget.test:{origin.port}/", f"budget.test:{origin.port}", body=body),
             "POST")
    assert r.status == 200
    r = send(gw, raw_req("GET", f"http://budget.test:{origin.port}/", f"budget.test:{origin.port}"))
    assert r.status == 429 and r.header("x-paddock-error") == "budget_exhausted"

    def flushed():
        try:
            with open(state) as f:
                return "budget.test" in json.load(f).get("budgets", {})
        except (OSError, ValueError):
            return False
    harness.wait_until(flushed, what="the budget state flushed as nobody")
    assert os.stat(state).st_uid == pw.pw_uid
    assert not gw.records("budget_flush_failed")

    # A reload as nobody: a new host becomes reachable, and the admin port still answers.
    cfg["allow"].append({"host": "other.test", "ports": [origin.port], "allow_private": True})
    write_cfg(gw, cfg)
    gw.signal(signal.SIGHUP)
    gw.wait_event("reloaded")
    r = send(gw, raw_req("GET", f"http://other.test:{origin.port}/n", f"other.test:{origin.port}"))
    assert r.status == 200
    with harness.Conn(gw.admin_port) as c:
        assert c.request("GET", "/metrics").status == 200

    # SIGTERM: the last flush and a clean exit under the filter.
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit() == 0
    assert not gw.records("budget_flush_failed")


@needs_root
def test_reload_unreadable_as_nobody_keeps_policy(gateway, origin):
    gw = gateway(base_cfg(origin.port), "--user", "nobody")
    cfg = base_cfg(origin.port)
    cfg["allow"] = []
    write_cfg(gw, cfg)
    os.chmod(gw.config_path, 0o600)  # root's now: nobody cannot read it
    gw.signal(signal.SIGHUP)
    rec = gw.wait_event("reload_failed")[0]
    assert "Permission denied" in rec["error"] and rec["action"] == "kept the running policy", rec
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}"))
    assert r.status == 200


@needs_root
def test_alias_over_tls_as_nobody(gateway, origin, tls_origin):
    o, ca = tls_origin
    pw = nobody()
    gw = gateway(tls_cfg(origin.port, ca, alias="credalias"), "--user", "nobody")
    assert_confined(gw.pid, pw.pw_uid, pw.pw_gid)
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("POST", "http://credalias.devbox.local/api", "credalias.devbox.local", body=b"hello"))
        assert c.read_response("POST").status == 200
    assert [q["target"] for q in o.requests] == ["/api"]
    hdrs = {k.lower(): v for k, v in o.requests[0]["headers"]}
    assert hdrs["host"] == "cred.test" and hdrs["authorization"] == f"Bearer {SECRET}"
    a = access_lines(gw)[0]
    assert a["credential"] == "TEST_TOKEN"


def libssl_mapped(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libssl.so" in f.read()


@needs_root
def test_openssl_loaded_only_when_a_reload_first_needs_it(gateway, origin, tls_origin, shared_dir):
    """A policy without credentials never loads OpenSSL; a reload that adds an alias loads it then,
    as nobody and under the seccomp filter, and the alias works."""
    import shutil
    o, ca = tls_origin
    shared_ca = os.path.join(shared_dir, "ca.pem")
    shutil.copy(ca, shared_ca)
    os.chmod(shared_ca, 0o644)
    cfg = base_cfg(origin.port)
    cfg["credentials"] = []
    gw = gateway(cfg, "--user", "nobody")
    assert not libssl_mapped(gw.pid)
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/plain", f"api.test:{origin.port}"))
    assert r.status == 200
    assert not libssl_mapped(gw.pid)
    write_cfg(gw, tls_cfg(origin.port, shared_ca, alias="credalias"))
    gw.signal(signal.SIGHUP)
    gw.wait_event("reloaded")
    assert libssl_mapped(gw.pid)
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", "http://credalias.devbox.local/v1", "credalias.devbox.local"))
        assert c.read_response().status == 200
    hdrs = {k.lower(): v for k, v in o.requests[-1]["headers"]}
    assert hdrs["authorization"] == f"Bearer {SECRET}"


def test_system_resolver_under_filter(gateway, origin):
    """No upstream.hosts entry: the name goes through getaddrinfo on libuv's thread pool (threads
    created after the filter, nsswitch.conf, /etc/hosts, resolv.conf)."""
    cfg = base_cfg(origin.port)
    cfg["allow"].append({"host": "localhost", "ports": [origin.port], "allow_private": True})
    args = ("--user", "nobody") if ROOT else ()
    gw = gateway(cfg, *args)
    for _ in range(3):
        r = send(gw, raw_req("GET", f"http://localhost:{origin.port}/r", f"localhost:{origin.port}"))
        assert r.status == 200, r
    a = access_lines(gw)[0]
    assert a["upstream"] in (f"127.0.0.1:{origin.port}", f"[::1]:{origin.port}"), a
