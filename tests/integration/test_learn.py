"""`paddock run --learn OUT.yaml`: a scripted agent hits three denied destinations (a name over plain
HTTP, a name through a CONNECT tunnel, an IP literal) next to one allowed one; the proposal must be the
original policy plus exactly those three as commented-out candidates, and running with the candidates
uncommented must let all three through to the origin. The origin is on loopback; the names resolve
through the policy's upstream.hosts, so nothing leaves the machine."""

import os
import re

import yaml

from test_sandbox import WS, caller, origin, sbx  # noqa: F401  (fixtures)

CANDIDATE = re.compile(r"^\s*# - (host|cidr): (\S+)", re.M)


def uncomment(text):
    return re.sub(r"(?m)^(\s*)# (- |  )", r"\1\2", text)


def agent(port):
    """The scripted agent: one allowed request, then the three denied destinations."""
    return ["sh", "-c",
            f"curl -s -o /dev/null -w 'allowed %{{http_code}}\\n' http://known.test:{port}/ok; "
            f"curl -s -o /dev/null -w 'api %{{http_code}}\\n' http://api.learn.test:{port}/v1/models; "
            f"curl -s -p -o /dev/null -w 'tunnel %{{http_code}}\\n' http://tunnel.learn.test:{port}/t; "
            f"curl -s --proxy http://127.0.0.1:3128 --noproxy '' -o /dev/null "
            f"-w 'literal %{{http_code}}\\n' http://127.0.0.1:{port}/raw; true"]


def policy_text(port):
    return ("# the learn test's policy\n"
            "sandbox_id: learn\n"
            "allow:\n"
            f"  - host: known.test     # the one destination allowed from the start\n"
            f"    ports: [{port}]\n"
            "    allow_private: true\n"
            "upstream:\n"
            "  hosts:\n"
            "    known.test: [\"127.0.0.1\"]\n"
            "    api.learn.test: [\"127.0.0.1\"]\n"
            "    tunnel.learn.test: [\"127.0.0.1\"]\n")


def test_learn_proposes_exactly_the_denied_destinations_and_they_work(sbx, origin):  # noqa: F811
    port = origin.port
    original = policy_text(port)
    policy = sbx.put(os.path.join(sbx.base, "policy.yaml"), original)
    out = os.path.join(sbx.ws, "proposal.yaml")
    r = sbx.run(agent(port), policy=policy, opts=["--learn", f"{out}"])
    assert r.rc == 0, r
    assert "allowed 200" in r.stdout and "api 403" in r.stdout and "literal 403" in r.stdout, r
    assert "--learn: " in r.stderr and "3 candidate rules" in r.stderr, r
    assert [q["target"] for q in origin.requests] == ["/ok"]  # nothing denied got through

    text = open(out).read()
    assert text.startswith("# Proposed by `paddock run --learn`"), text
    assert original in text or all(line in text for line in original.splitlines())
    # The proposal, as written, is the original policy: candidates are comments.
    assert yaml.safe_load(text) == yaml.safe_load(original)
    found = {m.group(2).strip('"') for m in CANDIDATE.finditer(text)}
    assert found == {"api.learn.test", "tunnel.learn.test", "127.0.0.1/32"}, text
    # What each candidate records: ports, and for plain HTTP the method and path prefix.
    assert re.search(r"# - host: api.learn.test .*1 HTTP request", text), text
    assert f"#   ports: [{port}]" in text and '#   paths: ["/v1/"]' in text and "#   methods: [GET]" in text
    assert re.search(r"# - host: tunnel.learn.test .*1 CONNECT tunnel", text), text
    assert "upstream.hosts gives 127.0.0.1" in text  # allow_private proposed, and why

    # Reviewed and accepted: uncomment every candidate and run the same agent again.
    accepted = sbx.put(os.path.join(sbx.base, "accepted.yaml"), uncomment(text))
    assert len(yaml.safe_load(open(accepted))["allow"]) == 4
    out2 = os.path.join(sbx.ws, "proposal2.yaml")
    r2 = sbx.run(agent(port), policy=accepted, opts=["--learn", out2])
    assert r2.rc == 0, r2
    for what in ("allowed", "api", "tunnel", "literal"):
        assert f"{what} 200" in r2.stdout, r2
    assert sorted(q["target"] for q in origin.requests) == ["/ok", "/ok", "/raw", "/t", "/v1/models"]
    assert "0 candidate rules" in r2.stderr and not CANDIDATE.search(open(out2).read())


def test_learn_notes_what_a_new_rule_would_not_fix(sbx, origin):  # noqa: F811
    port = origin.port
    policy = sbx.put(os.path.join(sbx.base, "policy.yaml"),
                     f"allow:\n  - host: known.test\n    ports: [{port}]\n    methods: [GET]\n"
                     f"    allow_private: true\nupstream:\n  hosts:\n    known.test: [\"127.0.0.1\"]\n")
    out = os.path.join(sbx.ws, "proposal.yaml")
    r = sbx.run(["sh", "-c", f"curl -s -o /dev/null -X POST http://known.test:{port}/x; "
                             f"getent hosts dns-only.learn.test; true"], policy=policy,
                opts=["--learn", out])
    assert r.rc == 0, r
    text = open(out).read()
    # POST to a rule that lists only GET: a note naming the rule, not a duplicate rule.
    assert re.search(r"#  \* POST known.test:\d+ /x \(1 time\): method_not_allowed: .*allows methods GET",
                     text), text
    # A name only asked of the DNS filter: a candidate (default ports), with what was asked.
    assert re.search(r"# - host: dns-only.learn.test .*DNS quer.*ports 80 and 443", text), text
    assert {m.group(2) for m in CANDIDATE.finditer(text)} == {"dns-only.learn.test"}


def test_learn_without_a_policy_and_bad_targets(sbx):  # noqa: F811
    out = os.path.join(sbx.ws, "p.yaml")
    r = sbx.run(["sh", "-c", "getent hosts a.example.test; true"], opts=["--learn", out])
    assert r.rc == 0, r
    text = open(out).read()
    assert "the built-in policy (nothing allowed)" in text and "\n# allow:\n" in text
    assert yaml.safe_load(uncomment(text.replace("\n# allow:\n", "\nallow:\n"))) == {
        "allow": [{"host": "a.example.test"}]}
    r = sbx.run(["true"], opts=["--learn", os.path.join(sbx.ws, "p.json")])
    assert r.rc == 2 and "expected a .yaml or .yml file" in r.stderr, r
    policy = sbx.put(os.path.join(sbx.base, "same.yaml"), "allow: []\n")
    r = sbx.run(["true"], policy=policy, opts=["--learn", policy])
    assert r.rc == 125 and "that is the policy itself" in r.stderr, r
    assert open(policy).read() == "allow: []\n"
    log = sbx.put(os.path.join(sbx.ws, "log.yaml"), "", owner=sbx.uid)
    r = sbx.run(["true"], opts=["--log", log, "--learn", log])
    assert r.rc == 125 and "that is the access log" in r.stderr, r


def test_learn_with_a_policy_it_cannot_edit_in_place_and_wildcard_hints(sbx):  # noqa: F811
    # A JSON policy (and a flow-style allow list) cannot take entries in place: the candidates follow
    # the text, to merge by hand; the proposal, as written, still means what the policy means.
    for name, text in (("p.json", '{"allow": [{"host": "known.test"}]}\n'),
                       ("p.yaml", "allow: [{host: known.test}]\n")):
        policy = sbx.put(os.path.join(sbx.base, name), text)
        out = os.path.join(sbx.ws, "proposal.yaml")
        r = sbx.run(["sh", "-c", "for n in a b c; do getent hosts $n.cdn.learn.test; done; true"],
                    policy=policy, opts=["--learn", out])
        assert r.rc == 0, r
        proposal = open(out).read()
        assert "merge the ones you want into it by hand" in proposal, proposal
        assert yaml.safe_load(proposal) == yaml.safe_load(text)
        assert {m.group(2) for m in CANDIDATE.finditer(proposal)} == {
            "a.cdn.learn.test", "b.cdn.learn.test", "c.cdn.learn.test"}
        assert 'could be one rule instead: - host: "*.cdn.learn.test"' in proposal


def test_a_run_with_denials_ends_with_one_line_naming_them(sbx, origin):  # noqa: F811
    port = origin.port
    policy = sbx.put(os.path.join(sbx.base, "policy.yaml"), policy_text(port))
    r = sbx.run(agent(port), policy=policy)
    assert r.rc == 0, r
    line = [x for x in r.stderr.splitlines() if "the gateway denied" in x]
    assert len(line) == 1, r
    assert "denied 3 requests or queries" in line[0], line
    for what in (f"api.learn.test:{port}", f"tunnel.learn.test:{port}", f"127.0.0.1:{port}"):
        assert what in line[0], line
    # A run without denials says nothing of the kind.
    r = sbx.run(["sh", "-c", f"curl -s -o /dev/null http://known.test:{port}/ok"], policy=policy)
    assert r.rc == 0 and "the gateway denied" not in r.stderr, r
