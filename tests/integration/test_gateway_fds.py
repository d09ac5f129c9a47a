"""The gateway serving sockets it did not create: `--dns-listen-fd UDP,TCP` (inherited DNS sockets) and
`--listeners-from FD` (the proxy and DNS sockets sent over a Unix socket, which is how `paddock run` hands
over the listeners it created inside a sandbox's network namespace). Bad fds are refused with a message
naming them."""

import json
import socket
import subprocess

import harness
from test_dns import ask, build_query, recv_exact

POLICY = {"allow": [{"host": "api.example.com"}]}


def udp_tcp_pair():
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", port))
    return u, tcp, port


def write_policy(tmp_path):
    p = tmp_path / "gw.json"
    p.write_text(json.dumps(POLICY))
    return p


def tcp_query(port, name):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        q = build_query(name)
        s.sendall(len(q).to_bytes(2, "big") + q)
        n = int.from_bytes(recv_exact(s, 2), "big")
        return recv_exact(s, n)


def test_dns_listen_fd_serves_udp_and_tcp(daemons, tmp_path):
    u, t, port = udp_tcp_pair()
    with u, t:
        d = daemons([harness.paddock_path(), "gateway", "--config", write_policy(tmp_path),
                     "--dns-listen-fd", f"{u.fileno()},{t.fileno()}", "--workers", "2"],
                    pass_fds=(u.fileno(), t.fileno()), wait_ready=False)
        d.wait_event("dns_listening")
    # Our copies are closed: only the gateway holds the sockets now.
    assert ask(port, "api.example.com").addrs() == ["127.0.0.1"]
    assert ask(port, "evil.example.net").rcode == "NXDOMAIN"
    assert len(tcp_query(port, "api.example.com")) > 12


def run_gateway_expect_error(tmp_path, *args, pass_fds=()):
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", str(write_policy(tmp_path)), *args],
                       pass_fds=pass_fds, capture_output=True, text=True, timeout=20)
    return r.returncode, r.stderr


def test_dns_listen_fd_refuses_bad_fds(tmp_path):
    u, t, _ = udp_tcp_pair()
    with u, t:
        # swapped: the "TCP" one is a datagram socket
        rc, err = run_gateway_expect_error(tmp_path, "--dns-listen-fd", f"{t.fileno()},{u.fileno()}",
                                           pass_fds=(u.fileno(), t.fileno()))
        assert rc == 2 and "--dns-listen-fd" in err and str(u.fileno()) in err
        rc, err = run_gateway_expect_error(tmp_path, "--dns-listen-fd", "7")
        assert rc == 2 and "UDP,TCP" in err
        rc, err = run_gateway_expect_error(tmp_path, "--dns-listen-fd", f"{t.fileno()},{t.fileno()}",
                                           pass_fds=(t.fileno(),))
        assert rc == 2


def test_listeners_from_socket(daemons, tmp_path):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(16)
    pport = proxy.getsockname()[1]
    u, t, dport = udp_tcp_pair()
    with b, proxy, u, t:
        d = daemons([harness.paddock_path(), "gateway", "--config", write_policy(tmp_path),
                     "--listeners-from", str(b.fileno()), "--workers", "1"],
                    pass_fds=(b.fileno(),), wait_ready=False)
        b.close()
        socket.send_fds(a, [b"listeners"], [proxy.fileno(), u.fileno(), t.fileno()])
    # Our copies of the listeners are closed; `a` stays open, as the launcher keeps it.
    d.wait_event("dns_listening")
    d.wait_event("listening")
    assert ask(dport, "api.example.com").addrs() == ["127.0.0.1"]
    with harness.Conn(pport) as c:
        c.send(b"GET http://evil.example.net/ HTTP/1.1\r\nHost: evil.example.net\r\n\r\n")
        r = c.read_response()
        assert r.status == 403 and r.json()["error"] == "destination_not_allowed"
    # The socket is the launcher's lifeline: when its end closes (the launcher died), the gateway
    # shuts down instead of serving a sandbox that is gone.
    a.close()
    assert d.wait_exit() == 0
    assert d.wait_event("launcher_gone")


def test_listeners_from_eof_exits(daemons, tmp_path):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        d = daemons([harness.paddock_path(), "gateway", "--config", write_policy(tmp_path),
                     "--listeners-from", str(b.fileno())], pass_fds=(b.fileno(),), wait_ready=False)
        b.close()
        a.close()  # the launcher gave up before sending anything
        assert d.wait_exit() == 1
        assert "closed the socket before sending the listeners" in d.stderr_text()
