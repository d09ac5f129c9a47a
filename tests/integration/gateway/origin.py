"""Test upstreams for the gateway tests: an HTTP origin that records every request it receives, a raw TCP
echo server, and a plain listener that records whether anyone connected. All on 127.0.0.1, ephemeral
ports, stopped by the test (fixtures in test_gateway.py)."""

import json
import time
import socket
import threading


class Origin:
    """A small threaded HTTP/1.1 origin. Every request is recorded as a dict: method, target, headers
    (list of (name, value)), body (bytes, chunked bodies decoded), raw_body (bytes as received)."""

    def __init__(self, port=0, ssl_ctx=None):
        self.ssl_ctx = ssl_ctx
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.conns = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def stop(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in list(self.conns):
            try:
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        if self.ssl_ctx is not None:
            try:
                c.settimeout(10)
                c = self.ssl_ctx.wrap_socket(c, server_side=True)
            except (OSError, ValueError):
                c.close()
                return
        f = c.makefile("rb")
        armed = False  # after /arm-stale: the next request on this connection is dropped unanswered
        try:
            while True:
                line = f.readline(65536)
                if not line:
                    return
                if armed:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                armed = target.startswith("/arm-stale")
                headers = []
                while True:
                    h = f.readline(65536)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers.append((k.strip(), v.strip()))
                hd = {k.lower(): v for k, v in headers}
                raw = b""
                body = b""
                if "content-length" in hd:
                    body = f.read(int(hd["content-length"]))
                    raw = body
                elif hd.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        sz = f.readline()
                        raw += sz
                        n = int(sz.split(b";")[0].strip(), 16)
                        if n == 0:
                            while True:
                                t = f.readline()
                                raw += t
                                if t in (b"\r\n", b""):
                                    break
                            break
                        chunk = f.read(n + 2)
                        raw += chunk
                        body += chunk[:-2]
                rec = {"method": method, "target": target, "headers": headers, "body": body,
                       "raw_body": raw}
                with self.lock:
                    self.requests.append(rec)
                if "upgrade" in hd.get("connection", "").lower() and hd.get("upgrade"):
                    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\n\r\n")
                    while True:  # then echo raw bytes, like a WebSocket echo server would frames
                        d = f.read1(65536)
                        if not d:
                            return
                        c.sendall(d)
                out = json.dumps({"method": method, "target": target, "body_len": len(body),
                                  "host": hd.get("host")}).encode()
                if target.startswith("/big"):
                    out = b"x" * 200000
                if target.startswith("/slow"):
                    time.sleep(0.3)  # the response is pending while the client sends more
                close = hd.get("connection", "").lower() == "close"
                resp = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(out)}\r\n"
                        f"X-Origin: yes\r\nConnection: {'close' if close else 'keep-alive'}\r\n\r\n").encode()
                if method == "HEAD":
                    out = b""
                if target.startswith("/chunked"):
                    resp = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n"
                            + (b"Connection: close\r\n" if close else b"") + b"\r\n")
                    out = b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
                c.sendall(resp + out)
                if close:
                    f.close()
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                f.close()
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass


class Echo:
    """A raw TCP echo server; counts connections."""

    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = 0
        self.stopping = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in list(self.conns):
            try:
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                self.received += len(d)
                c.sendall(d)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass
