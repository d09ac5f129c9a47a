"""The fake outside world for the sandbox escape tests: addresses an escaped agent would try to reach
(1.1.1.1, 8.8.8.8, 169.254.169.254) live in a network namespace of their own, with listeners that RECORD
everything that arrives, so a broken sandbox is caught by what arrived, not only by what the agent
printed. Nothing is ever sent to a real outside address:

    host namespace                                 test namespace pdtest-<pid>-<n>
    HOST routes 1.1.1.1/32, 8.8.8.8/32,            1.1.1.1/32 8.8.8.8/32 169.254.169.254/32 on the veth
    169.254.169.254/32 via the veth  ----veth---   TCP 80 and 443 on each, UDP and TCP 53 on 8.8.8.8
    (198.18.N.1/30)                                (198.18.N.2/30); nothing is ever answered

so if the sandbox were broken and its traffic left through the host's namespace, it would reach the test
namespace, never the internet. Plus a loopback listener on the HOST (127.0.0.1 and ::1, one random port)
that records connections: a sandbox sharing the host's loopback would reach it.

`world.received()` lists what arrived (dicts: proto, dst, dport, src, and data for payloads).
Teardown removes the routes, the veth and the namespace, and stops the listener process by PID, on every
path: the fixture's finaliser runs also when the test fails, and a half-built world is torn down before
the setup error propagates.
"""

import ipaddress
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ADDRS = ["1.1.1.1", "8.8.8.8", "169.254.169.254"]
TCP_PORTS = [80, 443]
DNS_ADDR = "8.8.8.8"
SETTLE = 0.3  # after the agent is done: anything it sent has long arrived; this only covers scheduling
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
ROUTE_WAIT = 60.0

_counter = itertools.count()

# Runs inside the test namespace (ip netns exec NS python3 -c LISTENER OUT-FILE): binds everything,
# prints "ready", records every connection, payload and datagram as one JSON line, answers nothing.
LISTENER = r"""
import json, select, socket, sys, threading, time
ADDRS = %(addrs)r
TCP_PORTS = %(ports)r
DNS = %(dns)r
out = open(sys.argv[1], "a", buffering=1)
lock = threading.Lock()
def rec(**kw):
    kw["t"] = time.time()
    with lock:
        out.write(json.dumps(kw) + "\n")
tcp, udp = {}, {}
for a in ADDRS:
    for p in TCP_PORTS + ([53] if a == DNS else []):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, p)); s.listen(64)
        tcp[s.fileno()] = (s, a, p)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((DNS, 53))
udp[u.fileno()] = (u, DNS, 53)
def drain(c, a, p, peer):
    c.settimeout(2.0)
    try:
        d = c.recv(65536)
    except OSError:
        d = b""
    if d:
        rec(proto="tcp", event="data", dst=a, dport=p, src=peer[0], data=d[:512].decode("latin-1"))
    c.close()
print("ready", flush=True)
while True:
    r, _, _ = select.select(list(tcp) + list(udp), [], [])
    for fd in r:
        if fd in tcp:
            s, a, p = tcp[fd]
            c, peer = s.accept()
            rec(proto="tcp", event="connect", dst=a, dport=p, src=peer[0])
            threading.Thread(target=drain, args=(c, a, p, peer), daemon=True).start()
        else:
            s, a, p = udp[fd]
            d, peer = s.recvfrom(65536)
            rec(proto="udp", event="datagram", dst=a, dport=p, src=peer[0], data=d[:512].decode("latin-1"))
"""


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


class HostListener:
    """TCP listeners on the host's 127.0.0.1 and ::1 (the same random port) that record connections."""

    def __init__(self):
        self.records = []
        self.lock = threading.Lock()
        self.socks = []
        self.stopping = False
        for _ in range(20):
            s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s6.bind(("::1", port))
            except OSError:
                s4.close()
                s6.close()
                continue
            self.port = port
            self.socks = [(s4, "127.0.0.1"), (s6, "::1")]
            break
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")
        self.threads = []
        for s, addr in self.socks:
            s.listen(64)
            t = threading.Thread(target=self._accept, args=(s, addr), daemon=True)
            t.start()
            self.threads.append(t)

    def _accept(self, s, addr):
        while not self.stopping:
            try:
                c, peer = s.accept()
            except OSError:
                return
            with self.lock:
                self.records.append({"proto": "tcp", "event": "connect", "dst": addr, "dport": self.port,
                                     "src": peer[0]})
            c.close()

    def stop(self):
        self.stopping = True
        for s, _ in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(timeout=STOP_TIMEOUT)


class World:
    def __init__(self):
        n = next(_counter)
        tag = f"{os.getpid()}-{n}"
        self.ns = f"pdtest-{tag}"
        short = f"{os.getpid() % 100000}{n % 10}"
        self.veth_host = f"pdh{short}"  # <= 15 characters
        self.veth_ns = f"pdn{short}"
        # A /30 from 198.18.0.0/15 (benchmarking, never routed on the internet), per process.
        k = (os.getpid() * 7 + n) % 16000
        base = ipaddress.IPv4Address("198.18.0.0") + 4 * k
        self.host_ip, self.ns_ip = str(base + 1), str(base + 2)
        self.routes = []
        self.proc = None
        self.host = None
        self.dir = tempfile.mkdtemp(prefix="pdtest-world-")
        self.log = os.path.join(self.dir, "received.jsonl")
        self._ns_made = self._veth_made = False
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise

    def _build(self):
        # Another world (a concurrent test run) holds the routes for a few seconds at most: wait for it,
        # bounded; a route that stays is someone else's, and is never touched.
        deadline = time.monotonic() + ROUTE_WAIT
        while True:
            taken = [a for a in ADDRS if _ip("route", "show", f"{a}/32", check=False).stdout.strip()]
            if not taken:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the host has routes for {taken} (another world is running, or a previous "
                                   "run left them); refusing to touch them")
            time.sleep(0.2)
        _ip("netns", "add", self.ns)
        self._ns_made = True
        _ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        self._veth_made = True
        _ip("link", "set", self.veth_ns, "netns", self.ns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.veth_host)
        _ip("link", "set", self.veth_host, "up")
        nsip = ["netns", "exec", self.ns, "ip"]
        _ip(*nsip, "link", "set", "lo", "up")
        _ip(*nsip, "addr", "add", f"{self.ns_ip}/30", "dev", self.veth_ns)
        for a in ADDRS:
            _ip(*nsip, "addr", "add", f"{a}/32", "dev", self.veth_ns)
        _ip(*nsip, "link", "set", self.veth_ns, "up")
        for a in ADDRS:
            _ip("route", "add", f"{a}/32", "via", self.ns_ip, "dev", self.veth_host)
            self.routes.append(a)
        script = LISTENER % {"addrs": ADDRS, "ports": TCP_PORTS, "dns": DNS_ADDR}
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", script, self.log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._readline_bounded(self.proc.stdout, START_TIMEOUT)
        if line.strip() != b"ready":
            raise RuntimeError(f"world listener did not start: {line!r} "
                               f"{self.proc.stderr.read() if self.proc.poll() is not None else b''!r}")
        self.host = HostListener()

    @staticmethod
    def _readline_bounded(f, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(f.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return box[0] if box else b""

    # ---- what arrived

    def received(self, settle=SETTLE):
        """Every record of the test namespace and of the host loopback listener (after a short settle)."""
        if settle:
            time.sleep(settle)
        out = []
        try:
            with open(self.log) as f:
                out = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            pass
        if self.host is not None:
            with self.host.lock:
                out += list(self.host.records)
        return out

    def wait_received(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.received(settle=0) if predicate(r)]
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    @property
    def host_port(self):
        return self.host.port

    # ---- teardown (every step tolerates what an earlier failure left undone)

    def teardown(self):
        if self.host is not None:
            self.host.stop()
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=STOP_TIMEOUT)
            for f in (self.proc.stdout, self.proc.stderr):
                f.close()
            self.proc = None
        for a in self.routes:
            _ip("route", "del", f"{a}/32", "via", self.ns_ip, "dev", self.veth_host, check=False)
        self.routes = []
        if self._veth_made:
            _ip("link", "del", self.veth_host, check=False)  # deletes the peer, wherever it is
            self._veth_made = False
        if self._ns_made:
            _ip("netns", "del", self.ns, check=False)
            self._ns_made = False
        for name in ("received.jsonl",):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


@pytest.fixture
def world():
    """The fake outside world (see the module docstring); torn down whatever the test does."""
    if os.geteuid() != 0:
        pytest.skip("the fake world needs root (ip netns, routes)")
    w = World()
    try:
        yield w
    finally:
        w.teardown()
