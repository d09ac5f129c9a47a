"""Escape attempts against `paddock run`: every attempt of the escape probe (tests/integration/escape.c) is
made inside a sandbox, by root and by uid 65534 (the `caller` fixture), and must fail; where an attempt
could leave a trace outside (a packet, a file, a process), the test looks for the trace on the host too,
not only at what the probe printed. Network attempts run against the fake outside world (netns_world.py):
if the sandbox leaked into the host's network, the world's listeners would record it.

The fixture self-tests at the top run the probe WITHOUT any sandbox and prove the world catches traffic.
"""

import json
import os
import platform
import pty
import shutil
import stat
import subprocess
import uuid

import pytest

from netns_world import world  # noqa: F401  (a fixture)
from test_sandbox import (PROBE, SECRET, SECRET_ENV, WS, caller, escape_path, origin, sbx,  # noqa: F401
                          size, assert_stops_growing)

ZERO_CAPS = "0000000000000000"
CAP_KEYS = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
ALLOWED_ENV = {"PATH", "TERM", "COLORTERM", "LANG", "TZ", "HOME", "USER", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
               "https_proxy", "NO_PROXY", "no_proxy"}


def probe_direct(*args):
    """The probe on the host, no sandbox (fixture self-tests only)."""
    r = subprocess.run([escape_path(), *args], capture_output=True, text=True, timeout=20)
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])


def refused(r):
    """The probe ran, printed its line, and its attempt was refused (exit 0)."""
    rec = r.rec
    assert rec is not None, f"the probe printed no JSON line: {r}"
    assert rec["result"] == "refused", f"ESCAPED or probe error: {json.dumps(rec)}\n{r}"
    assert r.rc == 0, r
    return rec


# ---------------------------------------------------------------- fixture self-tests (no sandbox)


def test_fixture_selftest_world_records_tcp(world):
    for addr, port in [("1.1.1.1", 80), ("1.1.1.1", 443), ("169.254.169.254", 80), ("8.8.8.8", 53)]:
        rc, rec = probe_direct("connect", addr, str(port))
        assert rc == 3 and rec["result"] == "escaped", rec
        got = world.wait_received(lambda x, a=addr, p=port: x["dst"] == a and x["dport"] == p)
        assert got and got[0]["proto"] == "tcp" and got[0]["src"] == world.host_ip, world.received()


def test_fixture_selftest_world_records_udp_dns(world):
    rc, rec = probe_direct("udp-dns", "8.8.8.8")
    assert rc == 0 and rec["result"] == "refused" and rec["errno"] == "ETIMEDOUT", rec  # the world never answers
    got = world.wait_received(lambda x: x["proto"] == "udp")
    assert got and got[0]["dst"] == "8.8.8.8" and got[0]["dport"] == 53, world.received()
    assert "example" in got[0]["data"] and "com" in got[0]["data"]


def test_fixture_selftest_host_loopback_listener(world):
    for addr in ["127.0.0.1", "::1"]:
        rc, rec = probe_direct("connect", addr, str(world.host_port))
        assert rc == 3, rec
        assert world.wait_received(lambda x, a=addr: x["dst"] == a), world.received()


def test_fixture_selftest_world_is_torn_down():
    if os.geteuid() != 0:
        pytest.skip("the fake world needs root")
    from netns_world import World
    w = World()
    ns, veth = w.ns, w.veth_host
    w.teardown()
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode != 0
    assert subprocess.run(["ip", "route", "show", "1.1.1.1/32"], capture_output=True, text=True).stdout == ""


# ---------------------------------------------------------------- the kernel's attack surface

KERNEL_ATTEMPTS = ["ptrace", "process-vm-readv", "mount", "new-mount-api", "pivot-root", "unshare", "setns",
                   "clone-newuser", "raw-socket", "packet-socket", "netlink-route-change", "vsock", "io-uring",
                   "bpf", "perf-event-open", "userfaultfd", "keyctl", "kexec-load", "init-module",
                   "open-by-handle-at", "mknod",
                   pytest.param("i386", marks=pytest.mark.skipif(platform.machine() != "x86_64",
                                                                 reason="the i386 ABI exists on x86_64 only"))]


@pytest.mark.parametrize("attempt", KERNEL_ATTEMPTS)
def test_kernel_attempt_refused(sbx, attempt):
    refused(sbx.probe(attempt))


def test_tiocsti_refused_on_a_terminal(sbx):
    master, slave = pty.openpty()
    try:
        r = sbx.probe("tiocsti", stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    refused(r)
    refused(sbx.probe("tiocsti"))  # and without one (/dev/tty)


def test_no_capabilities_and_no_new_privileges(sbx):
    rec = refused(sbx.probe("caps"))
    st = rec["status"]
    for k in CAP_KEYS:
        assert st[k] == ZERO_CAPS, (k, st)
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st


# ---------------------------------------------------------------- network: only the gateway


@pytest.mark.parametrize("addr,port", [("1.1.1.1", 80), ("1.1.1.1", 443), ("169.254.169.254", 80),
                                       ("8.8.8.8", 53)])
def test_connect_outside_refused_and_nothing_arrives(sbx, world, addr, port):
    rec = refused(sbx.probe("connect", addr, str(port)))
    assert rec["errno"] in ("ENETUNREACH", "EACCES", "EPERM", "ECONNREFUSED", "EHOSTUNREACH", "ETIMEDOUT"), rec
    assert world.received() == []


def test_connect_host_loopback_refused_and_nothing_arrives(sbx, world):
    for addr in ["127.0.0.1", "::1"]:
        refused(sbx.probe("connect", addr, str(world.host_port)))
    assert world.received() == []


def test_dns_to_outside_resolver_fails_and_nothing_arrives(sbx, world):
    refused(sbx.probe("udp-dns", "8.8.8.8"))
    refused(sbx.probe("udp-dns", "169.254.169.254"))
    assert world.received() == []


def test_bash_dev_tcp_fails(sbx, world):
    if not shutil.which("bash"):
        pytest.skip("no bash")
    r = sbx.run(["bash", "-c", "exec 3<>/dev/tcp/1.1.1.1/80 && echo CONNECTED"])
    assert r.rc != 0 and "CONNECTED" not in r.stdout, r
    r = sbx.run(["bash", "-c", "exec 3<>/dev/tcp/8.8.8.8/53 && echo CONNECTED"])
    assert r.rc != 0 and "CONNECTED" not in r.stdout, r
    assert world.received() == []


def test_proxy_refuses_ip_literals_metadata_and_host_loopback(sbx, world):
    port = world.host_port
    for url in ["http://1.1.1.1/", "http://169.254.169.254/latest/meta-data/", "http://8.8.8.8:53/",
                f"http://127.0.0.1:{port}/", f"http://[::1]:{port}/", f"http://localhost:{port}/",
                f"http://0x7f000001:{port}/"]:
        rec = refused(sbx.probe("http", url))
        assert rec.get("status") in (400, 403, None), rec
    assert world.received() == []


# ---------------------------------------------------------------- files: masks, writes outside, links


def test_masked_ssh_key_not_readable(sbx):
    ssh = os.path.join(sbx.home, ".ssh")
    os.mkdir(ssh, 0o700)
    marker = f"ssh-marker-{uuid.uuid4()}"
    key = sbx.put(os.path.join(ssh, "id_rsa"), f"-----BEGIN KEY-----\n{marker}\n", mode=0o600,
                  owner=sbx.uid or None)
    if sbx.uid:
        os.chown(ssh, sbx.uid, sbx.uid)
    r = sbx.probe("read", key)
    assert marker not in r.stdout, r
    refused(r)
    r = sbx.run(["sh", "-c", f"cat {key} ~/.ssh/id_rsa; ls -la ~/.ssh"])
    assert marker not in r.stdout + r.stderr, r


def test_policy_masked_path_not_readable(sbx):
    d = sbx.mkdir("secrets")
    marker = f"policy-mask-marker-{uuid.uuid4()}"
    token = sbx.put(os.path.join(d, "token.txt"), marker + "\n", mode=0o644)
    public = sbx.put(os.path.join(d, "public.txt"), "public\n", mode=0o644)
    policy = {"sandbox": {"masked_paths": [token]}}
    r = sbx.probe("read", token, policy=policy)
    assert marker not in r.stdout, r
    refused(r)
    # The control: the same directory is visible, so the refusal above is the mask's doing.
    r = sbx.probe("read", public, policy=policy)
    assert r.rec is not None and r.rec.get("content") == "public\n", r


def test_default_masked_host_files(sbx):
    for path in ["/etc/shadow", "/root/.bashrc", "/var/lib/paddock", "/etc/ssh/ssh_host_ed25519_key"]:
        if not os.path.exists(path):
            continue
        r = sbx.probe("read", path)
        refused(r)


def test_write_to_etc_refused(sbx):
    name = f"/etc/paddock-escape-{uuid.uuid4().hex[:12]}"
    try:
        refused(sbx.probe("write", name))
        assert not os.path.exists(name)
        refused(sbx.probe("write", "/etc/hostname"))
    finally:
        if os.path.exists(name):
            os.unlink(name)


def test_tmp_is_not_the_hosts(sbx):
    name = f"/tmp/paddock-escape-{uuid.uuid4().hex[:12]}"
    try:
        r = sbx.probe("write", name)
        assert r.rec is not None, r
        assert not os.path.exists(name), f"a file created in the sandbox's /tmp appeared on the host: {r}"
    finally:
        if os.path.exists(name):
            os.unlink(name)


def test_credential_value_file_not_readable(sbx, origin):
    """The gateway holds credentials; the agent must not be able to read the file they come from."""
    d = sbx.mkdir("creds")
    value = f"cred-{uuid.uuid4().hex}"
    # 0600 and the caller's, as the gateway demands: DAC lets the agent (the same uid) read it too.
    token = sbx.put(os.path.join(d, "token"), value + "\n", mode=0o600, owner=sbx.uid or None)
    policy = {"allow": [{"host": "origin.test", "ports": [origin.port], "allow_private": True}],
              "upstream": {"hosts": {"origin.test": ["127.0.0.1"]}},
              "credentials": [{"name": "ORIGIN_TOKEN", "domain": "origin.test", "header": "Authorization",
                               "format": "Bearer {value}", "value_file": token}]}
    r = sbx.run(["sh", "-c", f"cat {token}; {PROBE} read {token}"], policy=policy)
    assert value not in r.stdout + r.stderr, f"the credential file was readable inside: {r}"
    assert r.rec is not None and r.rec["result"] == "refused", r


def test_write_kernel_knobs_refused(sbx):
    """/proc/sys and /sys are read-only inside (the value written is the current one, so a broken sandbox
    would change nothing)."""
    with open("/proc/sys/kernel/hostname") as f:
        hostname = f.read()
    refused(sbx.probe("write", "/proc/sys/kernel/hostname", hostname))
    with open("/proc/sys/kernel/hostname") as f:
        assert f.read() == hostname
    for path in ["/proc/sys/vm/overcommit_memory", "/sys/kernel/mm/transparent_hugepage/enabled"]:
        if os.path.exists(path):
            r = sbx.probe("write", path, "")
            refused(r)


def test_dev_shm_is_not_the_hosts(sbx):
    name = f"paddock-escape-{uuid.uuid4().hex[:12]}"
    try:
        r = sbx.probe("write", f"/dev/shm/{name}")
        assert r.rec is not None, r
        assert not os.path.exists(f"/dev/shm/{name}"), r
    finally:
        if os.path.exists(f"/dev/shm/{name}"):
            os.unlink(f"/dev/shm/{name}")


def test_signals_do_not_reach_host_processes(sbx):
    """A host process of the caller's own uid: the agent knows its host pid but cannot signal it."""
    pre = [] if sbx.uid == 0 else ["setpriv", f"--reuid={sbx.uid}", f"--regid={sbx.uid}", "--clear-groups"]
    victim = subprocess.Popen(pre + ["sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        r = sbx.run(["sh", "-c", f"kill -TERM {victim.pid}; echo rc=$?"])
        assert "rc=0" not in r.stdout, r
        assert victim.poll() is None, f"the host process {victim.pid} was killed from inside: {r}"
    finally:
        victim.kill()
        victim.wait(timeout=10)


def outside_target(sbx):
    """A host file outside the workspace that DAC would let the caller write: only the sandbox protects it."""
    d = sbx.mkdir("outside", mode=0o777)
    return sbx.put(os.path.join(d, "target.txt"), "original\n", mode=0o666), d


def test_symlink_in_workspace_pointing_outside(sbx):
    target, d = outside_target(sbx)
    os.symlink(target, os.path.join(sbx.ws, "link"))
    os.symlink(os.path.join(d, "new.txt"), os.path.join(sbx.ws, "dangling"))
    refused(sbx.probe("symlink-write", f"{WS}/link"))
    refused(sbx.probe("symlink-write", f"{WS}/dangling"))
    with open(target) as f:
        assert f.read() == "original\n"
    assert not os.path.exists(os.path.join(d, "new.txt"))


def test_hardlink_to_outside_then_write(sbx):
    target, _ = outside_target(sbx)
    refused(sbx.probe("hardlink", target, f"{WS}/hl"))
    with open(target) as f:
        assert f.read() == "original\n"
    assert os.stat(target).st_nlink == 1


def test_protected_paths_read_only_while_workspace_writable(sbx):
    owner = sbx.uid or None
    os.makedirs(os.path.join(sbx.ws, ".git", "hooks"))
    bashrc = sbx.put(os.path.join(sbx.ws, ".bashrc"), "# host bashrc\n", owner=owner)
    config = sbx.put(os.path.join(sbx.ws, ".git", "config"), "[core]\n", owner=owner)
    for p in [".git", ".git/hooks"]:
        if owner:
            os.chown(os.path.join(sbx.ws, p), owner, owner)
    refused(sbx.probe("write", f"{WS}/.git/hooks/x"))
    refused(sbx.probe("write", f"{WS}/.bashrc"))
    refused(sbx.probe("write", f"{WS}/.git/config"))
    sbx.run(["sh", "-c", "rm -rf .bashrc .git/hooks; mv .git/config .git/c2; echo evil > .bashrc; "
             "mkdir -p .git/hooks; echo evil > .git/hooks/pre-commit"])
    with open(bashrc) as f:
        assert f.read() == "# host bashrc\n"
    with open(config) as f:
        assert f.read() == "[core]\n"
    assert not os.path.exists(os.path.join(sbx.ws, ".git", "hooks", "x"))
    assert not os.path.exists(os.path.join(sbx.ws, ".git", "hooks", "pre-commit"))
    # The rest of the workspace is the agent's to write.
    r = sbx.probe("write", f"{WS}/other", "agent wrote this\n")
    assert r.rc == 3 and r.rec["result"] == "escaped", r  # "escaped" = the write worked, as it must here
    with open(os.path.join(sbx.ws, "other")) as f:
        assert f.read() == "agent wrote this\n"


def test_policy_protected_path(sbx):
    locked = sbx.put(os.path.join(sbx.ws, "locked.txt"), "locked\n", owner=sbx.uid or None)
    refused(sbx.probe("write", f"{WS}/locked.txt", policy={"sandbox": {"protected_paths": ["locked.txt"]}}))
    with open(locked) as f:
        assert f.read() == "locked\n"


def test_chmod_suid_leaves_no_privileged_file_on_the_host(sbx):
    r = sbx.probe("chmod-suid", f"{WS}/suid-file")
    assert r.rec is not None, r
    path = os.path.join(sbx.ws, "suid-file")
    if os.path.exists(path):
        st = os.stat(path)
        assert not (st.st_mode & stat.S_ISUID and st.st_uid == 0), (oct(st.st_mode), st.st_uid, r)
        assert not (st.st_mode & stat.S_ISGID and st.st_gid == 0), (oct(st.st_mode), st.st_gid, r)


def test_setuid_root_binary_gains_nothing(sbx):
    d = sbx.mkdir("suid")
    sid = os.path.join(d, "id")
    sesc = os.path.join(d, "escape")
    for src, dst in [("/usr/bin/id", sid), (escape_path(), sesc)]:
        shutil.copy(src, dst)
        os.chown(dst, 0, 0)
        os.chmod(dst, 0o4755)
    r = sbx.probe("setuid-gain", sid)
    rec = r.rec
    assert rec is not None and "euid" in rec, f"the setuid program did not run inside: {r}"
    assert rec["result"] == "refused", rec
    if sbx.uid:
        assert rec["euid"] != 0, rec
    # Root or not, the set-uid program holds no capability and gained no uid.
    r = sbx.run([sesc, "caps"])
    rec = refused(r)
    for k in CAP_KEYS:
        assert rec["status"][k] == ZERO_CAPS, (k, rec)
    if sbx.uid:
        assert rec["status"]["Uid"].split()[1] != "0", rec


# ---------------------------------------------------------------- what the agent is given


def test_environment_is_scrubbed(sbx):
    policy = {"sandbox": {"env": {"PD_POLICY_VAR": "from-policy"}}}
    r = sbx.probe("env", policy=policy, env={"AWS_SECRET_ACCESS_KEY": "aws-" + SECRET})
    rec = r.rec
    assert rec is not None and rec["result"] == "refused", r
    env = dict(e.split("=", 1) for e in rec["env"])
    extra = set(env) - ALLOWED_ENV - {"PD_POLICY_VAR"}
    assert not extra, f"unexpected variables inside: {sorted(extra)}"
    assert SECRET_ENV not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert not any(SECRET in v for v in env.values()), env
    assert env.get("PD_POLICY_VAR") == "from-policy", env
    assert env["HOME"] == sbx.home, env
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]:
        assert env.get(k, "").rstrip("/") == "http://127.0.0.1:3128", (k, env)


def test_no_leaked_file_descriptors(sbx):
    fd = os.open("/dev/null", os.O_RDONLY)
    rp, wp = os.pipe()
    try:
        r = sbx.probe("fds", pass_fds=(fd, rp, wp))
    finally:
        for x in (fd, rp, wp):
            os.close(x)
    rec = refused(r)
    assert rec["fds"] == [], rec


# ---------------------------------------------------------------- resources and lifetime


def host_can_fork():
    return subprocess.run(["true"], timeout=10).returncode == 0


def test_fork_bomb_contained(sbx):
    r = sbx.probe("fork-bomb", "1000", policy={"sandbox": {"limits": {"pids": 64}}})
    rec = r.rec
    assert rec is not None, r
    assert rec["result"] == "refused" and rec["children"] < 64, rec
    assert host_can_fork()


def test_memory_balloon_killed(sbx):
    policy = {"sandbox": {"limits": {"memory": "64M"}}}
    r = sbx.probe("balloon", "256", policy=policy)
    assert r.rc == 137 or (r.rec is not None and r.rec["result"] == "refused"), r
    assert host_can_fork()
    # The control: well under the limit, the same probe succeeds (the limit is the sandbox's, not 0).
    r = sbx.probe("balloon", "8", policy=policy)
    assert r.rc == 3 and r.rec["result"] == "escaped", r


def test_background_process_gone_after_return(sbx):
    marker = f"{WS}/bg.marker"
    r = sbx.run(["sh", "-c", f"{PROBE} background {marker}; sleep 0.5"])
    assert r.rc == 0, r
    assert size(sbx.host(marker)) > 0, f"the background process never wrote its marker: {r}"
    assert_stops_growing(sbx.host(marker))


# ---------------------------------------------------------------- host Unix sockets


class UnixListener:
    """A Unix stream listener on the host (a path, or an abstract name when path starts with NUL) that
    records whether anyone connected."""

    def __init__(self, path):
        import socket
        import threading
        self.path = path
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        if not path.startswith("\0"):
            os.chmod(path, 0o777)
        self.sock.listen(8)
        self.stopping = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            c.close()

    def stop(self):
        import socket
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.t.join(timeout=5)


@pytest.fixture
def host_sockets():
    """Unix sockets where host daemons and other users' programs leave them: /run, /var/tmp and
    another user's home directory (each directory and socket mode 0777, so only the sandbox's view
    can keep the agent out)."""
    tag = uuid.uuid4().hex[:12]
    made, listeners = [], []
    for d in (f"/run/pdtest-{tag}", f"/var/tmp/pdtest-{tag}", f"/home/pdtest-{tag}"):
        os.makedirs(d)
        os.chmod(d, 0o777)
        made.append(d)
        listeners.append(UnixListener(os.path.join(d, "daemon.sock")))
        os.chmod(listeners[-1].path, 0o777)
    yield listeners
    for l in listeners:
        l.stop()
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def test_host_unix_socket_file_unreachable(sbx, host_sockets):
    """The host root is visible read-only, but a read-only mount does not stop connect() to a socket file
    (EROFS applies to files, directories and links only), and Landlock cannot restrict it either: the
    sandbox hides the places where daemons' sockets live (/run, /var/run, a fresh /var/tmp and /tmp,
    other users' home directories). A socket elsewhere on the host root stays reachable if its mode lets
    the caller in (docs/sandbox.md says so)."""
    for l in host_sockets:
        r = sbx.probe("unix-connect", l.path)
        assert l.connections == 0, f"the host Unix socket {l.path} was reachable from the sandbox: {r}"
        refused(r)


def test_host_abstract_unix_socket_unreachable(sbx):
    """Abstract Unix sockets belong to the network namespace: the host's must be out of reach."""
    name = f"pdtest-{uuid.uuid4().hex[:12]}"
    abstract = UnixListener("\0" + name)
    try:
        r = sbx.probe("unix-connect", "@" + name)
        assert abstract.connections == 0, r
        refused(r)
    finally:
        abstract.stop()
