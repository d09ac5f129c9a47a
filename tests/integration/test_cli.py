"""Black-box tests of the `paddock` command line (src/cli)."""

import subprocess

from harness import IO_TIMEOUT


def run(paddock, *args):
    return subprocess.run([paddock, *args], capture_output=True, text=True, timeout=IO_TIMEOUT,
                          stdin=subprocess.DEVNULL)


def test_help_lists_subcommands(paddock):
    r = run(paddock, "--help")
    assert r.returncode == 0
    assert "commands:" in r.stdout
    for cmd in ("help", "version"):
        assert f"\n  {cmd} " in r.stdout
    assert r.stderr == ""


def test_help_command_same_as_flag(paddock):
    assert run(paddock, "help").stdout == run(paddock, "--help").stdout


def test_version(paddock):
    r = run(paddock, "version")
    assert r.returncode == 0
    assert r.stdout.startswith("paddock ")
    assert r.stdout.strip().split()[1][0].isdigit()
    assert run(paddock, "--version").stdout == r.stdout


def test_unknown_flag(paddock):
    r = run(paddock, "--bogus-flag")
    assert r.returncode == 2
    assert "unknown option '--bogus-flag'" in r.stderr
    assert r.stdout == ""


def test_unknown_command(paddock):
    r = run(paddock, "frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr
    assert r.stdout == ""


def test_bad_log_level(paddock):
    r = run(paddock, "--log-level", "bogus", "version")
    assert r.returncode == 2
    assert "bogus" in r.stderr and "log level" in r.stderr


def test_option_missing_value(paddock):
    r = run(paddock, "--log-level")
    assert r.returncode == 2
    assert "needs a value" in r.stderr


def test_no_command_is_usage_error(paddock):
    r = run(paddock)
    assert r.returncode == 2
    assert "usage:" in r.stderr


def test_version_takes_no_arguments(paddock):
    r = run(paddock, "version", "extra")
    assert r.returncode == 2
    assert "takes no arguments" in r.stderr


def test_help_lists_inspect_host_and_its_help(paddock):
    assert "\n  inspect-host " in run(paddock, "--help").stdout
    r = run(paddock, "help", "inspect-host")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: paddock inspect-host")


def test_help_for_unknown_command(paddock):
    r = run(paddock, "help", "frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr


def test_log_file_unwritable_names_the_path(paddock, tmp_path):
    bad = tmp_path / "no-such-dir" / "paddock.log"
    r = run(paddock, "--log-file", str(bad), "version")
    assert r.returncode == 1
    assert str(bad) in r.stderr and "No such file or directory" in r.stderr
    assert r.stdout == ""


def test_bad_log_level_from_environment(paddock):
    r = subprocess.run([paddock, "version"], capture_output=True, text=True, timeout=IO_TIMEOUT,
                       env={"PADDOCK_LOG_LEVEL": "loud", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert "PADDOCK_LOG_LEVEL='loud'" in r.stderr


def test_option_equals_form(paddock):
    r = run(paddock, "--log-level=error", "version")
    assert r.returncode == 0 and r.stdout.startswith("paddock ")
