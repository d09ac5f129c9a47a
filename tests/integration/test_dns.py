"""Black-box tests of the gateway's DNS filter (`paddock gateway --dns-listen`): real UDP and TCP
queries on 127.0.0.1, built by hand (and a few with `dig`, what users type), checks of the rcode, the
answers, the log line per query and the metrics. Every answer is local: the filter has no code path that
sends a query anywhere (forwarding to upstream resolvers, and the sink test proving denied names never
reach them, come with that mode)."""

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.request

import pytest

import harness

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "NULL": 10, "MX": 15, "TXT": 16, "AAAA": 28, "HTTPS": 65, "ANY": 255}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def build_query(name, qtype="A", qid=None, rd=True, edns=None, qclass=1):
    qid = random.randrange(65536) if qid is None else qid
    flags = 0x0100 if rd else 0
    ar = 1 if edns else 0
    out = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, ar)
    for label in name.rstrip(".").split(".") if name not in ("", ".") else []:
        b = label.encode("latin-1")
        out += bytes([len(b)]) + b
    out += b"\x00" + struct.pack(">HH", TYPES.get(qtype, qtype) if isinstance(qtype, str) else qtype, qclass)
    if edns:
        out += b"\x00" + struct.pack(">HHIH", 41, edns, 0, 0)
    return out


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


class Answer:
    def __init__(self, msg):
        self.raw = msg
        self.id, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
        self.tc = bool(flags & 0x0200)
        self.rcode = RCODES.get(flags & 0xF, str(flags & 0xF))
        off = 12
        for _ in range(qd):
            off = skip_name(msg, off) + 4
        self.answers = []
        for _ in range(an):
            off = skip_name(msg, off)
            t, _c, ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
            rd = msg[off + 10:off + 10 + rdlen]
            off += 10 + rdlen
            if t == 1:
                self.answers.append(("A", socket.inet_ntop(socket.AF_INET, rd), ttl))
            elif t == 28:
                self.answers.append(("AAAA", socket.inet_ntop(socket.AF_INET6, rd), ttl))
            else:
                self.answers.append((t, rd, ttl))

    def addrs(self):
        return [a[1] for a in self.answers]


def udp(port, payload, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65536)
        except socket.timeout:
            return None
        return data


def ask(port, name, qtype="A", **kw):
    data = udp(port, build_query(name, qtype, **kw))
    assert data is not None, f"no answer for {name} {qtype}"
    return Answer(data)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


def tcp_ask(port, queries):
    """Send several length-prefixed queries in ONE write (pipelined); read as many answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(struct.pack(">H", len(q)) + q for q in queries))
        out = []
        for _ in queries:
            n = struct.unpack(">H", recv_exact(s, 2))[0]
            out.append(Answer(recv_exact(s, n)))
        return out


@pytest.fixture
def dns(daemons, tmp_path):
    def start(cfg, *args, hosts=None):
        if hosts is not None:
            (tmp_path / "hosts").write_text(hosts)
            cfg.setdefault("dns", {})["hosts_file"] = "hosts"
        path = tmp_path / "gw.json"
        path.write_text(json.dumps(cfg))
        d = daemons([harness.paddock_path(), "gateway", "--config", str(path), "--dns-listen", "127.0.0.1:0",
                     "--admin", "127.0.0.1:0", "--workers", "2", *args])
        d.dns_port = int(d.wait_event("dns_listening")[0]["port"])
        d.admin_port = next(int(r["port"]) for r in d.listening if int(r["port"]) != d.dns_port)
        d.config_path = path
        return d
    return start


BASE = {
    "sandbox_id": "sbx-dns",
    "allow": [
        {"host": "api.example.com"},
        {"host": "*.bench.test"},
        {"host": "*.corp.test", "allow_private": True},
    ],
}
HOSTS = "127.0.5.5 h00005.bench.test\n::1 h00005.bench.test\n10.9.8.7 db.corp.test\n"


def cfg(**dns):
    c = json.loads(json.dumps(BASE))
    if dns:
        c["dns"] = dns
    return c


def test_allowed_names_answered_locally(dns):
    d = dns(cfg(), hosts=HOSTS)
    a = ask(d.dns_port, "h00005.bench.test")
    assert a.rcode == "NOERROR" and a.addrs() == ["127.0.5.5"] and a.answers[0][2] == 60
    assert ask(d.dns_port, "h00005.bench.test", "AAAA").addrs() == ["::1"]
    # Allowed, not in the hosts file: the proxy-only answer (the agent only needs to reach the proxy).
    assert ask(d.dns_port, "api.example.com").addrs() == ["127.0.0.1"]
    # No AAAA configured for proxy answers: an empty NOERROR, not NXDOMAIN.
    a = ask(d.dns_port, "api.example.com", "AAAA")
    assert a.rcode == "NOERROR" and a.answers == []
    rec = d.wait_event("dns", count=4)[0]
    assert rec["sandbox_id"] == "sbx-dns" and rec["name"] == "h00005.bench.test" and rec["type"] == "A"
    assert rec["decision"] == "allow" and rec["rule"] == "*.bench.test" and rec["answers"] == 1
    assert rec["rcode"] == "NOERROR" and rec["transport"] == "udp" and isinstance(rec["duration_us"], int)


def test_denied_names_nxdomain(dns):
    d = dns(cfg(), hosts=HOSTS)
    for name in ["evil.example", "example.com", "bench.test", "evilbench.test", "x.api.example.com",
                 "localhost", "127.0.0.1", "0x7f.1"]:
        a = ask(d.dns_port, name)
        assert a.rcode == "NXDOMAIN" and a.answers == [], name
    recs = d.wait_event("dns", count=8)
    assert all(r["decision"] == "deny" for r in recs)
    assert recs[0]["error"] == "name_not_allowed" and "no allow rule" in recs[0]["reason"]
    assert {r["error"] for r in recs[-2:]} == {"name_invalid"}


def test_deny_rcode_refused(dns):
    d = dns(cfg(deny_rcode="refused"))
    assert ask(d.dns_port, "evil.example").rcode == "REFUSED"


def test_wildcard_case_and_trailing_dot(dns):
    d = dns(cfg(), hosts=HOSTS)
    a = ask(d.dns_port, "H00005.Bench.TEST.")
    assert a.rcode == "NOERROR" and a.addrs() == ["127.0.5.5"]
    # The question is echoed as asked (DNS 0x20 case randomisation keeps working).
    assert b"\x06H00005\x05Bench\x04TEST\x00" in a.raw
    assert ask(d.dns_port, "deep.a.bench.test").addrs() == ["127.0.0.1"]
    assert ask(d.dns_port, "API.EXAMPLE.COM").addrs() == ["127.0.0.1"]


def test_types(dns):
    d = dns(cfg())
    for t in ["TXT", "NULL", "ANY", "MX"]:
        assert ask(d.dns_port, "api.example.com", t).rcode == "REFUSED", t
    a = ask(d.dns_port, "api.example.com", "HTTPS")
    assert a.rcode == "NOERROR" and a.answers == []
    rec = d.wait_event("dns")[0]
    assert rec["error"] == "type_not_allowed" and rec["type"] == "TXT"
    d2_cfg = cfg(types=["A", "TXT"])
    d.stop()
    d2 = dns(d2_cfg)
    assert ask(d2.dns_port, "api.example.com", "TXT").rcode == "NOERROR"
    assert ask(d2.dns_port, "api.example.com", "AAAA").rcode == "REFUSED"


def test_tcp_pipelined(dns):
    d = dns(cfg(), hosts=HOSTS)
    qs = [build_query("h00005.bench.test", qid=1), build_query("evil.example", qid=2),
          build_query("api.example.com", "AAAA", qid=3)]
    a1, a2, a3 = tcp_ask(d.dns_port, qs)
    assert (a1.id, a1.rcode, a1.addrs()) == (1, "NOERROR", ["127.0.5.5"])
    assert (a2.id, a2.rcode) == (2, "NXDOMAIN")
    assert (a3.id, a3.rcode, a3.answers) == (3, "NOERROR", [])
    assert {r["transport"] for r in d.wait_event("dns", count=3)} == {"tcp"}


def test_tcp_bad_length_closes(dns):
    d = dns(cfg())
    with socket.create_connection(("127.0.0.1", d.dns_port), timeout=5) as s:
        s.sendall(b"\x00\x05hello")
        assert s.recv(10) == b""
    assert "below 12" in d.wait_event("dns_tcp_closed")[0]["reason"]


def test_dig_udp_and_tcp(dns):
    if not shutil.which("dig"):
        pytest.skip("dig (dnsutils) is not installed")
    d = dns(cfg(), hosts=HOSTS)
    for extra in ([], ["+tcp"]):
        out = subprocess.run(["dig", "+time=2", "+tries=1", "-p", str(d.dns_port), "@127.0.0.1",
                              "h00005.bench.test", "A", *extra], capture_output=True, text=True, timeout=10).stdout
        assert "status: NOERROR" in out and "127.0.5.5" in out, out
        out = subprocess.run(["dig", "+time=2", "+tries=1", "-p", str(d.dns_port), "@127.0.0.1",
                              "x.blocked.test", "A", *extra], capture_output=True, text=True, timeout=10).stdout
        assert "status: NXDOMAIN" in out, out


def test_tunnelling_defences(dns):
    d = dns(cfg(max_name_length=60, unique_subdomains_per_minute=5))
    # A long name under an allowed wildcard.
    long_name = "a" * 30 + "." + "b" * 25 + ".bench.test"
    a = ask(d.dns_port, long_name)
    assert a.rcode == "REFUSED" and a.answers == []
    # A label over dns.max_label_length (40).
    assert ask(d.dns_port, "x" * 41 + ".bench.test").rcode == "REFUSED"
    # High entropy: base32 of random bytes.
    import base64
    blob = base64.b32encode(os.urandom(24)).decode().lower().rstrip("=")
    assert ask(d.dns_port, blob + ".bench.test").rcode == "REFUSED"
    # Two workers log in batches, so lines of consecutive queries may come in either order: find
    # each by its name.
    recs = {r["name"]: r for r in d.wait_event("dns", count=3)}
    assert recs[long_name]["error"] == "name_too_long"
    assert recs["x" * 41 + ".bench.test"]["error"] == "label_too_long"
    assert recs[blob + ".bench.test"]["error"] == "label_entropy"
    assert "entropy" in recs[blob + ".bench.test"]["reason"]
    # A burst of distinct subdomains: 5 pass, the 6th is refused; a repeat of a seen one passes.
    for i in range(5):
        assert ask(d.dns_port, f"n{i}.bench.test").rcode == "NOERROR"
    assert ask(d.dns_port, "n5.bench.test").rcode == "REFUSED"
    assert ask(d.dns_port, "n1.bench.test").rcode == "NOERROR"
    burst = [r for r in d.wait_event("dns", count=10) if r["name"] == "n5.bench.test"]
    assert len(burst) == 1 and burst[0]["error"] == "subdomain_burst"
    # An exact rule is never subject to the subdomain checks.
    assert ask(d.dns_port, "api.example.com").rcode == "NOERROR"


def test_malformed_queries(dns):
    d = dns(cfg())
    # Shorter than a header: nothing comes back.
    assert udp(d.dns_port, b"\x01\x02\x03", timeout=0.5) is None
    # A response (QR=1) is never answered (no reflection loops).
    q = bytearray(build_query("api.example.com"))
    q[2] |= 0x80
    assert udp(d.dns_port, bytes(q), timeout=0.5) is None
    # Two questions: FORMERR.
    q = bytearray(build_query("api.example.com"))
    q[5] = 2
    assert Answer(udp(d.dns_port, bytes(q))).rcode == "FORMERR"
    # A compression loop in the question: FORMERR, and the server still answers afterwards.
    q = struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack(">HH", 1, 1)
    assert Answer(udp(d.dns_port, q)).rcode == "FORMERR"
    # Opcode STATUS (2): NOTIMP.
    q = bytearray(build_query("api.example.com"))
    q[2] |= 2 << 3
    assert Answer(udp(d.dns_port, bytes(q))).rcode == "NOTIMP"
    # Class CH: REFUSED.
    assert Answer(udp(d.dns_port, build_query("api.example.com", qclass=3))).rcode == "REFUSED"
    assert ask(d.dns_port, "api.example.com").rcode == "NOERROR"


def test_reload_changes_what_resolves(dns):
    d = dns(cfg(), hosts=HOSTS)
    assert ask(d.dns_port, "new.example.org").rcode == "NXDOMAIN"
    c = cfg()
    c["allow"] = [{"host": "new.example.org"}]
    d.config_path.write_text(json.dumps(c))
    d.signal(signal.SIGHUP)
    d.wait_event("reloaded")
    assert ask(d.dns_port, "new.example.org").addrs() == ["127.0.0.1"]
    assert ask(d.dns_port, "api.example.com").rcode == "NXDOMAIN"
    # A reload with a broken hosts file is refused; the running policy stays.
    c["dns"] = {"hosts_file": "missing-hosts"}
    d.config_path.write_text(json.dumps(c))
    d.signal(signal.SIGHUP)
    rec = d.wait_event("reload_failed")[0]
    assert "dns.hosts_file" in rec["error"] and "missing-hosts" in rec["error"]
    assert ask(d.dns_port, "new.example.org").addrs() == ["127.0.0.1"]


def test_bad_hosts_file_refused_at_startup(daemons, tmp_path):
    (tmp_path / "hosts").write_text("127.0.0.1 ok.test\n0x7f.1 bad.test\n")
    c = cfg(hosts_file="hosts", listen=["127.0.0.1:0"])
    path = tmp_path / "gw.json"
    path.write_text(json.dumps(c))
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", str(path), "--no-seccomp"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "dns.hosts_file" in r.stderr and "hosts:2" in r.stderr, r.stderr


def test_metrics(dns):
    d = dns(cfg())
    ask(d.dns_port, "api.example.com")
    ask(d.dns_port, "evil.example")
    d.wait_event("dns", count=2)
    body = urllib.request.urlopen(f"http://127.0.0.1:{d.admin_port}/metrics", timeout=5).read().decode()
    assert 'paddock_dns_queries_total{decision="allow",error="none"} 1' in body
    assert 'paddock_dns_queries_total{decision="deny",error="name_not_allowed"} 1' in body
    assert "paddock_dns_duration_seconds_count 2" in body


def test_edns_and_many_answers(dns):
    many = "".join(f"10.0.{i // 250}.{i % 250 + 1} many.bench.test\n" for i in range(16))
    d = dns(cfg(), hosts=many)
    a = ask(d.dns_port, "many.bench.test", edns=1232)
    assert a.rcode == "NOERROR" and len(a.answers) == 16 and not a.tc
    assert a.raw[-11:-8] == b"\x00\x00\x29"  # the OPT record is echoed (root owner, type 41)
    (a_tcp,) = tcp_ask(d.dns_port, [build_query("many.bench.test")])
    assert len(a_tcp.answers) == 16


# ---------------------------------------------------------------- mode forward


class FakeResolver:
    """A UDP resolver on 127.0.0.1 that records every query it receives and answers from `zone`:
    name -> list of ("A", "1.2.3.4", ttl) / ("AAAA", "::1", ttl) / ("CNAME", "target", ttl), or
    "NXDOMAIN", or "SILENT" (no answer). With spoof_first it first sends an answer with a wrong id."""

    def __init__(self, zone, spoof_first=False, truncate=False, tcp=False):
        """truncate: every UDP answer has TC set and no records; tcp: also serve TCP on the same port
        (length-prefixed, RFC 7766), full answers; tcp == "garbage": answer TCP with a wrong id."""
        self.zone = zone
        self.spoof_first = spoof_first
        self.truncate = truncate
        self.queries = []  # (name, qtype)
        self.tcp_queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        import threading
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.tcp = tcp
        self.lsock = None
        if tcp:
            self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind(("127.0.0.1", self.port))
            self.lsock.listen(8)
            self.lsock.settimeout(0.2)
            self.tthread = threading.Thread(target=self._run_tcp, daemon=True)
            self.tthread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        if self.lsock:
            self.tthread.join(5)
            self.lsock.close()

    def _run_tcp(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            with c:
                c.settimeout(2)
                try:
                    n = struct.unpack(">H", c.recv(2, socket.MSG_WAITALL))[0]
                    q = c.recv(n, socket.MSG_WAITALL)
                except (OSError, struct.error):
                    continue
                name, _ = self._name(q, 12)
                self.tcp_queries.append(name)
                r = self._answer(q, truncate=False)
                if self.tcp == "garbage":
                    r = struct.pack(">H", (struct.unpack(">H", r[:2])[0] + 1) % 65536) + r[2:]
                c.sendall(struct.pack(">H", len(r)) + r)

    @staticmethod
    def _name(msg, off):
        labels = []
        while msg[off]:
            n = msg[off]
            labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
            off += 1 + n
        return ".".join(labels), off + 1

    def _answer(self, q, truncate):
        qid = struct.unpack(">H", q[:2])[0]
        name, off = self._name(q, 12)
        qtype = struct.unpack(">H", q[off:off + 2])[0]
        entry = self.zone.get(name.lower())
        question = q[12:off + 4]
        rcode = 3 if entry in (None, "NXDOMAIN") else 0
        recs = b""
        count = 0
        owner = b"\xc0\x0c"
        for typ, val, ttl in ([] if rcode or truncate else entry):
            if typ == "CNAME":
                rd = b"".join(bytes([len(p)]) + p.encode() for p in val.split(".")) + b"\x00"
                recs += owner + struct.pack(">HHIH", 5, 1, ttl, len(rd)) + rd
                owner = rd  # the next records are owned by the target (written out in full)
            elif TYPES[typ] == qtype:
                fam = socket.AF_INET if typ == "A" else socket.AF_INET6
                rd = socket.inet_pton(fam, val)
                recs += owner + struct.pack(">HHIH", TYPES[typ], 1, ttl, len(rd)) + rd
            else:
                continue
            count += 1
        flags = 0x8180 | rcode | (0x0200 if truncate else 0)
        return struct.pack(">HHHHHH", qid, flags, 1, count, 0, 0) + question + recs

    def _run(self):
        while not self.stopping:
            try:
                q, addr = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            qid = struct.unpack(">H", q[:2])[0]
            name, off = self._name(q, 12)
            qtype = struct.unpack(">H", q[off:off + 2])[0]
            self.queries.append((name, qtype))
            if self.zone.get(name.lower()) == "SILENT":
                continue
            question = q[12:off + 4]
            if self.spoof_first:
                bad = struct.pack(">HHHHHH", (qid + 1) % 65536, 0x8180, 1, 1, 0, 0)
                self.sock.sendto(bad + question + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4)
                                 + socket.inet_aton("6.6.6.6"), addr)
            self.sock.sendto(self._answer(q, self.truncate), addr)


@pytest.fixture
def resolver():
    made = []

    def make(zone, **kw):
        r = FakeResolver(zone, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


def fwd_cfg(*upstreams, **dns):
    c = cfg(mode="forward", upstreams=[f"127.0.0.1:{u.port}" for u in upstreams], **dns)
    return c


def test_forward_resolves_allowed_and_caches(dns, resolver):
    up = resolver({"api.example.com": [("A", "93.184.216.34", 300)]})
    d = dns(fwd_cfg(up))
    a = ask(d.dns_port, "api.example.com")
    assert a.rcode == "NOERROR" and a.addrs() == ["93.184.216.34"] and a.answers[0][2] == 300
    a = ask(d.dns_port, "API.example.com")
    assert a.addrs() == ["93.184.216.34"] and a.answers[0][2] <= 300
    # Both workers may have missed once; no more than that reached the upstream.
    assert 1 <= len(up.queries) <= 2 and up.queries[0] == ("api.example.com", 1)
    recs = d.wait_event("dns", count=2)
    assert recs[0]["source"] == "upstream" and recs[0]["upstream"] == f"127.0.0.1:{up.port}"
    sources = {r["source"] for r in recs}
    assert sources <= {"upstream", "cache"}


def test_denied_names_never_reach_the_upstream(dns, resolver):
    up = resolver({})
    d = dns(fwd_cfg(up, unique_subdomains_per_minute=3))
    import base64
    queries = [("evil.example", "A"), ("example.com", "A"), ("bench.test", "A"),
               ("evilbench.test", "AAAA"), ("127.0.0.1", "A"), ("api.example.com", "TXT"),
               ("api.example.com", "ANY"), ("x" * 50 + ".bench.test", "A"),
               (base64.b32encode(os.urandom(24)).decode().lower().rstrip("=") + ".bench.test", "A")]
    for name, t in queries:
        assert ask(d.dns_port, name, t).rcode in ("NXDOMAIN", "REFUSED"), name
    for i in range(3):  # the burst allowance reaches the upstream (allowed names)
        ask(d.dns_port, f"n{i}.bench.test")
    assert ask(d.dns_port, "n3.bench.test").rcode == "REFUSED"
    time.sleep(0.3)
    assert sorted(up.queries) == [("n0.bench.test", 1), ("n1.bench.test", 1), ("n2.bench.test", 1)]


def test_forward_rebinding_protection(dns, resolver):
    up = resolver({
        "api.example.com": [("A", "127.0.0.1", 60), ("A", "93.184.216.34", 60), ("A", "169.254.169.254", 60)],
        "x.bench.test": [("A", "10.0.0.5", 60)],
        "db.corp.test": [("A", "10.9.8.7", 60)],
    })
    d = dns(fwd_cfg(up))
    assert ask(d.dns_port, "api.example.com").addrs() == ["93.184.216.34"]
    a = ask(d.dns_port, "x.bench.test")
    assert a.rcode == "NOERROR" and a.answers == []
    # The rule for *.corp.test has allow_private: its private answers pass.
    assert ask(d.dns_port, "db.corp.test").addrs() == ["10.9.8.7"]
    recs = d.wait_event("dns", count=3)
    assert "rebinding" in recs[0]["reason"] and "2 non-public addresses" in recs[0]["reason"]


def test_forward_cname_chain_nxdomain_and_ttl_clamp(dns, resolver):
    up = resolver({
        "www.bench.test": [("CNAME", "edge.cdn.example", 5), ("A", "93.184.216.34", 5)],
        "gone.bench.test": "NXDOMAIN",
    })
    d = dns(fwd_cfg(up, min_ttl=30))
    a = ask(d.dns_port, "www.bench.test")
    assert a.rcode == "NOERROR" and a.answers[0][0] == 5 and a.addrs()[-1] == "93.184.216.34"
    assert all(t >= 29 for _, _, t in a.answers)  # 5 s raised to min_ttl 30
    a = ask(d.dns_port, "gone.bench.test")
    assert a.rcode == "NXDOMAIN"


def test_forward_failover_and_servfail(dns, resolver):
    dead = resolver({"api.example.com": "SILENT"})
    good = resolver({"api.example.com": [("A", "93.184.216.34", 60)]})
    d = dns(fwd_cfg(dead, good, timeout_ms=300))
    a = ask(d.dns_port, "api.example.com")
    assert a.addrs() == ["93.184.216.34"]
    assert dead.queries and good.queries
    d.stop()
    d2 = dns(fwd_cfg(dead, timeout_ms=200))
    a = ask(d2.dns_port, "api.example.com")
    assert a.rcode == "SERVFAIL"
    rec = d2.wait_event("dns")[0]
    assert rec["error"] == "upstream_failed" and "timeout" in rec["reason"]


def test_forward_ignores_mismatched_answers(dns, resolver):
    up = resolver({"api.example.com": [("A", "93.184.216.34", 60)]}, spoof_first=True)
    d = dns(fwd_cfg(up))
    assert ask(d.dns_port, "api.example.com").addrs() == ["93.184.216.34"]


def test_forward_over_tcp_client(dns, resolver):
    up = resolver({"api.example.com": [("A", "93.184.216.34", 60)]})
    d = dns(fwd_cfg(up))
    (a,) = tcp_ask(d.dns_port, [build_query("api.example.com", qid=9)])
    assert a.id == 9 and a.addrs() == ["93.184.216.34"]


def test_forward_without_resolvers_is_a_config_error(daemons, tmp_path):
    c = cfg(mode="forward", listen=["127.0.0.1:0"])
    path = tmp_path / "gw.json"
    path.write_text(json.dumps(c))
    r = subprocess.run([harness.paddock_path(), "gateway", "--config", str(path), "--check"],
                       capture_output=True, text=True, timeout=20)
    # Either the host's resolv.conf names a resolver (then --check shows it) or the error says what to do.
    if r.returncode == 0:
        assert json.loads(r.stdout)["dns"]["upstreams"]
    else:
        assert "dns.upstreams" in r.stderr


def test_udp_truncation_without_edns(dns):
    """16 AAAA answers for a long name do not fit a 512-byte UDP reply: TC with no answers; with EDNS
    or over TCP the client gets all of them."""
    name = "a-rather-long-host-name-for-truncation." + "b" * 20 + ".example.test"
    many = "".join(f"2001:db8::{i + 1:x} {name}\n" for i in range(16))
    c = cfg()
    c["allow"].append({"host": name})
    d = dns(c, hosts=many)
    a = ask(d.dns_port, name, "AAAA")
    assert a.tc and a.answers == [] and a.rcode == "NOERROR" and len(a.raw) <= 512
    a = ask(d.dns_port, name, "AAAA", edns=1232)
    assert not a.tc and len(a.answers) == 16
    (a,) = tcp_ask(d.dns_port, [build_query(name, "AAAA")])
    assert not a.tc and len(a.answers) == 16
    assert d.wait_event("dns")[0]["answers"] == 0  # the truncated reply carried none


def test_forward_retries_a_truncated_answer_over_tcp(dns, resolver):
    up = resolver({"api.example.com": [("A", "93.184.216.34", 300), ("A", "93.184.216.35", 300)]},
                  truncate=True, tcp=True)
    d = dns(fwd_cfg(up))
    a = ask(d.dns_port, "api.example.com")
    assert a.rcode == "NOERROR" and sorted(a.addrs()) == ["93.184.216.34", "93.184.216.35"]
    assert up.queries[0] == ("api.example.com", 1) and up.tcp_queries == ["api.example.com"]
    rec = d.wait_event("dns")[0]
    assert rec["source"] == "upstream" and rec["upstream"] == f"127.0.0.1:{up.port}/tcp"


@pytest.mark.parametrize("tcp", [False, "garbage"])
def test_forward_moves_on_when_the_tcp_retry_fails(dns, resolver, tcp):
    bad = resolver({"api.example.com": [("A", "93.184.216.34", 300)]}, truncate=True, tcp=tcp)
    good = resolver({"api.example.com": [("A", "93.184.216.36", 300)]})
    d = dns(fwd_cfg(bad, good, timeout_ms=1000))
    a = ask(d.dns_port, "api.example.com")
    assert a.rcode == "NOERROR" and a.addrs() == ["93.184.216.36"]
    assert d.wait_event("dns")[0]["upstream"] == f"127.0.0.1:{good.port}"
