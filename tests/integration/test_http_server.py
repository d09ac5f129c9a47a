"""Black-box tests of the HTTP server (src/http) through paddock-testd, over real sockets.

Raw sockets wherever framing matters. No timing assertions: waits are bounded only to avoid hanging.
"""

import os
import signal
import socket
import sys

import pytest
import requests

import harness
from harness import IO_TIMEOUT, Conn, ConnectionClosed, build_request, parse_responses, wait_until

NOT_FOUND = b'{"detail":"Not Found"}'
NOT_ALLOWED = b'{"detail":"Method Not Allowed"}'


def url(d, path):
    return f"http://127.0.0.1:{d.port}{path}"


# ---------------------------------------------------------------- basics


def test_healthz(server):
    r = requests.get(url(server, "/healthz"), timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(r.content))
    assert r.headers["date"].endswith(" GMT")


def test_listening_line_has_real_port(server):
    rec = server.listening[0]
    assert rec["addr"] == "127.0.0.1"
    assert rec["port"] == server.port != 0
    assert rec["workers"] == 2


def test_path_params_and_decoding(server):
    with Conn(server.port) as c:
        r = c.request("GET", "/items/a%20b%C3%A9")
        assert r.status == 200
        assert r.json() == {"id": "a b\u00e9"}


def test_echo_reports_request(server):
    with Conn(server.port) as c:
        r = c.request("POST", "/echo?x=1&y=%20", body=b"hello", headers={"X-Test": "Value"})
        assert r.status == 200
        j = r.json()
        assert j["method"] == "POST"
        assert j["path"] == "/echo"
        assert j["query"] == "x=1&y=%20"
        assert j["body_len"] == 5 and j["body"] == "hello"
        assert j["headers"]["x-test"] == "Value"


def test_error_route_gives_detail(server):
    r = requests.get(url(server, "/error"), timeout=IO_TIMEOUT)
    assert r.status_code == 500
    assert r.json() == {"detail": "deliberate error from /error"}


def test_head_uses_get_without_body(server):
    with Conn(server.port) as c:
        get = c.request("GET", "/healthz")
        head = c.request("HEAD", "/healthz")
        assert head.status == 200
        assert head.body == b""
        assert head.header("content-length") == get.header("content-length")
        # The connection is still in sync: no stray body bytes were sent after the HEAD response.
        again = c.request("GET", "/items/7")
        assert again.json() == {"id": "7"}


# ---------------------------------------------------------------- FastAPI-compatible errors


def test_404_body_exactly_fastapi(server):
    with Conn(server.port) as c:
        r = c.request("GET", "/nope")
        assert r.status == 404
        assert r.body == NOT_FOUND
        assert r.header("content-type") == "application/json"


def test_405_body_and_allow(server):
    with Conn(server.port) as c:
        r = c.request("POST", "/healthz", body=b"")
        assert r.status == 405
        assert r.body == NOT_ALLOWED
        allow = [m.strip() for m in r.header("allow").split(",")]
        assert "GET" in allow and "HEAD" in allow and "POST" not in allow


def test_trailing_slash_is_404(server):
    with Conn(server.port) as c:
        assert c.request("GET", "/healthz/").status == 404
        assert c.request("GET", "/items/1/").status == 404


@pytest.mark.parametrize("path", ["/items/a%2Fb", "/items/a%00b", "/items/%zz", "/items/.."])
def test_bad_path_param_refused(server, path):
    with Conn(server.port) as c:
        r = c.request("GET", path)
        assert r.status == 400
        assert "detail" in r.json()


# ---------------------------------------------------------------- keep-alive and pipelining


def test_keepalive_many_requests_one_connection(server):
    with Conn(server.port) as c:
        for i in range(50):
            r = c.request("GET", f"/items/{i}")
            assert r.status == 200
            assert r.json() == {"id": str(i)}
            assert r.header("connection") is None
        r = c.request("POST", "/echo", body=b"x" * 1000)
        assert r.json()["body_len"] == 1000


def test_pipelined_requests_answered_in_order(server):
    with Conn(server.port) as c:
        c.send(build_request("GET", "/slow?ms=150") + build_request("GET", "/items/second") +
               build_request("POST", "/echo", body=b"third") + build_request("HEAD", "/healthz") +
               build_request("GET", "/items/fifth"))
        assert c.read_response().json() == {"slept_ms": 150}
        assert c.read_response().json() == {"id": "second"}
        assert c.read_response().json()["body"] == "third"
        head = c.read_response("HEAD")
        assert head.status == 200 and head.body == b""
        assert c.read_response().json() == {"id": "fifth"}


def test_pipelined_request_split_across_writes(server):
    with Conn(server.port) as c:
        data = build_request("GET", "/items/1") + build_request("GET", "/items/2")
        c.send(data[:30])
        c.send(data[30:])
        assert c.read_response().json() == {"id": "1"}
        assert c.read_response().json() == {"id": "2"}


def test_chunked_request_body(server):
    with Conn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer-X: y\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.json()["body"] == "hello world"
        # Keep-alive continues after a chunked body.
        assert c.request("GET", "/items/after").json() == {"id": "after"}


def test_http10_closes_by_default(server):
    with Conn(server.port) as c:
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.header("connection") == "close"
        assert c.closed_by_peer()


def test_connection_close_honoured(server):
    with Conn(server.port) as c:
        r = c.request("GET", "/healthz", headers={"Connection": "close"})
        assert r.header("connection") == "close"
        assert c.closed_by_peer()


# ---------------------------------------------------------------- request smuggling

SMUGGLED = b"GET /items/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

SMUGGLING = {
    "cl_te": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\n", 400),
    "te_cl": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
              b"0\r\n\r\n", 400),
    "duplicate_cl": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
                     400),
    "cl_list": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
    "cl_sign": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400),
    "te_not_chunked": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                       b"0\r\n\r\n", 501),
    "te_lookalike": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
    "te_duplicate": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te_http10": (b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "space_before_colon": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                           400),
    "obs_fold": (b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n", 400),
    "bare_lf": (b"POST /echo HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello", 400),
    "bad_chunk_size": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk_bare_lf": (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\nhello\r\n0\r\n\r\n", 400),
    "duplicate_host": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    "missing_host": (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_refused_and_hidden_request_not_executed(server, name):
    attack, status = SMUGGLING[name]
    with Conn(server.port) as c:
        c.send(attack + SMUGGLED)
        responses = parse_responses(c.read_until_close())
    assert len(responses) == 1, f"expected exactly one response, got {responses}"
    r = responses[0]
    assert r.status == status, r
    assert r.header("connection") == "close"
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert b"smuggled" not in r.body


# ---------------------------------------------------------------- limits


def test_413_content_length_too_large_without_reading(testd):
    d = testd("--max-body", "1024", "--workers", "1")
    with Conn(d.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        r = c.read_response()
        assert r.status == 413
        assert r.header("connection") == "close"
        assert "detail" in r.json()
        assert c.closed_by_peer()


def test_413_with_expect_gets_no_100_continue(testd):
    d = testd("--max-body", "1024", "--workers", "1")
    with Conn(d.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response(allow_interim=True)
        assert r.status == 413
        assert c.closed_by_peer()


def test_413_chunked_body_over_limit(testd):
    d = testd("--max-body", "1024", "--workers", "1")
    with Conn(d.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        c.send(b"400\r\n" + b"a" * 0x400 + b"\r\n" + b"1\r\nb\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 413
        assert r.header("connection") == "close"


def test_body_at_limit_accepted(testd):
    d = testd("--max-body", "1024", "--workers", "1")
    with Conn(d.port) as c:
        assert c.request("POST", "/echo", body=b"z" * 1024).json()["body_len"] == 1024


def test_expect_100_continue(server):
    with Conn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response(allow_interim=True)
        assert interim.status == 100
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200 and r.json()["body"] == "hello"


def test_431_head_too_large(testd):
    d = testd("--max-head", "1024", "--workers", "1")
    with Conn(d.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
        r = c.read_response()
        assert r.status == 431
        assert r.header("connection") == "close"
        assert c.closed_by_peer()


def test_431_head_never_ending(testd):
    d = testd("--max-head", "1024", "--workers", "1")
    with Conn(d.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for i in range(60):
            try:
                c.send(b"X-H%d: %s\r\n" % (i, b"v" * 20))
            except OSError:
                break
        r = c.read_response()
        assert r.status == 431


def test_slowloris_partial_head_gets_408_and_close(testd):
    d = testd("--header-timeout-ms", "300", "--workers", "1")
    with Conn(d.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        data = c.read_until_close()
    # Behaviour, not timing: the server gave up on the partial head and closed.
    assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
    if data:
        r = parse_responses(data)[0]
        assert r.header("connection") == "close"


def test_connection_without_bytes_closed_after_header_timeout(testd):
    d = testd("--header-timeout-ms", "300", "--workers", "1")
    with Conn(d.port) as c:
        assert c.read_until_close() == b""


def test_idle_keepalive_timeout_closes(testd):
    d = testd("--idle-timeout-ms", "300", "--workers", "1")
    with Conn(d.port) as c:
        assert c.request("GET", "/healthz").status == 200
        assert c.read_until_close() == b""  # silent close, no response bytes


def test_max_connections_503(testd):
    d = testd("--max-connections", "2", "--workers", "1")
    held = [Conn(d.port), Conn(d.port)]
    try:
        for c in held:  # both admitted: each answers on keep-alive
            assert c.request("GET", "/healthz").status == 200
        with Conn(d.port) as extra:
            data = extra.read_until_close()
        r = parse_responses(data)[0]
        assert r.status == 503
        assert r.json() == {"detail": "too many connections"}
        assert r.header("connection") == "close"
        d.wait_event("connection_refused")
        # Held connections still work, and once one closes a new one is admitted.
        assert held[0].request("GET", "/items/1").status == 200
        held.pop().close()

        def admitted():
            with Conn(d.port) as c:
                try:
                    return c.request("GET", "/healthz").status == 200
                except ConnectionClosed:
                    return False
        wait_until(admitted, what="a connection slot to free up")
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------- shutdown


def test_graceful_shutdown_completes_inflight(testd):
    d = testd("--workers", "2")
    port = d.port
    with Conn(port) as idle, Conn(port) as busy:
        assert idle.request("GET", "/healthz").status == 200
        busy.send(build_request("GET", "/slow?ms=800"))
        d.wait_event("slow_started")
        d.signal(signal.SIGTERM)
        r = busy.read_response()
        assert r.status == 200
        assert r.json() == {"slept_ms": 800}
        assert r.header("connection") == "close"
        assert busy.closed_by_peer()
        assert idle.closed_by_peer()  # idle keep-alive connections are closed at once
    assert d.wait_exit() == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT).close()


def test_second_sigterm_forces_exit(testd):
    d = testd("--workers", "1", "--shutdown-grace-ms", "600000")
    with Conn(d.port) as c:
        c.send(build_request("GET", "/slow?ms=600000"))
        d.wait_event("slow_started")
        d.signal(signal.SIGTERM)
        d.wait_event("shutdown_requested")
        assert d.running()
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0
        assert c.read_until_close() == b""  # aborted: no response
    d.wait_event("shutdown_forced")


def test_grace_period_bounds_shutdown(testd):
    d = testd("--workers", "1", "--shutdown-grace-ms", "300")
    with Conn(d.port) as c:
        c.send(build_request("GET", "/slow?ms=600000"))
        d.wait_event("slow_started")
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0
        assert c.read_until_close() == b""
    d.wait_event("shutdown_grace_expired")


# ---------------------------------------------------------------- listeners


def test_inherited_listening_socket(daemons):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    fd = s.fileno()
    try:
        d = daemons([harness.testd_path(), "--listen-fd", str(fd), "--workers", "2"], pass_fds=[fd])
    finally:
        s.close()  # the daemon holds its own copy
    assert d.port == port
    assert d.listening[0]["fd"] == fd
    with Conn(port) as c:
        assert c.request("GET", "/healthz").json() == {"status": "ok"}


def test_systemd_socket_activation(daemons):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    fd = s.fileno()
    # LISTEN_PID must be the daemon's pid: a small exec wrapper moves the socket to fd 3 (systemd's
    # SD_LISTEN_FDS_START), exports its own pid, and execs the daemon (same pid).
    wrapper = ("import os, sys\n"
               "fd = int(sys.argv[1])\n"
               "os.dup2(fd, 3)\n"
               "os.close(fd)\n"
               "os.environ['LISTEN_PID'] = str(os.getpid())\n"
               "os.environ['LISTEN_FDS'] = '1'\n"
               "os.execv(sys.argv[2], sys.argv[2:])\n")
    try:
        d = daemons([sys.executable, "-c", wrapper, str(fd), harness.testd_path(), "--workers", "1"],
                    pass_fds=[fd])
    finally:
        s.close()
    assert d.listening[0]["fd"] == 3
    assert d.port == port
    with Conn(port) as c:
        assert c.request("GET", "/healthz").status == 200


def test_two_listeners(testd):
    d = testd("--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--workers", "1")
    assert len(d.ports) == 2 and d.ports[0] != d.ports[1]
    for p in d.ports:
        with Conn(p) as c:
            assert c.request("GET", "/healthz").status == 200


def test_listen_fd_not_a_socket_fails_clearly(daemons):
    r, w = os.pipe()
    try:
        d = daemons([harness.testd_path(), "--listen-fd", str(r)], pass_fds=[r], wait_ready=False)
        rc = d.wait_exit()
    finally:
        os.close(r)
        os.close(w)
    assert rc != 0
    assert f"listen fd {r} is not a socket" in d.stderr_text()


def test_listen_fd_not_listening_fails_clearly(daemons):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    fd = s.fileno()
    try:
        d = daemons([harness.testd_path(), "--listen-fd", str(fd)], pass_fds=[fd], wait_ready=False)
        rc = d.wait_exit()
    finally:
        s.close()
    assert rc != 0
    assert "not listening" in d.stderr_text()


@pytest.mark.parametrize("spec", ["localhost:80", "127.0.0.1", "[::1:80", "1.2.3.4:99999", "::1:80"])
def test_bad_listen_spec_is_usage_error(daemons, spec):
    d = daemons([harness.testd_path(), "--listen", spec], wait_ready=False)
    assert d.wait_exit() == 2
    assert "listen address" in d.stderr_text()


def test_unknown_flag_exit_2(daemons):
    d = daemons([harness.testd_path(), "--frobnicate", "1"], wait_ready=False)
    assert d.wait_exit() == 2
    assert "unknown option '--frobnicate'" in d.stderr_text()


def test_address_in_use_fails(testd, daemons):
    first = testd("--workers", "1")
    d = daemons([harness.testd_path(), "--listen", f"127.0.0.1:{first.port}"], wait_ready=False)
    assert d.wait_exit() == 1
    assert "cannot bind" in d.stderr_text()


# ---------------------------------------------------------------- robustness


def test_head_sent_one_byte_at_a_time(server):
    with Conn(server.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in build_request("GET", "/items/slow-client"):
            c.send(bytes([b]))
        assert c.read_response().json() == {"id": "slow-client"}


def test_body_sent_in_pieces(server):
    with Conn(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        c.send(b"56789" + build_request("GET", "/items/next"))
        assert c.read_response().json()["body"] == "0123456789"
        assert c.read_response().json() == {"id": "next"}


def test_concurrent_clients_across_workers(testd):
    import threading
    d = testd("--workers", "2")
    errors = []

    def client(n):
        try:
            with Conn(d.port) as c:
                for i in range(20):
                    r = c.request("POST", f"/echo?c={n}&i={i}", body=f"{n}-{i}".encode())
                    assert r.json()["body"] == f"{n}-{i}"
        except Exception as e:  # reported below with the thread number
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(IO_TIMEOUT * 3)
    assert not errors


def test_client_reset_mid_request_is_harmless(server):
    import struct
    for partial in (b"GET /heal", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
        s.sendall(partial)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        s.close()
    with Conn(server.port) as c:
        assert c.request("GET", "/healthz").status == 200


def test_sighup_is_not_fatal(server):
    server.signal(signal.SIGHUP)
    server.wait_event("reload_requested")
    with Conn(server.port) as c:
        assert c.request("GET", "/healthz").status == 200
    assert server.running()


def test_sigint_is_graceful(server):
    server.signal(signal.SIGINT)
    assert server.wait_exit() == 0
    assert server.records("shutdown_requested")[0]["signal"] == "SIGINT"
