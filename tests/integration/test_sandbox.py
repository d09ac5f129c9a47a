"""Black-box tests of `paddock run` (src/cli/cmd_run.c, run_loop.c over src/sandbox/): exit statuses,
--timeout, SIGTERM, the gateway dying under a running agent, and the positive path (an allowed loopback
origin through the proxy, allowed and denied names through the sandbox's resolver).

The shared machinery for these and the escape tests (test_sandbox_escape.py) lives here: the `caller`
fixture runs every test as root AND as uid 65534 (setpriv), `sbx` is a per-test sandbox setup (a base
directory under /var/lib/paddock-test, since the sandbox's /tmp and /var/tmp are fresh and /run and
/home are hidden, and the repository may itself live under /tmp; a workspace, a HOME, the escape probe
copied into the workspace) and runs `paddock run` there. The probe,
tests/integration/escape.c, prints one JSON line per attempt; `Run.rec` is that line, parsed.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import harness

# Where the tests put host files the sandbox must see through its read-only root.
VISIBLE_ROOT = "/var/lib/paddock-test"

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway"))
from netns_world import world  # noqa: E402,F401  (a fixture)
from origin import Origin  # noqa: E402

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
WS = "/workspace"
PROBE = f"{WS}/escape"
SECRET_ENV = "SECRET_TEST_TOKEN"
SECRET = "pd-sandbox-secret-4c1d9e"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_TIMEOUT = 60  # seconds: a hang is a failure, never a stuck suite

def escape_path():
    return harness.binary("tests/integration/escape")


class Run:
    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr

    @property
    def rec(self):
        """The probe's JSON line (the last stdout line that parses and has an "attempt"), or None."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and "attempt" in d:
                    return d
        return None

    def __repr__(self):
        return (f"<paddock run: exit {self.rc}\n  argv {self.argv}\n  stdout {self.stdout[-3000:]!r}\n"
                f"  stderr {self.stderr[-3000:]!r}>")


class Sandbox:
    """One test's sandbox setup for one caller ("root" or "nobody")."""

    def __init__(self, caller):
        self.caller = caller
        self.uid = 0 if caller == "root" else NOBODY
        top = VISIBLE_ROOT
        os.makedirs(top, exist_ok=True)
        os.chmod(top, 0o755)
        self.base = tempfile.mkdtemp(prefix="pdtest-sbx-", dir=top)
        os.chmod(self.base, 0o755)
        self.ws = os.path.join(self.base, "ws")
        self.home = os.path.join(self.base, "home")
        os.mkdir(self.ws, 0o755)
        os.mkdir(self.home, 0o700)
        shutil.copy(escape_path(), os.path.join(self.ws, "escape"))
        os.chmod(os.path.join(self.ws, "escape"), 0o755)
        if self.uid:
            os.chown(self.ws, self.uid, self.uid)
            os.chown(self.home, self.uid, self.uid)
        self.policy_path = None

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)

    # ---- paths

    def host(self, inside):
        """The host path of a path inside the workspace."""
        assert inside.startswith(WS + "/"), inside
        return os.path.join(self.ws, inside[len(WS) + 1:])

    def mkdir(self, *parts, mode=0o755):
        p = os.path.join(self.base, *parts)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    def put(self, path, text, mode=0o644, owner=None):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        if owner is not None:
            os.chown(path, owner, owner)
        return path

    def policy(self, cfg):
        """Write a policy (the gateway config plus `sandbox:`) readable by the caller; returns its path."""
        self.policy_path = self.put(os.path.join(self.base, "policy.json"), json.dumps(cfg))
        return self.policy_path

    # ---- running

    def env(self, extra=None):
        user = "root" if self.uid == 0 else pwd.getpwuid(NOBODY).pw_name
        e = {"PATH": HOST_PATH, "HOME": self.home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
             "TERM": "dumb", "TZ": "UTC", SECRET_ENV: SECRET}
        e.update(extra or {})
        return e

    def argv(self, cmd, policy=None, opts=()):
        a = [harness.paddock_path(), "run", "--workspace", self.ws]
        if policy is not None:
            a += ["--policy", policy if isinstance(policy, str) else self.policy(policy)]
        a += [*opts, "--", *cmd]
        return (AS_NOBODY + a) if self.uid else a

    def run(self, cmd, policy=None, opts=(), env=None, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL,
            pass_fds=()):
        argv = self.argv(cmd, policy, opts)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                               stdin=stdin, env=self.env(env), pass_fds=pass_fds)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"paddock run did not return within {timeout}s: {argv}\nstdout {e.stdout!r}\n"
                        f"stderr {e.stderr!r}", pytrace=False)
        return Run(argv, r.returncode, r.stdout, r.stderr)

    def probe(self, attempt, *args, **kw):
        return self.run([PROBE, attempt, *args], **kw)

    def popen(self, cmd, policy=None, opts=(), env=None):
        argv = self.argv(cmd, policy, opts)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env(env))
        p.argv = argv
        return p


@pytest.fixture(params=["root", "nobody"])
def caller(request):
    if os.geteuid() != 0:
        pytest.skip("runs the sandbox as root and as uid 65534: needs root")
    return request.param


@pytest.fixture
def sbx(caller):
    s = Sandbox(caller)
    yield s
    s.cleanup()


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


def stop_popen(p, timeout=10):
    """Stop a paddock we started, by PID: SIGTERM, then SIGKILL. Returns (rc, stdout, stderr)."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=timeout)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return -1


def assert_stops_growing(path, what="the background process's marker"):
    """The file (written every 100 ms by a left-behind process) must not grow over 0.6 s."""
    before = size(path)
    time.sleep(0.6)
    after = size(path)
    assert after == before, f"{what} {path} is still growing ({before} -> {after} bytes): a process survived"


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else []:
            try:
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def origin_policy(origin, **extra):
    cfg = {"sandbox_id": "sbx-esc",
           "allow": [{"host": "origin.test", "ports": [origin.port], "allow_private": True}],
           "upstream": {"hosts": {"origin.test": ["127.0.0.1"]}, "connect_timeout_ms": 2000}}
    cfg.update(extra)
    return cfg


# ---------------------------------------------------------------- command line and exit status


def test_run_help(paddock):
    r = subprocess.run([paddock, "run", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout + r.stderr
    for opt in ["--policy", "--workspace", "--timeout", "--env", "--allow-degraded"]:
        assert opt in text, f"{opt} missing from paddock run --help:\n{text}"


def test_run_usage_errors(paddock, tmp_path):
    for argv in ([paddock, "run"], [paddock, "run", "--bogus", "--", "true"], [paddock, "run", "--timeout"]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        assert r.returncode == 2, (argv, r.returncode, r.stderr)
        assert r.stderr.strip(), argv


def test_exit_status_is_the_agents(sbx):
    r = sbx.run(["sh", "-c", "exit 7"])
    assert r.rc == 7, r
    r = sbx.run(["sh", "-c", "exit 0"])
    assert r.rc == 0, r
    r = sbx.run(["sh", "-c", "kill -9 $$"])
    assert r.rc == 137, r
    r = sbx.run(["sh", "-c", "kill -TERM $$"])
    assert r.rc == 128 + signal.SIGTERM, r


def test_exit_status_not_found_and_not_executable(sbx):
    r = sbx.run(["/nonexistent/paddock-no-such-command"])
    assert r.rc == 127, r
    r = sbx.run(["no-such-command-paddock-test"])
    assert r.rc == 127, r
    sbx.put(os.path.join(sbx.ws, "notexec.sh"), "#!/bin/sh\nexit 0\n", mode=0o644, owner=sbx.uid or None)
    r = sbx.run([f"{WS}/notexec.sh"])
    assert r.rc == 126, r


def test_agent_runs_in_workspace_with_fresh_tmp_and_home(sbx):
    sbx.put(os.path.join(sbx.ws, "hello.txt"), "hello from the host\n", owner=sbx.uid or None)
    r = sbx.run(["sh", "-c", 'pwd; cat hello.txt; echo "HOME=$HOME"; ls -A "$HOME" | wc -l; id -u'])
    assert r.rc == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == WS and lines[1] == "hello from the host", r
    assert lines[2] == f"HOME={sbx.home}", r
    assert lines[3].strip() == "0", f"HOME is not a fresh, empty tmpfs: {r}"


def test_timeout_kills_the_whole_tree(sbx):
    marker = f"{WS}/timeout.marker"
    t0 = time.monotonic()
    r = sbx.run(["sh", "-c", f"{PROBE} background {marker}; sleep 100"], opts=["--timeout", "2"], timeout=40)
    elapsed = time.monotonic() - t0
    assert r.rc == 124, r
    assert elapsed < 20, f"--timeout 2 took {elapsed:.1f}s"
    assert size(sbx.host(marker)) > 0, f"the background process never ran: {r}"
    assert_stops_growing(sbx.host(marker))


def test_sigterm_stops_paddock_and_the_sandbox(sbx):
    marker = f"{WS}/term.marker"
    p = sbx.popen(["sh", "-c", f"{PROBE} background {marker}; sleep 100"])
    try:
        harness.wait_until(lambda: size(sbx.host(marker)) > 0, timeout=20, what="the agent's marker")
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("paddock run did not exit within 15 s of SIGTERM", pytrace=False)
    finally:
        rc, out, err = stop_popen(p)
    assert rc != 0, (rc, out, err)
    assert_stops_growing(sbx.host(marker))


# ---------------------------------------------------------------- the positive path


def test_http_through_the_proxy_to_an_allowed_origin(sbx, origin, world):
    r = sbx.probe("http", f"http://origin.test:{origin.port}/hello?x=1", policy=origin_policy(origin))
    rec = r.rec
    assert rec is not None, r
    assert rec["result"] == "escaped" and rec["status"] == 200, r  # "escaped" here: the request got through
    assert rec["proxy"].rstrip("/") == "http://127.0.0.1:3128", rec
    body = json.loads(rec["body"])
    assert body["target"] == "/hello?x=1" and body["method"] == "GET", rec
    assert [q["target"] for q in origin.requests] == ["/hello?x=1"]
    assert world.received() == []


def test_https_through_the_proxy_to_an_allowed_origin(sbx, world):
    """HTTPS as agents do it: curl in the sandbox sends CONNECT origin.test:PORT to HTTPS_PROXY, the
    gateway checks the ClientHello's SNI and splices, and TLS is end to end (curl verifies the origin's
    certificate with a CA the test made; the gateway never sees the plaintext)."""
    import ssl
    from pathlib import Path
    from test_gateway import make_ca, make_cert
    d = Path(sbx.mkdir("pki"))
    ca = make_ca(d, "sbx-ca")
    key, crt = make_cert(d, ca, ["origin.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    o = Origin(ssl_ctx=ctx)
    try:
        shutil.copy(ca[1], os.path.join(sbx.ws, "ca.pem"))
        os.chmod(os.path.join(sbx.ws, "ca.pem"), 0o644)
        cfg = {"allow": [{"host": "origin.test", "ports": [o.port], "allow_private": True}],
               "upstream": {"hosts": {"origin.test": ["127.0.0.1"]}}}
        r = sbx.run(["curl", "-sS", "--max-time", "20", "--cacert", f"{WS}/ca.pem", "-o", "-",
                     "-w", "\n%{http_code}", f"https://origin.test:{o.port}/secure?y=2"], policy=cfg)
        assert r.rc == 0, r
        body, code = r.stdout.rsplit("\n", 1)
        assert code == "200", r
        assert json.loads(body)["target"] == "/secure?y=2", r
        assert [q["target"] for q in o.requests] == ["/secure?y=2"]
        # A name the policy does not allow: the CONNECT is refused before anything is dialed.
        r = sbx.run(["curl", "-sS", "--max-time", "20", "--cacert", f"{WS}/ca.pem",
                     "https://other.test/"], policy=cfg)
        assert r.rc != 0 and "403" in r.stderr, r
        assert world.received() == []
    finally:
        o.stop()


def test_http_to_a_denied_host_is_refused(sbx, origin, world):
    r = sbx.probe("http", f"http://origin.test:{origin.port}/x", policy=origin_policy(origin, allow=[]))
    assert r.rec is not None and r.rec["result"] == "refused" and r.rec.get("status") == 403, r
    assert origin.requests == [] and world.received() == []
    # No policy at all: nothing is allowed either.
    r = sbx.probe("http", f"http://origin.test:{origin.port}/x")
    assert r.rec is not None and r.rec["result"] == "refused", r
    assert origin.requests == [] and world.received() == []


def test_dns_allowed_name_resolves_denied_does_not(sbx, world):
    policy = {"allow": [{"host": "allowed.test"}, {"host": "mapped.test", "allow_private": True}],
              "upstream": {"hosts": {"mapped.test": ["10.20.30.40"]}},
              "dns": {"answer_a": "127.0.0.1"}}
    script = "; ".join(f'echo "== {n}"; getent hosts {n}; echo "rc=$?"'
                       for n in ["allowed.test", "mapped.test", "denied.test"])
    r = sbx.run(["sh", "-c", "cat /etc/resolv.conf; " + script], policy=policy)
    assert r.rc == 0, r
    assert "nameserver 127.0.0.1" in r.stdout, r
    got = {}
    for block in r.stdout.split("== ")[1:]:
        name, *rest = block.strip().splitlines()
        got[name] = (rest[-1], [ln.split()[0] for ln in rest[:-1] if ln.strip()])
    assert got["allowed.test"] == ("rc=0", ["127.0.0.1"]), r
    assert got["mapped.test"] == ("rc=0", ["10.20.30.40"]), r
    assert got["denied.test"] == ("rc=2", []), f"denied.test resolved: {r}"
    assert world.received() == []


# ---------------------------------------------------------------- the gateway dies under the agent


def test_gateway_killed_mid_run_leaves_no_way_out(sbx, origin, world):
    url = f"http://origin.test:{origin.port}/first"
    url2 = f"http://origin.test:{origin.port}/second"
    script = (f"{PROBE} http {url} > {WS}/r1.json; touch {WS}/ready; i=0; "
              f"while [ ! -e {WS}/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; "
              f"{PROBE} http {url2} > {WS}/r2.json; {PROBE} connect 1.1.1.1 80 > {WS}/r3.json; "
              f"{PROBE} udp-dns 8.8.8.8 > {WS}/r4.json; exit 0")
    p = sbx.popen(["sh", "-c", script], policy=origin_policy(origin))
    try:
        harness.wait_until(lambda: os.path.exists(sbx.host(f"{WS}/ready")) or p.poll() is not None,
                           timeout=30, what="the agent's first request")
        assert p.poll() is None, stop_popen(p)
        with open(sbx.host(f"{WS}/r1.json")) as f:
            first = json.loads(f.read())
        assert first["status"] == 200, first
        gws = [k for k in descendants(p.pid) if any(b"gateway" == a for a in cmdline(k))]
        assert len(gws) == 1, f"expected one gateway child of paddock ({p.pid}): " \
                              f"{[(k, cmdline(k)) for k in descendants(p.pid)]}"
        os.kill(gws[0], signal.SIGKILL)
        harness.wait_until(lambda: not os.path.exists(f"/proc/{gws[0]}/cmdline") or
                           b"gateway" not in cmdline(gws[0]), timeout=10, what="the gateway to die")
        open(sbx.host(f"{WS}/go"), "w").close()
        try:
            p.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pytest.fail("paddock run did not return after its gateway was killed", pytrace=False)
    finally:
        rc, out, err = stop_popen(p)
    # Either paddock ended the sandbox when its gateway died, or the agent's next requests failed.
    for name in ("r2.json", "r3.json", "r4.json"):
        path = sbx.host(f"{WS}/{name}")
        if os.path.exists(path) and os.path.getsize(path):
            with open(path) as f:
                rec = json.loads(f.read())
            assert rec["result"] != "escaped", (name, rec, rc, err)
    assert [q["target"] for q in origin.requests] == ["/first"], origin.requests
    assert world.received() == []


def _alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_launcher_killed_leaves_nothing_behind(sbx, origin):
    """kill -9 of paddock run itself (no chance to clean up): the sandbox dies with it (its first
    process has a parent-death signal) and so does the gateway, although its parent-death signal did
    not survive its switch to --user: it watches the launcher's end of their socket."""
    url = f"http://origin.test:{origin.port}/x"
    script = f"{PROBE} http {url} > {WS}/r1.json; touch {WS}/ready; sleep 60"
    p = sbx.popen(["sh", "-c", script], policy=origin_policy(origin))
    try:
        harness.wait_until(lambda: os.path.exists(sbx.host(f"{WS}/ready")) or p.poll() is not None,
                           timeout=30, what="the agent's first request")
        assert p.poll() is None, stop_popen(p)
        family = descendants(p.pid)
        assert any(b"gateway" in cmdline(k) for k in family), [(k, cmdline(k)) for k in family]
        assert any(b"sleep" in cmdline(k) for k in family), [(k, cmdline(k)) for k in family]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        harness.wait_until(lambda: not any(_alive(k) for k in family), timeout=15,
                           what="the gateway and the sandbox to end after their launcher")
    finally:
        stop_popen(p)


def _pty_run(sbx, cmd, rows=30, cols=100):
    """paddock run with a terminal on stdin/stdout/stderr (as from an interactive shell): returns the
    Popen and the master side, whose window size is rows x cols."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    argv = sbx.argv(cmd)
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=sbx.env(),
                         start_new_session=True)
    os.close(slave)
    return p, master


def _read_until(master, needle, timeout=20):
    import select
    buf = b""
    deadline = time.time() + timeout
    while needle not in buf and time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_terminal_gets_its_own_pty_and_window_changes(sbx):
    """With a terminal on stdin the command gets a pseudo-terminal of the sandbox's own (its devpts),
    of the caller's size; a size change (SIGWINCH to paddock run) reaches it."""
    import fcntl
    import struct
    import termios
    p, master = _pty_run(sbx, ["sh", "-c", "tty; stty size; trap 'stty size; exit 7' WINCH; echo ready; "
                                           "while :; do sleep 0.1; done"])
    try:
        out = _read_until(master, b"ready")
        assert b"/dev/pts/0" in out and b"30 100" in out, out
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        p.send_signal(signal.SIGWINCH)
        out += _read_until(master, b"40 120")
        assert b"40 120" in out, out
        assert p.wait(timeout=20) == 7, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_ctrl_c_on_the_terminal_interrupts_the_command(sbx):
    """Ctrl-C typed on the caller's terminal is relayed as a byte; the sandbox's own terminal turns it
    into SIGINT for the command, which ends with 130."""
    # The shell's own trap, and short sleeps: a SIGINT that lands while dash is forking a child is
    # caught by dash's handler in that child just before exec and lost (a race of sh -c, not of
    # the terminal), so the signal is checked on the shell itself.
    p, master = _pty_run(sbx, ["sh", "-c", "trap 'exit 130' INT; echo ready; "
                                           "while :; do sleep 0.1; done"])
    try:
        out = _read_until(master, b"ready")
        assert b"ready" in out, out
        os.write(master, b"\x03")
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Say what the terminal showed, then fail: a lost Ctrl-C is a bug, not noise.
            out += _read_until(master, b"\n", timeout=1)
            pytest.fail(f"Ctrl-C did not end the command within 10 s; terminal: {out!r}")
        assert rc == 130, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
