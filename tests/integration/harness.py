"""Black-box test harness: locate the built binaries, run daemons, speak raw HTTP/1.1.

Binaries come from $PADDOCK_BUILD_DIR (default: <repo>/build). A Daemon captures stderr (JSON log lines) on
a reader thread, waits (bounded) for its "listening" lines and reads the ports from them, and is stopped by
PID (SIGTERM, then SIGKILL after a bound). Nothing here sleeps for correctness: every wait polls a condition
with a generous upper bound, so a slow machine makes tests slower, not flaky.
"""

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Generous bounds: only to avoid hanging forever on a noisy machine.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 10.0


def build_dir():
    return Path(os.environ.get("PADDOCK_BUILD_DIR", str(REPO / "build")))


def binary(relpath):
    path = build_dir() / relpath
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: build it first (ninja -C {build_dir()}) or set PADDOCK_BUILD_DIR")
    return str(path)


def testd_path():
    return binary("tests/integration/paddock-testd")


def paddock_path():
    return binary("paddock")


class DaemonError(RuntimeError):
    pass


class Daemon:
    """A child process whose stderr is JSON-lines logging."""

    def __init__(self, argv, env=None, pass_fds=(), wait_ready=True, ready_timeout=START_TIMEOUT):
        self.argv = [str(a) for a in argv]
        self.env = env
        self.pass_fds = tuple(pass_fds)
        self._lines = []
        self._records = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = None
        self._threads = []
        self._start()
        if wait_ready:
            self.wait_ready(ready_timeout)

    def _start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env, pass_fds=self.pass_fds)
        t = threading.Thread(target=self._read_stderr, daemon=True)
        t.start()
        self._threads.append(t)
        t = threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True)
        t.start()
        self._threads.append(t)

    def _drain(self, f):
        for _ in iter(lambda: f.read(65536), b""):
            pass

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            rec = None
            if line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
            with self._cond:
                self._lines.append(line)
                if isinstance(rec, dict):
                    self._records.append(rec)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    # ---- log access

    @property
    def pid(self):
        return self.proc.pid

    def stderr_text(self):
        with self._cond:
            return "\n".join(self._lines)

    def records(self, event=None):
        with self._cond:
            return [r for r in self._records if event is None or r.get("event") == event]

    def wait_for(self, predicate, timeout=IO_TIMEOUT, what="condition"):
        """Wait until predicate(records) is truthy; fail if the process exits or the bound passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(list(self._records))
                if result:
                    return result
                if self._eof:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DaemonError(f"timed out after {timeout}s waiting for {what}; stderr so far:\n"
                                      + "\n".join(self._lines))
                self._cond.wait(min(left, 0.2))
        self.proc.wait(timeout=STOP_TIMEOUT)
        raise DaemonError(f"{self.argv[0]} exited with status {self.proc.returncode} before {what}; "
                          f"stderr:\n{self.stderr_text()}")

    def wait_event(self, event, timeout=IO_TIMEOUT, count=1):
        """Wait until at least count records with this event exist; returns them."""
        def pred(rs):
            m = [r for r in rs if r.get("event") == event]
            return m if len(m) >= count else None
        return self.wait_for(pred, timeout, f"log event '{event}' (x{count})")

    def wait_ready(self, timeout=START_TIMEOUT):
        def ready(rs):
            ls = [r for r in rs if r.get("event") == "listening"]
            return ls if ls and len(ls) >= int(ls[0].get("listeners", 1)) else None
        self.listening = self.wait_for(ready, timeout, "the 'listening' log line")
        self.ports = [int(r["port"]) for r in self.listening]
        self.port = self.ports[0]
        return self

    # ---- lifecycle

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for exit, return the status; raise DaemonError (process left running) on timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DaemonError(f"{self.argv[0]} still running after {timeout}s; stderr:\n{self.stderr_text()}")
        for t in self._threads:
            t.join(timeout=STOP_TIMEOUT)
        return rc

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM by PID, wait (bounded), then SIGKILL. Returns the exit status (negative: killed)."""
        if self.proc is None:
            return None
        if self.running():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=STOP_TIMEOUT)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        return self.proc.returncode


def start_testd(*args, **kw):
    return Daemon([testd_path(), *args], **kw)


# ---------------------------------------------------------------- raw HTTP


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lowercased name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class ConnectionClosed(Exception):
    pass


class Conn:
    """A raw client connection with an input buffer, so that pipelined responses can be read one by one."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise ConnectionClosed("connection closed by the server")
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            raise ConnectionClosed("connection closed by the server")
        self.buf += d

    def _read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method="GET", allow_interim=False):
        """Read one response. 1xx interim responses are returned only with allow_interim."""
        while True:
            head = self._read_until(b"\r\n\r\n")
            lines = head[:-4].split(b"\r\n")
            parts = lines[0].decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise AssertionError(f"bad status line {lines[0]!r}")
            status = int(parts[1])
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.decode("latin-1").partition(":")
                headers.append((k.strip().lower(), v.strip()))
            if 100 <= status < 200:
                r = Response(status, parts[2] if len(parts) > 2 else "", headers, b"", head)
                if allow_interim:
                    return r
                continue
            r = Response(status, parts[2] if len(parts) > 2 else "", headers, b"", head)
            cl = r.header("content-length")
            assert r.header("transfer-encoding") is None, "server must not send chunked responses"
            if method == "HEAD" or status in (204, 304):
                return r
            assert cl is not None, f"response without Content-Length: {head!r}"
            r.body = self._read_exact(int(cl))
            return r

    def request(self, method, path, body=None, headers=None, version="1.1"):
        self.send(build_request(method, path, body, headers, version))
        return self.read_response(method)

    def read_until_close(self, limit=1 << 22):
        """Everything until EOF (bounded by IO_TIMEOUT per recv and by limit bytes)."""
        while not self.eof and len(self.buf) < limit:
            try:
                self._fill()
            except ConnectionClosed:
                break
        out, self.buf = self.buf, b""
        return out

    def closed_by_peer(self):
        """True if the server closed the connection (EOF or reset) with nothing more to read."""
        try:
            self._fill()
        except ConnectionClosed:
            return True
        return False

    def readable_within(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)


def build_request(method, path, body=None, headers=None, version="1.1"):
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    hdrs = dict(headers or {})
    if body is not None and "Content-Length" not in hdrs and "Transfer-Encoding" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    for k, v in hdrs.items():
        lines.append(f"{k}: {v}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode()
    return data


def parse_responses(data, methods=None):
    """Split raw bytes holding zero or more complete responses (with Content-Length) into Responses."""
    out = []
    while data:
        if b"\r\n\r\n" not in data:
            raise AssertionError(f"trailing bytes that are not a complete response: {data[:200]!r}")
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k.strip().lower(), v.strip()))
        r = Response(status, "", headers, b"", head)
        n = int(r.header("content-length") or 0)
        if status in (204, 304) or (100 <= status < 200) or (methods and methods[len(out)] == "HEAD"):
            n = 0
        r.body, data = rest[:n], rest[n:]
        out.append(r)
    return out


def wait_until(predicate, timeout=IO_TIMEOUT, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
