"""The example policies under examples/ (Claude Code, Codex CLI, Aider, plain Python and Node.js): each
says at the top how to run it, passes `paddock policy check`, allows the API hosts it lists (and its
credential aliases, with the credential injected) according to `paddock policy explain`, and runs a
trivial command in a real sandbox without the agent seeing a credential's value."""

import glob
import os
import re
import subprocess

import pytest
import yaml

import harness

SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = sorted(glob.glob(os.path.join(SRC_DIR, "examples", "*.yaml")))
FAKE = "fake-credential-value-0123456789"


def env_for(doc, home):
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home),
           "USER": "root", "LANG": "C.UTF-8"}
    for c in doc.get("credentials", []):
        env[c["value_env"]] = FAKE
    return env


def test_there_is_an_example_for_each_agent():
    names = {os.path.basename(p) for p in EXAMPLES}
    assert {"claude-code.yaml", "codex.yaml", "aider.yaml", "python.yaml", "node.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_says_how_to_run_it_and_passes_check(path, tmp_path):
    text = open(path).read()
    name = os.path.basename(path)
    head = "".join(line for line in text.splitlines(True) if line.startswith("#"))
    assert text.startswith("# "), "the example starts with a comment saying what it is for"
    assert f"paddock run --policy examples/{name} --" in head, "the header says how to run it"
    doc = yaml.safe_load(text)
    for c in doc.get("credentials", []):
        assert "value_env" in c and c["value_env"] in head, "the header says which variable to export"
    r = subprocess.run([harness.paddock_path(), "policy", "check", path], capture_output=True, text=True,
                       timeout=20, env=env_for(doc, tmp_path))
    assert r.returncode == 0, r.stderr
    assert FAKE not in r.stdout + r.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_allows_its_hosts_and_aliases(path, tmp_path):
    doc = yaml.safe_load(open(path))
    env = env_for(doc, tmp_path)

    def explain(target):
        return subprocess.run([harness.paddock_path(), "policy", "explain", path, target],
                              capture_output=True, text=True, timeout=20, env=env)

    for rule in doc["allow"]:
        r = explain(f"https://{rule['host']}/")
        assert r.returncode == 0 and "proxy: allowed" in r.stdout, r
    r = explain("https://example.com/")
    assert r.returncode == 3, "anything else is denied"
    for c in doc.get("credentials", []):
        r = explain(f"http://{c['alias']}.devbox.local/v1/")
        assert r.returncode == 0, r
        assert f"credential {c['name']} injected" in r.stdout and c["domain"] in r.stdout, r.stdout
        assert FAKE not in r.stdout


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_runs_a_trivial_command_without_showing_a_secret(path, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (the sandbox runs as the caller; HOME must exist)")
    doc = yaml.safe_load(open(path))
    ws = tmp_path / "ws"
    ws.mkdir()
    r = subprocess.run([harness.paddock_path(), "run", "--policy", path, "--workspace", str(ws),
                        "--log", str(tmp_path / "run.log"), "--", "sh", "-c", "env; echo ran-in-$(pwd)"],
                       capture_output=True, text=True, timeout=60, env=env_for(doc, tmp_path),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    assert "ran-in-/workspace" in r.stdout
    assert FAKE not in r.stdout + r.stderr
    inside = dict(line.split("=", 1) for line in r.stdout.splitlines() if re.match(r"^\w+=", line))
    for k, v in doc.get("sandbox", {}).get("env", {}).items():
        assert inside.get(k) == v, (k, inside.get(k))


def test_the_binary_carries_the_same_examples():
    """`paddock policy example` lists exactly the files of examples/ and prints each byte for byte."""
    r = subprocess.run([harness.paddock_path(), "policy", "example"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r
    listed = [line.split()[0] for line in r.stdout.splitlines()]
    assert sorted(listed) == sorted(os.path.basename(p)[:-len(".yaml")] for p in EXAMPLES)
    for p in EXAMPLES:
        name = os.path.basename(p)[:-len(".yaml")]
        r = subprocess.run([harness.paddock_path(), "policy", "example", name], capture_output=True,
                           timeout=20)
        assert r.returncode == 0 and r.stdout == open(p, "rb").read(), name
    r = subprocess.run([harness.paddock_path(), "policy", "example", "nope"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "no example 'nope' (one of: claude-code" in r.stderr
