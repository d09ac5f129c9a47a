"""The HTTP server's own Prometheus metrics, as a scraper sees them (paddock-testd GET /metrics).

Counts are exact: each test starts its own daemon, and a scrape is counted only after it has been answered.
"""

import re

import requests

from harness import IO_TIMEOUT, Conn

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(d):
    r = requests.get(f"http://127.0.0.1:{d.port}/metrics", timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    types = {}
    for line in r.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        labels = tuple(sorted(LABEL.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return types, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_method_and_code(server):
    for _ in range(3):
        assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=IO_TIMEOUT).status_code == 200
    assert requests.get(f"http://127.0.0.1:{server.port}/nope", timeout=IO_TIMEOUT).status_code == 404
    assert requests.post(f"http://127.0.0.1:{server.port}/healthz", timeout=IO_TIMEOUT).status_code == 405
    types, s = scrape(server)
    assert types["paddock_http_requests_total"] == "counter"
    assert types["paddock_http_request_duration_seconds"] == "histogram"
    assert types["paddock_http_connections"] == "gauge"
    assert value(s, "paddock_http_requests_total", server="http", method="GET", code="200") == 3
    assert value(s, "paddock_http_requests_total", server="http", method="GET", code="404") == 1
    assert value(s, "paddock_http_requests_total", server="http", method="POST", code="405") == 1
    assert value(s, "paddock_http_request_duration_seconds_count", server="http") == 5
    assert value(s, "paddock_http_request_duration_seconds_bucket", server="http", le="+Inf") == 5
    # The scrape's own connection is open while the gauge is computed.
    assert value(s, "paddock_http_connections", server="http") >= 1


def test_malformed_requests_are_counted_without_a_method(server):
    with Conn(server.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
        assert c.read_response().status == 400
    with Conn(server.port) as c:
        c.send(b"FOO BAR\r\n\r\n")
        assert c.read_response().status == 400
    _, s = scrape(server)
    assert value(s, "paddock_http_requests_total", server="http", method="NONE", code="400") == 2
    assert value(s, "paddock_http_request_duration_seconds_count", server="http") == 0


def test_unknown_method_token_is_other(server):
    with Conn(server.port) as c:
        c.send(b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 405
    _, s = scrape(server)
    assert value(s, "paddock_http_requests_total", server="http", method="OTHER", code="405") == 1
