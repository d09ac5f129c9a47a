"""`paddock policy check FILE`: the same validation as `paddock run`, the effective policy on stdout
(defaults filled in, credentials by the name of their source, never a value), errors naming file, line,
column and key. `paddock policy explain FILE TARGET`: the gateway's own decision for a destination, which
must agree with what a running gateway does."""

import json
import os
import subprocess
import sys

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway"))
from origin import Origin  # noqa: E402

SECRET = "sk-policy-check-0123456789"


def check(path, env=None):
    return subprocess.run([harness.paddock_path(), "policy", "check", str(path)], capture_output=True,
                          text=True, timeout=20, env=env)


def test_valid_policy_prints_the_effective_form(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("allow:\n  - host: api.example.com\n"
                 "credentials:\n  - name: KEY\n    domain: api.example.com\n    header: Authorization\n"
                 "    format: \"Bearer {value}\"\n    value_env: PD_TEST_KEY\n"
                 "sandbox:\n  limits: {memory: 1G}\n  env: {CI: \"1\"}\n")
    r = check(p, env={"PD_TEST_KEY": SECRET, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout and SECRET not in r.stderr
    d = json.loads(r.stdout)
    assert d["allow"][0]["host"] == "api.example.com" and d["allow"][0]["ports"] == [80, 443]
    assert d["credentials"][0]["source"] == {"env": "PD_TEST_KEY"}
    assert d["credentials"][0]["value"] == "[redacted]"
    sb = d["sandbox"]
    assert sb["limits"] == {"memory": "1G", "pids": 1024, "cpu": 0}  # defaults filled in
    assert sb["tmpfs"] == {"home": "512M", "tmp": "1G"} and sb["hostname"] == "paddock"
    assert ".git/hooks" in sb["protected_paths"] and sb["env"] == {"CI": "1"}


def test_bad_policies_name_file_line_and_key(tmp_path):
    cases = {
        "sandbox:\n  limts: {}\n": ":2:3: sandbox: unknown key 'limts' (did you mean 'limits'?",
        "sandbox:\n  limits: {memory: lots}\n": ":2:20: sandbox.limits.memory:",
        "alow: []\n": ":1:1: unknown top-level key 'alow' (did you mean 'allow'?",
        "allow:\n  - host: \"*.com\"\n": ":2:11: allow[0].host:",
    }
    for text, want in cases.items():
        p = tmp_path / "p.yaml"
        p.write_text(text)
        r = check(p)
        assert r.returncode == 1 and r.stdout == "", (text, r)
        assert f"{p}{want}" in r.stderr, (text, r.stderr)


def test_usage_errors():
    p = harness.paddock_path()
    for args in (["policy"], ["policy", "frob", "x"], ["policy", "explain", "x"], ["policy", "check"],
                 ["policy", "check", "a", "b"]):
        r = subprocess.run([p, *args], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "paddock policy:" in r.stderr, (args, r.stderr)
    r = subprocess.run([p, "policy", "check", "/nonexistent/p.yaml"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1 and "/nonexistent/p.yaml" in r.stderr


def explain(policy, target, method=None):
    args = [harness.paddock_path(), "policy", "explain", str(policy), target]
    if method:
        args += ["--method", method]
    r = subprocess.run(args, capture_output=True, text=True, timeout=20)
    assert r.returncode in (0, 3), r
    line = next(x for x in r.stdout.splitlines() if x.startswith("proxy: "))
    code = None if r.returncode == 0 else line.split("(", 1)[1].split(",", 1)[0]
    return r.returncode == 0, code, r.stdout


def ask_gateway(port, target, method):
    with harness.Conn(port) as c:
        if target.startswith("http://"):
            host = target[7:].split("/", 1)[0]
            c.send(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        else:
            c.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        r = c.read_response(method="CONNECT" if not target.startswith("http://") else method)
        code = r.json()["error"] if r.status == 403 else None
        return r.status, code


def test_explain_agrees_with_the_gateway(daemons, tmp_path):
    """For each target, explain's verdict and error code are the running gateway's (the same code
    decides: pd_gw_decide). Allowed targets reach 127.0.0.1 only (upstream.hosts)."""
    o = Origin()
    try:
        cfg = {"allow": [{"host": "api.test", "ports": [8443], "allow_private": True},
                         {"host": "pypi.test", "ports": [o.port], "methods": ["GET"],
                          "paths": ["/simple/"], "allow_private": True}],
               "upstream": {"hosts": {"api.test": ["127.0.0.1"], "pypi.test": ["127.0.0.1"]},
                            "connect_timeout_ms": 2000}}
        p = tmp_path / "p.json"
        p.write_text(json.dumps(cfg))
        g = daemons([harness.paddock_path(), "gateway", "--config", p, "--listen", "127.0.0.1:0"])
        cases = [("api.test:8443", "GET"), ("api.test:9999", "GET"), ("other.test:8443", "GET"),
                 ("1.2.3.4:8443", "GET"), (f"http://pypi.test:{o.port}/simple/x", "GET"),
                 (f"http://pypi.test:{o.port}/other", "GET"),
                 (f"http://pypi.test:{o.port}/simple/", "POST")]
        verdicts = []
        for target, method in cases:
            allowed, code, out = explain(p, target, method)
            status, gcode = ask_gateway(g.port, target, method)
            assert allowed == (status != 403), (target, method, out, status)
            assert code == gcode, (target, method, out, gcode)
            verdicts.append(allowed)
        assert verdicts == [True, False, False, False, True, False, False]
        assert [q["target"] for q in o.requests] == ["/simple/x"]
    finally:
        o.stop()
