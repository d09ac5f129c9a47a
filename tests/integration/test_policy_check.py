"""`paddock policy check FILE`: the same validation as `paddock run`, the effective policy on stdout
(defaults filled in, credentials by the name of their source, never a value), errors naming file, line,
column and key."""

import json
import subprocess

import harness

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
    for args in (["policy"], ["policy", "explain", "x"], ["policy", "check"], ["policy", "check", "a", "b"]):
        r = subprocess.run([p, *args], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "paddock policy:" in r.stderr, (args, r.stderr)
    r = subprocess.run([p, "policy", "check", "/nonexistent/p.yaml"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1 and "/nonexistent/p.yaml" in r.stderr
