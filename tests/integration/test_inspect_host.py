"""Black-box tests of `paddock inspect-host`: the real binary reports how the net module reads hosts.

Each alternate spelling of a loopback or metadata address must be recognised as that address, never as a
host name; each dangerous pattern must be refused with a clear message and exit status 2.
"""
import json
import os
import subprocess

import pytest

BUILD = os.environ.get("PADDOCK_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
PADDOCK = os.path.join(BUILD, "paddock")


def inspect(*args):
    return subprocess.run([PADDOCK, "inspect-host", *args], capture_output=True, text=True, timeout=30)


def inspect_json(host, *patterns):
    args = ["--json", host]
    for p in patterns:
        args += ["--pattern", p]
    r = inspect(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "127.1", "127.0.1", "0x7f.0.0.1", "0177.0.0.1", "0x7f000001", "2130706433",
    "017700000001", "127.0.0.1.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]",
    "[64:ff9b::7f00:1]", "[2002:7f00:1::]",
])
def test_loopback_spellings_are_loopback(spelling):
    o = inspect_json(spelling)
    assert o["kind"] == "address"
    assert "loopback" in o["classes"].split(",")
    assert o["public"] is False


@pytest.mark.parametrize("spelling", [
    "169.254.169.254", "0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]", "[fd00:ec2::254]",
])
def test_metadata_spellings_are_metadata(spelling):
    o = inspect_json(spelling)
    assert "metadata" in o["classes"].split(",")
    assert o["public"] is False


def test_public_address_is_public():
    o = inspect_json("8.8.8.8")
    assert o["classes"] == "public" and o["public"] is True
    assert o["canonical_spelling"] is True


def test_name_is_canonicalised_and_matched():
    o = inspect_json("API.Example.COM.", "*.example.com", "example.com")
    assert o["kind"] == "name" and o["canonical"] == "api.example.com"
    assert [m["match"] for m in o["patterns"]] == [True, False]


@pytest.mark.parametrize("host", ["evilexample.com", "example.com.evil.com", "example.com"])
def test_wildcard_matches_subdomains_only(host):
    o = inspect_json(host, "*.example.com")
    assert o["patterns"][0]["match"] is False


def test_address_matches_no_pattern():
    o = inspect_json("127.1", "*.example.com")
    assert o["patterns"][0]["match"] is False


@pytest.mark.parametrize("pattern,fragment", [
    ("*", "every host"), ("*.com", "top-level domain"), ("exa*mple.com", "leftmost label"),
    ("127.0.0.1", "IP/CIDR rule"), ("*example.com", "leftmost label"),
])
def test_bad_patterns_refused(pattern, fragment):
    r = inspect("--pattern", pattern, "x.example.com")
    assert r.returncode == 2
    assert r.stdout == ""
    assert fragment in r.stderr and "--pattern" in r.stderr


@pytest.mark.parametrize("host", ["exa mple.com", "1.2.3.256", "foo.1", "b\u00fccher.de", "a..b", ""])
def test_invalid_hosts_fail_with_reason(host):
    r = inspect(host)
    assert r.returncode == 1
    assert r.stderr.startswith("paddock inspect-host: ")
    assert len(r.stderr.strip()) > len("paddock inspect-host: ")


def test_usage_errors():
    r = inspect()
    assert r.returncode == 2 and "needs at least one HOST" in r.stderr
    r = inspect("--bogus", "x")
    assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr
    r = inspect("--pattern")
    assert r.returncode == 2 and "needs a value" in r.stderr
