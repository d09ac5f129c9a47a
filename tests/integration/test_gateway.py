"""Black-box tests of `paddock gateway`: a real origin (tests/integration/gateway/origin.py) on 127.0.0.1,
names mapped to it with upstream.hosts, raw client sockets, and checks of what the client AND the origin
see. Loopback only. Every log line of every gateway is scanned for the credential's value."""

import json
import os
import signal
import socket
import ssl
import sys
import time

import pytest

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway"))
from origin import Echo, Origin  # noqa: E402

SECRET = "pd-test-secret-value-7f3a9c"
NAMES = ["api.test", "a.wild.test", "deep.a.wild.test", "wild.test", "evilwild.test", "noprivate.test",
         "other.test", "limited.test", "budget.test", "cred.test"]


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


@pytest.fixture
def echo():
    e = Echo()
    yield e
    e.stop()


def base_cfg(port, extra_ports=()):
    ports = [port, *extra_ports]
    return {
        "sandbox_id": "sbx-test",
        "allow": [
            {"host": "api.test", "ports": ports, "allow_private": True},
            {"host": "*.wild.test", "ports": ports, "allow_private": True},
            {"host": "noprivate.test", "ports": ports},
            {"host": "limited.test", "ports": ports, "allow_private": True},
            {"host": "budget.test", "ports": ports, "allow_private": True},
        ],
        "credentials": [{"name": "TEST_TOKEN", "domain": "cred.test", "header": "Authorization",
                         "format": "Bearer {value}", "value_env": "PD_TEST_GW_SECRET"}],
        "upstream": {"hosts": {n: ["127.0.0.1"] for n in NAMES}, "connect_timeout_ms": 2000},
        "limits": {"header_timeout_ms": 1000, "idle_timeout_ms": 5000, "max_head": 4096},
    }


@pytest.fixture
def gateway(daemons, tmp_path):
    started = []

    def start(cfg, *args, name="gw.json", env_extra=None):
        path = tmp_path / name
        path.write_text(json.dumps(cfg))
        env = dict(os.environ, PD_TEST_GW_SECRET=SECRET, **(env_extra or {}))
        d = daemons([harness.paddock_path(), "gateway", "--config", str(path), "--listen", "127.0.0.1:0",
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


def raw_req(method, target, host, body=None, headers=(), version="1.1"):
    lines = [f"{method} {target} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    hs = list(headers)
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
        hs.append(("Content-Length", str(len(body))))
    lines += [f"{k}: {v}" for k, v in hs]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data + (body or b"")


def send(gw, data, method="GET"):
    with harness.Conn(gw.proxy_port) as c:
        c.send(data)
        return c.read_response(method)


def access_lines(gw, n=1):
    """The access-log lines, once at least n were written (the line follows the response)."""
    return gw.wait_event("access", count=n)


# ---------------------------------------------------------------- command line


def test_check_prints_policy_without_secret(tmp_path, origin):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(base_cfg(origin.port)))
    import subprocess
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", str(path), "--check"], capture_output=True,
                       env=dict(os.environ, PD_TEST_GW_SECRET=SECRET), timeout=10)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    desc = json.loads(out)
    assert desc["sandbox_id"] == "sbx-test"
    assert SECRET not in out and SECRET not in r.stderr.decode()
    assert "[redacted]" in out


def test_check_bad_config_reports_position(tmp_path):
    import subprocess
    path = tmp_path / "bad.yaml"
    path.write_text("allow:\n  - host: api.test\n    prots: [80]\n")
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", str(path), "--check"], capture_output=True,
                       timeout=10)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "bad.yaml:3:5" in err and "prots" in err, err


def test_usage_errors(tmp_path):
    import subprocess
    p = harness.paddock_path()
    r = subprocess.run([p, "gateway"], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"--config" in r.stderr
    r = subprocess.run([p, "gateway", "--config", "x", "--bogus"], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"unknown option" in r.stderr
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    r = subprocess.run([p, "gateway", "--config", str(cfg)], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"no listener" in r.stderr and b"--dns-listen" in r.stderr


def test_admin_healthz_and_metrics(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.admin_port) as c:
        r = c.request("GET", "/healthz")
        assert r.status == 200 and r.json() == {"status": "ok"}
    send(gw, raw_req("GET", f"http://api.test:{origin.port}/m", f"api.test:{origin.port}"))
    send(gw, raw_req("GET", f"http://blocked.test:{origin.port}/m", f"blocked.test:{origin.port}"))
    access_lines(gw, 2)
    with harness.Conn(gw.admin_port) as c:
        r = c.request("GET", "/metrics")
    text = r.body.decode()
    assert r.status == 200
    assert 'paddock_gateway_requests_total{decision="allow",error="none"} 1' in text
    assert 'paddock_gateway_requests_total{decision="deny",error="destination_not_allowed"} 1' in text
    assert "paddock_gateway_tunnels_active 0" in text
    assert "paddock_gateway_request_duration_seconds_count 2" in text
    assert "paddock_http_requests_total" in text


def test_sigterm_exits_zero(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit() == 0


# ---------------------------------------------------------------- plain HTTP


def test_allowed_get(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/v1/x?q=1", f"api.test:{origin.port}",
                         headers=[("Proxy-Connection", "keep-alive"), ("X-Keep", "1"),
                                  ("Connection", "X-Drop"), ("X-Drop", "gone")]))
    assert r.status == 200 and r.header("x-origin") == "yes"
    assert r.json()["target"] == "/v1/x?q=1"
    (rec,) = origin.requests
    names = {k.lower(): v for k, v in rec["headers"]}
    assert names["host"] == f"api.test:{origin.port}"
    assert names["x-keep"] == "1"
    assert "proxy-connection" not in names and "x-drop" not in names
    (a,) = access_lines(gw)
    assert a["decision"] == "allow" and a["host"] == "api.test" and a["status"] == 200
    assert a["path"] == "/v1/x" and a["sandbox_id"] == "sbx-test" and a["upstream"] == f"127.0.0.1:{origin.port}"
    assert a["bytes_received"] > 0 and a["bytes_sent"] > 0


def test_post_body_byte_identical(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    body = bytes(range(256)) * 1000
    r = send(gw, raw_req("POST", f"http://api.test:{origin.port}/up", f"api.test:{origin.port}", body=body),
             "POST")
    assert r.status == 200
    assert origin.requests[0]["body"] == body


def test_chunked_body_forwarded(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    chunked = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
    r = send(gw, raw_req("POST", f"http://api.test:{origin.port}/c", f"api.test:{origin.port}", body=chunked,
                         headers=[("Transfer-Encoding", "chunked")]), "POST")
    assert r.status == 200
    rec = origin.requests[0]
    assert rec["body"] == b"hello world"
    assert rec["raw_body"] == chunked


def test_large_response_relayed(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/big", f"api.test:{origin.port}"))
    assert r.status == 200 and r.body == b"x" * 200000


def test_denied_host_403(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://other.test:{origin.port}/", f"other.test:{origin.port}"))
    assert r.status == 403
    assert r.header("x-paddock-error") == "destination_not_allowed"
    assert r.header("content-type") == "application/json"
    j = r.json()
    assert j["error"] == "destination_not_allowed" and j["host"] == "other.test" and j["reason"]
    assert "rule" in j
    assert origin.connections == 0 and origin.requests == []
    (a,) = access_lines(gw)
    assert a["decision"] == "deny" and a["error"] == "destination_not_allowed" and a["status"] == 403


def test_port_not_allowed(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", "http://api.test:1/", "api.test:1"))
    assert r.status == 403 and r.json()["error"] == "port_not_allowed"


def test_host_header_mismatch(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/", f"other.test:{origin.port}"))
    assert r.status == 400 and r.header("x-paddock-error") == "host_mismatch"
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/", "api.test"))  # port 80 != target port
    assert r.status == 400 and r.json()["error"] == "host_mismatch"
    assert origin.connections == 0


def test_origin_form_and_https_refused(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", "/", "api.test"))
    assert r.status == 400 and "absolute-form" in r.json()["reason"]
    r = send(gw, raw_req("GET", "https://api.test/", "api.test"))
    assert r.status == 400 and "CONNECT" in r.json()["reason"]
    assert origin.connections == 0


@pytest.mark.parametrize("spelling", ["127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "[::ffff:127.0.0.1]",
                                      "127.0.0.1"])
def test_ip_literals_refused_without_cidr(gateway, origin, spelling):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://{spelling}:{origin.port}/", f"{spelling}:{origin.port}"))
    assert r.status == 403, r
    assert r.json()["error"] == "ip_literal_not_allowed"
    assert origin.connections == 0


def test_cidr_rule_allows_literal(gateway, origin):
    cfg = base_cfg(origin.port)
    cfg["allow"].append({"cidr": "127.0.0.1/32", "ports": [origin.port], "allow_private": True})
    gw = gateway(cfg)
    r = send(gw, raw_req("GET", f"http://0x7f.0.0.1:{origin.port}/lit", f"0x7f.0.0.1:{origin.port}"))
    assert r.status == 200
    assert origin.requests[0]["target"] == "/lit"


def test_private_address_not_allowed(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://noprivate.test:{origin.port}/", f"noprivate.test:{origin.port}"))
    assert r.status == 403 and r.header("x-paddock-error") == "private_address_not_allowed"
    assert "127.0.0.1" in r.json()["reason"]
    assert origin.connections == 0


def test_case_and_trailing_dot(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://API.Test.:{origin.port}/", f"api.TEST:{origin.port}"))
    assert r.status == 200
    assert dict((k.lower(), v) for k, v in origin.requests[0]["headers"])["host"] == f"api.test:{origin.port}"
    assert access_lines(gw)[0]["host"] == "api.test"


@pytest.mark.parametrize("host,ok", [("a.wild.test", True), ("deep.a.wild.test", True), ("wild.test", False),
                                     ("evilwild.test", False)])
def test_wildcard(gateway, origin, host, ok):
    gw = gateway(base_cfg(origin.port))
    r = send(gw, raw_req("GET", f"http://{host}:{origin.port}/", f"{host}:{origin.port}"))
    assert (r.status == 200) == ok, r
    assert (len(origin.requests) == 1) == ok


def test_keepalive_each_request_decided(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/one", f"api.test:{origin.port}"))
        r1 = c.read_response()
        assert r1.status == 200
        c.send(raw_req("GET", f"http://other.test:{origin.port}/two", f"other.test:{origin.port}"))
        r2 = c.read_response()
        assert r2.status == 403
        c.send(raw_req("GET", f"http://api.test:{origin.port}/three", f"api.test:{origin.port}"))
        r3 = c.read_response()
        assert r3.status == 200
    assert [q["target"] for q in origin.requests] == ["/one", "/three"]


def test_pipelined_requests(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/p1", f"api.test:{origin.port}") +
               raw_req("GET", f"http://other.test:{origin.port}/p2", f"other.test:{origin.port}") +
               raw_req("GET", f"http://api.test:{origin.port}/p3", f"api.test:{origin.port}"))
        assert [c.read_response().status for _ in range(3)] == [200, 403, 200]
    assert [q["target"] for q in origin.requests] == ["/p1", "/p3"]


def test_smuggling_cl_te_refused(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    body = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: api.test\r\n\r\n"
    data = raw_req("POST", f"http://api.test:{origin.port}/", f"api.test:{origin.port}", body=body,
                   headers=[("Content-Length", str(len(body))), ("Transfer-Encoding", "chunked")])
    with harness.Conn(gw.proxy_port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 400 and r.header("x-paddock-error") == "bad_request"
        assert c.closed_by_peer()
    assert origin.connections == 0


def test_oversized_head_431(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    data = raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}",
                   headers=[("X-Big", "a" * 6000)])
    r = send(gw, data)
    assert r.status == 431
    assert origin.connections == 0


def test_slowloris_header_timeout(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(f"GET http://api.test:{origin.port}/ HTTP/1.1\r\nHost: api".encode())
        t0 = time.monotonic()
        r = c.read_response()
        assert r.status == 408
        assert time.monotonic() - t0 < 5
        assert c.closed_by_peer()
    # An idle connection that never sent anything is closed silently.
    with harness.Conn(gw.proxy_port) as c:
        assert c.closed_by_peer()
    assert origin.connections == 0


def test_rate_limit_429(gateway, origin):
    cfg = base_cfg(origin.port)
    cfg["rate_limits"] = [{"domain": "limited.test", "requests_per_minute": 1, "burst_size": 2}]
    gw = gateway(cfg)
    statuses = []
    for _ in range(3):
        r = send(gw, raw_req("GET", f"http://limited.test:{origin.port}/", f"limited.test:{origin.port}"))
        statuses.append(r.status)
    assert statuses == [200, 200, 429]
    assert r.header("x-paddock-error") == "rate_limited"
    assert int(r.header("retry-after")) >= 1
    assert len(origin.requests) == 2
    # Other hosts are not limited by that rule.
    assert send(gw, raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}")).status == 200


def test_budget_exhausted_429(gateway, origin, tmp_path):
    cfg = base_cfg(origin.port)
    cfg["budgets"] = [{"domain": "budget.test", "bytes_sent_per_hour": 1000}]
    cfg["state_file"] = str(tmp_path / "state.json")
    gw = gateway(cfg)
    body = b"b" * 1500
    r = send(gw, raw_req("POST", f"http://budget.test:{origin.port}/", f"budget.test:{origin.port}", body=body),
             "POST")
    assert r.status == 200
    r = send(gw, raw_req("GET", f"http://budget.test:{origin.port}/", f"budget.test:{origin.port}"))
    assert r.status == 429 and r.header("x-paddock-error") == "budget_exhausted"
    assert "budget" in r.json()["reason"]
    assert len(origin.requests) == 1
    # Persisted: the state file names the key (flushed every second and at shutdown).
    gw.stop()
    state = json.loads((tmp_path / "state.json").read_text())
    assert "budget.test" in state["budgets"]


def make_ca(d, name):
    """A test CA (key + certificate) in directory d, made with the openssl command."""
    import subprocess
    key, crt = d / f"{name}.key", d / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={name}", "-days", "2",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
                   check=True, capture_output=True)
    return key, crt


def make_cert(d, ca, names):
    import subprocess
    key, csr, crt = d / "srv.key", d / "srv.csr", d / "srv.pem"
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}"], check=True,
                   capture_output=True)
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]),
                    "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)], check=True,
                   capture_output=True)
    return key, crt


@pytest.fixture
def tls_origin(tmp_path):
    """An HTTPS origin on 127.0.0.1:443 (the port the gateway dials for aliases and upgraded requests)
    with a certificate for cred.test from a test CA; yields (origin, ca_file)."""
    d = tmp_path / "pki"
    d.mkdir()
    ca = make_ca(d, "test-ca")
    key, crt = make_cert(d, ca, ["cred.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    try:
        o = Origin(port=443, ssl_ctx=ctx)
    except OSError as e:
        pytest.skip(f"cannot bind 127.0.0.1:443 here: {e}")
    yield o, str(ca[1])
    o.stop()


def tls_cfg(port, ca_file, **cred):
    cfg = base_cfg(port)
    cfg["allow"].append({"host": "cred.test", "ports": [80, 443], "allow_private": True})
    cfg["credentials"][0].update(cred)
    cfg["upstream"]["ca_file"] = ca_file
    return cfg


def test_upgrade_http_injects_credential_over_tls(gateway, origin, tls_origin):
    o, ca = tls_origin
    gw = gateway(tls_cfg(origin.port, ca, upgrade_http=True))
    r = send(gw, raw_req("GET", "http://cred.test/v1/me?x=1", "cred.test",
                         headers=[("Authorization", "Bearer agent-guess")]))
    assert r.status == 200, r
    assert SECRET.encode() not in r.raw_head + r.body
    (rec,) = o.requests
    auth = [v for k, v in rec["headers"] if k.lower() == "authorization"]
    assert auth == [f"Bearer {SECRET}"]
    host = [v for k, v in rec["headers"] if k.lower() == "host"]
    assert host == ["cred.test"] and rec["target"] == "/v1/me?x=1"
    a = access_lines(gw)[0]
    assert a["credential"] == "TEST_TOKEN" and a["upstream"] == "127.0.0.1:443"
    # Plain http to the same host without a credential rule is not upgraded: origin (plain) untouched.
    assert origin.requests == []


def test_alias_reaches_real_domain_over_tls(gateway, origin, tls_origin):
    o, ca = tls_origin
    gw = gateway(tls_cfg(origin.port, ca, alias="credalias"))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("POST", "http://credalias.devbox.local/api", "credalias.devbox.local", body=b"hello"))
        r = c.read_response("POST")
        assert r.status == 200
        c.send(raw_req("GET", "http://credalias.devbox.local/again", "credalias.devbox.local"))
        assert c.read_response().status == 200
    assert [q["target"] for q in o.requests] == ["/api", "/again"]
    assert o.requests[0]["body"] == b"hello"
    hdrs = {k.lower(): v for k, v in o.requests[0]["headers"]}
    assert hdrs["host"] == "cred.test" and hdrs["authorization"] == f"Bearer {SECRET}"
    r = send(gw, raw_req("GET", "http://nosuch.devbox.local/", "nosuch.devbox.local"))
    assert r.status == 403 and r.json()["error"] == "unknown_alias"


def test_upstream_tls_verification_failure(gateway, origin, tls_origin, tmp_path):
    o, _ = tls_origin
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_ca = make_ca(other, "other-ca")
    gw = gateway(tls_cfg(origin.port, str(wrong_ca), upgrade_http=True))
    r = send(gw, raw_req("GET", "http://cred.test/", "cred.test"))
    assert r.status == 502 and r.header("x-paddock-error") == "upstream_tls_failed"
    assert "certificate" in r.json()["reason"]
    assert o.requests == []


def test_reload_rereads_ca_file_replaced_in_place(gateway, origin, tls_origin, tmp_path):
    """An operator replaces the CA bundle at the same path and sends SIGHUP: the new CA is used."""
    import shutil
    o, right_ca = tls_origin
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_ca = make_ca(other, "other-ca")
    bundle = tmp_path / "bundle.pem"
    shutil.copy(wrong_ca, bundle)
    gw = gateway(tls_cfg(origin.port, str(bundle), upgrade_http=True))
    r = send(gw, raw_req("GET", "http://cred.test/", "cred.test"))
    assert r.status == 502 and r.header("x-paddock-error") == "upstream_tls_failed"
    shutil.copy(right_ca, bundle)
    gw.signal(signal.SIGHUP)
    gw.wait_event("reloaded")
    r = send(gw, raw_req("GET", "http://cred.test/", "cred.test"))
    assert r.status == 200, r
    hdrs = {k.lower(): v for k, v in o.requests[-1]["headers"]}
    assert hdrs["authorization"] == f"Bearer {SECRET}"


# ---------------------------------------------------------------- CONNECT


def test_connect_tunnel_echo(gateway, echo, origin):
    gw = gateway(base_cfg(origin.port, extra_ports=[echo.port]))
    with harness.Conn(gw.proxy_port) as c:
        c.send(f"CONNECT api.test:{echo.port} HTTP/1.1\r\nHost: api.test:{echo.port}\r\n\r\n".encode())
        head = c._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        payload = os.urandom(300000)
        c.send(payload)
        got = c._read_exact(len(payload))
        assert got == payload
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_until_close() == b""
    recs = gw.wait_event("access")
    a = recs[0]
    assert a["method"] == "CONNECT" and a["decision"] == "allow" and a["bytes_sent"] == 300000
    assert a["bytes_received"] == 300000


def test_connect_denied(gateway, echo, origin):
    gw = gateway(base_cfg(origin.port, extra_ports=[echo.port]))
    r = send(gw, f"CONNECT other.test:{echo.port} HTTP/1.1\r\nHost: other.test:{echo.port}\r\n\r\n".encode(),
             "CONNECT")
    assert r.status == 403 and r.json()["error"] == "destination_not_allowed"
    assert echo.connections == 0


def client_hello(server_name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


@pytest.fixture
def listener443():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", 443))
    except OSError:
        s.close()
        yield None
        return
    s.listen(4)
    s.setblocking(False)
    yield s
    s.close()


def test_connect_443_sni_mismatch_closed(gateway, origin, listener443):
    gw = gateway(base_cfg(origin.port, extra_ports=[443]))
    with harness.Conn(gw.proxy_port) as c:
        c.send(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
        head = c._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        c.send(client_hello("evil.example"))
        assert c.read_until_close() == b""
    rec = gw.wait_event("tunnel_refused")[0]
    assert rec["error"] == "tls_sni_mismatch"
    if listener443 is not None:
        with pytest.raises(BlockingIOError):
            listener443.accept()


def test_connect_443_not_tls_closed(gateway, origin):
    gw = gateway(base_cfg(origin.port, extra_ports=[443]))
    with harness.Conn(gw.proxy_port) as c:
        c.send(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
        c._read_until(b"\r\n\r\n")
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        assert c.read_until_close() == b""
    assert gw.wait_event("tunnel_refused")[0]["error"] == "tls_hello_not_tls"


def test_connect_443_matching_sni_dials(gateway, origin, listener443):
    if listener443 is None:
        pytest.skip("cannot bind 127.0.0.1:443 here")
    gw = gateway(base_cfg(origin.port, extra_ports=[443]))
    hello = client_hello("api.test")
    with harness.Conn(gw.proxy_port) as c:
        c.send(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
        c._read_until(b"\r\n\r\n")
        c.send(hello)
        listener443.setblocking(True)
        listener443.settimeout(5)
        up, _ = listener443.accept()
        got = b""
        up.settimeout(5)
        while len(got) < len(hello):
            got += up.recv(65536)
        assert got == hello
        up.close()


# ---------------------------------------------------------------- reload


def test_reload_invalid_keeps_policy(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    gw.config_path.write_text('{"allow": [{"host": "api.test", "prots": [1]}]}')
    gw.signal(signal.SIGHUP)
    rec = gw.wait_event("reload_failed")[0]
    assert "prots" in rec["error"] and ":1:" in rec["error"]
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}"))
    assert r.status == 200


def test_reload_closes_denied_tunnel(gateway, echo, origin):
    cfg = base_cfg(origin.port, extra_ports=[echo.port])
    gw = gateway(cfg)
    with harness.Conn(gw.proxy_port) as c, harness.Conn(gw.proxy_port) as c2:
        for conn, host in ((c, "api.test"), (c2, "a.wild.test")):
            conn.send(f"CONNECT {host}:{echo.port} HTTP/1.1\r\nHost: {host}:{echo.port}\r\n\r\n".encode())
            assert conn._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
            conn.send(b"ping")
            assert conn._read_exact(4) == b"ping"
        cfg["allow"] = [a for a in cfg["allow"] if a["host"] != "api.test"]
        gw.config_path.write_text(json.dumps(cfg))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        assert c.read_until_close() == b""
        rec = gw.wait_event("tunnel_closed")[0]
        assert rec["host"] == "api.test" and rec["cause"] == "reload"
        # The other tunnel is still allowed and still works; new requests see the new policy.
        c2.send(b"pong")
        assert c2._read_exact(4) == b"pong"
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}"))
    assert r.status == 403


# ---------------------------------------------------------------- limits, failures, shutdown


def test_metadata_address_refused(gateway, origin):
    cfg = base_cfg(origin.port)
    cfg["allow"].append({"host": "meta.test", "ports": [80]})
    cfg["upstream"]["hosts"]["meta.test"] = ["169.254.169.254"]
    gw = gateway(cfg)
    r = send(gw, raw_req("GET", "http://meta.test/latest/meta-data/", "meta.test"))
    assert r.status == 403 and r.json()["error"] == "private_address_not_allowed"
    assert "169.254.169.254" in r.json()["reason"]


def test_upstream_unreachable_502(gateway, origin):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed_port = s.getsockname()[1]
    s.close()
    gw = gateway(base_cfg(origin.port, extra_ports=[closed_port]))
    r = send(gw, raw_req("GET", f"http://api.test:{closed_port}/", f"api.test:{closed_port}"))
    assert r.status == 502 and r.header("x-paddock-error") == "upstream_unreachable"
    with harness.Conn(gw.admin_port) as c:
        text = c.request("GET", "/metrics").body.decode()
    assert "paddock_gateway_upstream_connect_failures_total 1" in text


def test_connection_cap_503(gateway, origin):
    cfg = base_cfg(origin.port)
    cfg["limits"]["max_connections"] = 1
    gw = gateway(cfg)
    with harness.Conn(gw.proxy_port) as first:
        first.send(raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}"))
        assert first.read_response().status == 200
        r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}"))
        assert r.status == 503 and r.header("x-paddock-error") == "too_many_connections"


def test_head_and_keepalive_after_body(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("HEAD", f"http://api.test:{origin.port}/h", f"api.test:{origin.port}"))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        c.send(raw_req("POST", f"http://api.test:{origin.port}/p", f"api.test:{origin.port}", body=b"abc"))
        assert c.read_response("POST").status == 200
        c.send(raw_req("GET", f"http://api.test:{origin.port}/g", f"api.test:{origin.port}"))
        assert c.read_response().status == 200
    assert [q["method"] for q in origin.requests] == ["HEAD", "POST", "GET"]


def test_tunnel_closed_when_budget_spent(gateway, echo, origin):
    cfg = base_cfg(origin.port, extra_ports=[echo.port])
    cfg["budgets"] = [{"domain": "budget.test", "bytes_sent_per_hour": 1000}]
    gw = gateway(cfg)
    with harness.Conn(gw.proxy_port) as c:
        c.send(f"CONNECT budget.test:{echo.port} HTTP/1.1\r\nHost: budget.test:{echo.port}\r\n\r\n".encode())
        assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        c.send(b"z" * 5000)
        c.read_until_close()
        assert c.eof
    rec = gw.wait_event("access")[0]
    assert rec["error"] == "budget_exhausted"
    r = send(gw, f"CONNECT budget.test:{echo.port} HTTP/1.1\r\nHost: budget.test:{echo.port}\r\n\r\n".encode(),
             "CONNECT")
    assert r.status == 429 and r.json()["error"] == "budget_exhausted"


def test_sigterm_with_open_tunnel_exits_promptly(gateway, echo, origin):
    gw = gateway(base_cfg(origin.port, extra_ports=[echo.port]))
    with harness.Conn(gw.proxy_port) as c:
        c.send(f"CONNECT api.test:{echo.port} HTTP/1.1\r\nHost: api.test:{echo.port}\r\n\r\n".encode())
        assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        assert gw.wait_exit() == 0
        assert time.monotonic() - t0 < 5
        assert c.read_until_close() == b""


def test_chunked_response_relayed_and_dechunked_for_http10(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/chunked", f"api.test:{origin.port}"))
        head = c._read_until(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        body = c._read_until(b"0\r\nX-Trailer: t\r\n\r\n")
        assert body == b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
        # Still kept alive: a second request on the same connection.
        c.send(raw_req("GET", f"http://api.test:{origin.port}/after", f"api.test:{origin.port}"))
        assert c.read_response().status == 200
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/chunked", f"api.test:{origin.port}", version="1.0"))
        data = c.read_until_close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"transfer-encoding" not in head.lower() and b"connection: close" in head.lower()
        assert body == b"hello, world"


def test_large_upload_streams_with_backpressure(gateway, origin):
    import hashlib
    gw = gateway(base_cfg(origin.port))
    body = os.urandom(1 << 20) * 16  # 16 MiB
    r = send(gw, raw_req("POST", f"http://api.test:{origin.port}/bulk", f"api.test:{origin.port}", body=body),
             "POST")
    assert r.status == 200 and r.json()["body_len"] == len(body)
    assert hashlib.sha256(origin.requests[0]["body"]).digest() == hashlib.sha256(body).digest()


def test_large_tunnel_transfer_both_ways(gateway, echo, origin):
    import threading
    gw = gateway(base_cfg(origin.port, extra_ports=[echo.port]))
    payload = os.urandom(1 << 20) * 16
    with harness.Conn(gw.proxy_port, timeout=30) as c:
        c.send(f"CONNECT api.test:{echo.port} HTTP/1.1\r\nHost: api.test:{echo.port}\r\n\r\n".encode())
        assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        sender = threading.Thread(target=c.sock.sendall, args=(payload,))
        sender.start()
        got = c._read_exact(len(payload))
        sender.join()
        assert got == payload


def test_tunnel_half_close_from_upstream(gateway, origin):
    """The upstream finishes sending first: the client gets its bytes and EOF, and can still send;
    the upstream receives those bytes and then the client's EOF (half-close passes both ways)."""
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = {}

    def upstream():
        conn, _ = srv.accept()
        conn.settimeout(10)
        conn.sendall(b"server-says-bye" * 1000)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            b = conn.recv(65536)
            if not b:
                break
            data += b
        got["data"] = data
        conn.close()

    t = threading.Thread(target=upstream)
    t.start()
    try:
        gw = gateway(base_cfg(origin.port, extra_ports=[port]))
        with harness.Conn(gw.proxy_port) as c:
            c.send(f"CONNECT api.test:{port} HTTP/1.1\r\nHost: api.test:{port}\r\n\r\n".encode())
            assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
            assert c._read_exact(15000) == b"server-says-bye" * 1000
            assert c.sock.recv(1) == b""  # the upstream's FIN arrived
            c.send(b"client-after-eof" * 5000)
            c.sock.shutdown(socket.SHUT_WR)
            assert c.read_until_close() == b""
        t.join(10)
        assert got["data"] == b"client-after-eof" * 5000
        rec = gw.wait_event("access")[0]
        assert rec["bytes_sent"] == 80000 and rec["bytes_received"] == 15000
        assert rec["error"] is None
    finally:
        srv.close()
        t.join(10)


def test_large_tunnel_counts_every_byte(gateway, echo, origin):
    """16 MiB each way through a tunnel: byte-identical, and the access log counts every byte."""
    import threading
    gw = gateway(base_cfg(origin.port, extra_ports=[echo.port]))
    payload = os.urandom(1 << 20) * 16
    with harness.Conn(gw.proxy_port, timeout=30) as c:
        c.send(f"CONNECT api.test:{echo.port} HTTP/1.1\r\nHost: api.test:{echo.port}\r\n\r\n".encode())
        assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        sender = threading.Thread(target=c.sock.sendall, args=(payload,))
        sender.start()
        got = c._read_exact(len(payload))
        sender.join()
        assert got == payload
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_until_close() == b""
    rec = gw.wait_event("access")[0]
    assert rec["bytes_sent"] == len(payload) and rec["bytes_received"] == len(payload)


def test_idle_keepalive_connection_closed(gateway, origin):
    cfg = base_cfg(origin.port)
    cfg["limits"]["idle_timeout_ms"] = 300
    gw = gateway(cfg)
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/", f"api.test:{origin.port}"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.closed_by_peer()
        assert time.monotonic() - t0 < 3


def test_websocket_upgrade_relayed(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/ws", f"api.test:{origin.port}",
                       headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                ("Sec-WebSocket-Version", "13")]))
        head = c._read_until(b"\r\n\r\n").lower()
        assert head.startswith(b"http/1.1 101") and b"upgrade: websocket" in head
        assert b"connection: upgrade" in head
        c.send(b"\x81\x05hello")
        assert c._read_exact(7) == b"\x81\x05hello"
    hdrs = {k.lower(): v for k, v in origin.requests[0]["headers"]}
    assert hdrs["upgrade"] == "websocket" and hdrs["connection"].lower() == "upgrade"
    a = gw.wait_event("access")[0]
    assert a["status"] == 101 and a["method"] == "GET" and a["path"] == "/ws"


def test_reload_closes_denied_websocket(gateway, origin):
    cfg = base_cfg(origin.port)
    gw = gateway(cfg)
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/ws", f"api.test:{origin.port}",
                       headers=[("Connection", "Upgrade"), ("Upgrade", "websocket")]))
        assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
        cfg["allow"][0]["paths"] = ["/api/"]
        gw.config_path.write_text(json.dumps(cfg))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        assert c.read_until_close() == b""
    assert gw.wait_event("tunnel_closed")[0]["error"] == "path_not_allowed"


def test_inherited_listen_fd(daemons, tmp_path, origin):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    path = tmp_path / "fd.json"
    path.write_text(json.dumps(base_cfg(origin.port)))
    env = dict(os.environ, PD_TEST_GW_SECRET=SECRET)
    gw = daemons([harness.paddock_path(), "gateway", "--config", str(path), "--listen-fd", str(s.fileno()),
                  "--workers", "1"], env=env, pass_fds=[s.fileno()])
    s.close()
    assert gw.port == port
    with harness.Conn(port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/fd", f"api.test:{origin.port}"))
        assert c.read_response().status == 200
    assert SECRET not in gw.stderr_text()


def pool_hits(gw):
    with harness.Conn(gw.admin_port) as c:
        text = c.request("GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith("paddock_gateway_upstream_pool_hits_total "):
            return int(line.split()[1])
    raise AssertionError("no pool metric")


def test_upstream_pool_reuses_connection(gateway, origin):
    gw = gateway(base_cfg(origin.port, extra_ports=[]), "--workers", "1")
    for i in range(3):
        r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/r{i}", f"api.test:{origin.port}"))
        assert r.status == 200
    assert origin.connections == 1
    assert [q["target"] for q in origin.requests] == ["/r0", "/r1", "/r2"]
    assert pool_hits(gw) == 2
    # A request with a body is never sent on a pooled connection.
    r = send(gw, raw_req("POST", f"http://api.test:{origin.port}/p", f"api.test:{origin.port}", body=b"x"), "POST")
    assert r.status == 200 and origin.connections == 2


def test_stale_pooled_connection_retried_fresh(gateway, origin):
    gw = gateway(base_cfg(origin.port), "--workers", "1")
    assert send(gw, raw_req("GET", f"http://api.test:{origin.port}/arm-stale", f"api.test:{origin.port}")).status == 200
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}/after", f"api.test:{origin.port}"))
    assert r.status == 200 and r.json()["target"] == "/after"
    assert origin.connections == 2
    assert pool_hits(gw) == 1


def test_concurrent_mixed_traffic(gateway, origin, echo):
    import threading
    gw = gateway(base_cfg(origin.port, extra_ports=[echo.port]))
    errors = []

    def worker(k):
        try:
            with harness.Conn(gw.proxy_port) as c:
                for i in range(10):
                    host = "api.test" if (i + k) % 3 else "other.test"
                    c.send(raw_req("GET", f"http://{host}:{origin.port}/c{k}-{i}", f"{host}:{origin.port}"))
                    r = c.read_response()
                    if r.status != (200 if host == "api.test" else 403):
                        errors.append((k, i, r.status))
            with harness.Conn(gw.proxy_port) as c:
                c.send(f"CONNECT api.test:{echo.port} HTTP/1.1\r\nHost: api.test:{echo.port}\r\n\r\n".encode())
                c._read_until(b"\r\n\r\n")
                data = os.urandom(50000)
                c.send(data)
                if c._read_exact(len(data)) != data:
                    errors.append((k, "tunnel"))
        except Exception as e:  # noqa: BLE001
            errors.append((k, repr(e)))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert errors == []
    assert len([q for q in origin.requests if q["target"].startswith("/c")]) == sum(
        1 for k in range(16) for i in range(10) if (i + k) % 3)


def test_upstream_tls_host_name_checked(gateway, origin, tls_origin):
    o, ca = tls_origin
    cfg = tls_cfg(origin.port, ca, upgrade_http=True)
    # The origin's certificate (from the trusted test CA) names cred.test only.
    cfg["credentials"][0]["domain"] = "cred2.test"
    cfg["allow"].append({"host": "cred2.test", "ports": [80, 443], "allow_private": True})
    cfg["upstream"]["hosts"]["cred2.test"] = ["127.0.0.1"]
    gw = gateway(cfg)
    r = send(gw, raw_req("GET", "http://cred2.test/", "cred2.test"))
    assert r.status == 502 and r.json()["error"] == "upstream_tls_failed"
    assert "hostname mismatch" in r.json()["reason"]
    assert o.requests == []


# ---------------------------------------------------------------- name resolution (getaddrinfo + cache)


def test_resolved_name_and_cache_never_bypass_private_check(gateway, origin):
    """A name outside upstream.hosts is resolved with getaddrinfo (localhost comes from /etc/hosts) and the
    answer is cached per worker; a reload that drops allow_private must refuse the cached loopback address."""
    cfg = base_cfg(origin.port)
    cfg["allow"].append({"host": "localhost", "ports": [origin.port], "allow_private": True})
    gw = gateway(cfg)
    for _ in range(4):  # with 2 workers, several requests so that both resolve and then hit their cache
        r = send(gw, raw_req("GET", f"http://localhost:{origin.port}/r", f"localhost:{origin.port}"))
        assert r.status == 200
    assert len(origin.requests) == 4
    cfg["allow"][-1]["allow_private"] = False
    gw.config_path.write_text(json.dumps(cfg))
    gw.signal(signal.SIGHUP)
    gw.wait_event("reloaded")
    for _ in range(4):
        r = send(gw, raw_req("GET", f"http://localhost:{origin.port}/r", f"localhost:{origin.port}"))
        assert r.status == 403 and r.header("x-paddock-error") == "private_address_not_allowed"
    assert len(origin.requests) == 4


def test_request_sent_while_response_pending(gateway, origin):
    """The client stays readable while a response is pending: a request sent meanwhile is kept and answered
    after the first, in order, and decided on its own."""
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/slow1", f"api.test:{origin.port}"))
        time.sleep(0.1)  # the first response is still pending at the origin
        c.send(raw_req("GET", f"http://other.test:{origin.port}/x", f"other.test:{origin.port}") +
               raw_req("GET", f"http://api.test:{origin.port}/p2", f"api.test:{origin.port}"))
        assert [c.read_response().status for _ in range(3)] == [200, 403, 200]
    assert [q["target"] for q in origin.requests] == ["/slow1", "/p2"]


def test_half_close_after_request_still_answered(gateway, origin):
    gw = gateway(base_cfg(origin.port))
    with harness.Conn(gw.proxy_port) as c:
        c.send(raw_req("GET", f"http://api.test:{origin.port}/slow2", f"api.test:{origin.port}"))
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["target"] == "/slow2"
        assert c.read_until_close() == b""


def test_long_path_decided_and_forwarded(gateway, origin):
    """Paths longer than the decision's stack buffer take the allocated path; both are checked the same."""
    gw = gateway(base_cfg(origin.port))
    path = "/" + "a" * 2000
    r = send(gw, raw_req("GET", f"http://api.test:{origin.port}{path}", f"api.test:{origin.port}"))
    assert r.status == 200
    assert origin.requests[-1]["target"] == path
