"""docs/policy.md is the policy file's reference: it must document exactly the keys the schema accepts
(`paddock policy keys`), with the schema's defaults, and every example on the page must pass
`paddock policy check`. Unknown keys anywhere are errors naming file, line, column and key."""

import json
import os
import re
import subprocess

import pytest
import yaml

import harness

SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(SRC_DIR, "docs", "policy.md")
SECRET = "test-value-0123456789"


def page():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def doc_rows():
    """{key: (type, default, text)} from the tables whose header is `| key | type | default | ...`."""
    rows, in_keys = {}, False
    for line in page().splitlines():
        if line.startswith("| key | type | default |"):
            in_keys = True
            continue
        if not line.startswith("|"):
            in_keys = False
            continue
        m = re.match(r"\| `([^`]+)` \| ([^|]*) \| ([^|]*) \| (.*) \|$", line)
        if in_keys and m:
            assert m.group(1) not in rows, f"{m.group(1)} documented twice"
            rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip(), m.group(4))
    return rows


def schema_keys():
    r = subprocess.run([harness.paddock_path(), "policy", "keys"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    keys = {}
    for line in r.stdout.splitlines():
        path, typ, default = line.split("\t")
        keys[path] = (typ, default)
    return keys


def examples():
    return [m.group(1) for m in re.finditer(r"```yaml\n(.*?)```", page(), re.S)]


def flatten(node, keys, path=""):
    """Key paths used by a document, stopping at maps (their keys are names, not schema keys)."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            keys.add(p)
            if keys_types.get(p) != "map":
                flatten(v, keys, p)
    elif isinstance(node, list):
        for v in node:
            flatten(v, keys, path + "[]")


keys_types = {}


def test_the_page_documents_exactly_the_schemas_keys():
    doc, schema = doc_rows(), schema_keys()
    assert len(schema) > 70
    assert sorted(set(schema) - set(doc)) == [], "keys the schema accepts but docs/policy.md omits"
    assert sorted(set(doc) - set(schema)) == [], "keys docs/policy.md describes but the schema refuses"


def test_documented_defaults_are_the_schemas():
    doc, schema = doc_rows(), schema_keys()
    for key, (_, default) in schema.items():
        cell = doc[key][1]
        if default == "required":
            assert cell == "required", (key, cell)
            continue
        if default in ("-", "{}"):
            continue  # no schema default (documented in words), or an object filled from its keys
        value = json.loads(default)
        items = value if isinstance(value, list) else [value]
        for item in items:
            word = json.dumps(item) if isinstance(item, bool) else str(item)
            assert f"`{word}`" in cell or f'"{word}"' in cell or word in cell, (key, default, cell)


def prepare(tmp_path, text):
    """Write one example as a policy with the files and variables it names; returns (path, env)."""
    doc = yaml.safe_load(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    creds = doc.get("credentials") if isinstance(doc.get("credentials"), list) else []
    for c in creds:
        if not isinstance(c, dict):
            continue
        if isinstance(c.get("value_env"), str):
            env[c["value_env"]] = SECRET
        if isinstance(c.get("value_file"), str):
            f = tmp_path / c["value_file"]
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(SECRET + "\n")
            f.chmod(0o600)
    if isinstance(doc.get("state_file"), str):
        (tmp_path / doc["state_file"]).parent.mkdir(parents=True, exist_ok=True)
    dns = doc.get("dns") if isinstance(doc.get("dns"), dict) else {}
    if isinstance(dns.get("hosts_file"), str):
        (tmp_path / dns["hosts_file"]).write_text("127.0.0.1 origin.test\n")
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return p, env


def test_every_example_on_the_page_passes_policy_check(tmp_path):
    texts = examples()
    assert len(texts) >= 2
    for i, text in enumerate(texts):
        d = tmp_path / f"ex{i}"
        d.mkdir()
        p, env = prepare(d, text)
        r = subprocess.run([harness.paddock_path(), "policy", "check", str(p)], capture_output=True,
                           text=True, timeout=20, env=env)
        assert r.returncode == 0, (text, r.stderr)
        assert SECRET not in r.stdout + r.stderr


def test_the_examples_use_every_documented_key():
    schema = schema_keys()
    keys_types.update({k: v[0] for k, v in schema.items()})
    used = set()
    for text in examples():
        flatten(yaml.safe_load(text), used)
    assert sorted(set(schema) - used) == [], "documented keys no example on the page shows"
    assert sorted(used - set(schema)) == []


def objects_of(node, path=""):
    """(path, dict) for every mapping in a document, maps included."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from objects_of(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from objects_of(v, f"{path}[{i}]")


def test_an_unknown_key_in_any_object_is_refused_with_its_place(tmp_path):
    complete = max(examples(), key=len)
    schema = schema_keys()
    base = yaml.safe_load(complete)
    places = [p for p, _ in objects_of(base)
              if schema.get(re.sub(r"\[\d+\]", "[]", p), ("object",))[0] != "map"]
    assert len(places) > 15
    for place in places:
        doc = yaml.safe_load(complete)
        target = dict(objects_of(doc))[place]
        target["bogus_key"] = 1
        p, env = prepare(tmp_path, yaml.safe_dump(doc, sort_keys=False))
        r = subprocess.run([harness.paddock_path(), "policy", "check", str(p)], capture_output=True,
                           text=True, timeout=20, env=env)
        assert r.returncode == 1 and r.stdout == "", (place, r)
        where = "unknown top-level key 'bogus_key'" if place == "" else f"{place}: unknown key 'bogus_key'"
        assert re.search(rf"{re.escape(str(p))}:\d+:\d+: {re.escape(where)}", r.stderr), (place, r.stderr)


def test_a_credentials_variable_may_not_be_passed_in(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("allow:\n  - host: api.example.com\n"
                 "credentials:\n  - name: api\n    domain: api.example.com\n    header: x-api-key\n"
                 "    format: \"{value}\"\n    value_env: MY_KEY\n"
                 "sandbox:\n  env_pass: [MY_KEY]\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MY_KEY": SECRET}
    r = subprocess.run([harness.paddock_path(), "policy", "check", str(p)], capture_output=True, text=True,
                       timeout=20, env=env)
    assert r.returncode == 1, r
    assert f"{p}:10:" in r.stderr and "credential 'api'" in r.stderr and SECRET not in r.stderr
    r = subprocess.run([harness.paddock_path(), "run", "--policy", str(p), "--", "true"],
                       capture_output=True, text=True, timeout=20, env=env, cwd=tmp_path)
    assert r.returncode == 125 and "credential 'api'" in r.stderr, r


@pytest.mark.parametrize("how", ["sandbox_env", "option"])
def test_no_variable_inside_may_hold_a_credentials_value(tmp_path, how):
    p = tmp_path / "p.yaml"
    text = ("credentials:\n  - name: api\n    domain: api.example.com\n    header: x-api-key\n"
            "    format: \"{value}\"\n    value_env: MY_KEY\n"
            "sandbox:\n  env: {MY_KEY: placeholder}\n")
    opts = []
    if how == "sandbox_env":
        text = text.replace("{MY_KEY: placeholder}", f"{{MY_KEY: placeholder, OTHER: 'x{SECRET}'}}")
    else:
        opts = ["--env", f"OTHER=Bearer {SECRET}"]
    p.write_text(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MY_KEY": SECRET}
    # A placeholder under the credential's own variable name is fine: the agent sees no secret.
    r = subprocess.run([harness.paddock_path(), "run", "--policy", str(p), "--", "sh", "-c",
                        "echo $MY_KEY"], capture_output=True, text=True, timeout=30, env=env, cwd=tmp_path)
    assert r.returncode == (0 if how == "option" else 125), r
    if how == "option":
        assert r.stdout.strip() == "placeholder" and SECRET not in r.stdout
    r = subprocess.run([harness.paddock_path(), "run", "--policy", str(p), *opts, "--", "true"],
                       capture_output=True, text=True, timeout=30, env=env, cwd=tmp_path)
    assert r.returncode == 125, r
    assert "variable OTHER inside the sandbox would hold the value of credential 'api'" in r.stderr, r
    assert SECRET not in r.stderr


BAD = {"string": 12345, "integer": "twelve", "number": "twelve", "boolean": "maybe", "object": "x",
       "list": "x", "map": "x", "any": [[]]}


def place(doc, path):
    """Walk to the parent of `path` in doc (first list element that has the key); returns (parent, key,
    concrete path with indexes)."""
    parts = re.findall(r"[^.\[\]]+|\[\]", path)
    node, concrete = doc, ""
    for i, p in enumerate(parts[:-1]):
        if p == "[]":
            rest = parts[i + 1]
            idx = next((k for k, v in enumerate(node) if isinstance(v, dict) and rest in v), 0)
            node, concrete = node[idx], f"{concrete}[{idx}]"
        else:
            node, concrete = node[p], f"{concrete}.{p}" if concrete else p
    key = parts[-1]
    return node, key, f"{concrete}.{key}" if concrete else key


def test_a_bad_value_for_any_key_is_refused_with_its_place(tmp_path):
    complete = max(examples(), key=len)
    schema = schema_keys()
    tried = 0
    for path, (typ, _) in schema.items():
        doc = yaml.safe_load(complete)
        try:
            parent, key, concrete = place(doc, path)
        except (KeyError, IndexError, TypeError):
            continue  # a key this example does not reach (another example on the page does)
        parent[key] = BAD[typ]
        p, env = prepare(tmp_path, yaml.safe_dump(doc, sort_keys=False))
        r = subprocess.run([harness.paddock_path(), "policy", "check", str(p)], capture_output=True,
                           text=True, timeout=20, env=env)
        assert r.returncode == 1 and r.stdout == "", (path, r)
        assert re.search(rf"{re.escape(str(p))}:\d+:\d+: {re.escape(concrete)}\b", r.stderr), (path, r.stderr)
        tried += 1
    assert tried >= len(schema) - 5, tried
