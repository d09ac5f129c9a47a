#!/usr/bin/env bash
# `make demo`: shows, with the real binary, what Paddock does today.
# Paddock is being built component by component (see ARCHITECTURE.md, "Status by component"). The
# sandboxed-agent demo arrives with the gateway and sandbox; until then this shows the foundation that the
# gateway's decisions rest on, and says plainly what is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PADDOCK_BIN:-build/paddock}

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Paddock $($BIN version | cut -d' ' -f2): built components"
run "$BIN" --help

say "One canonical destination: every spelling of an address is recognised and classified"
echo "An agent that cannot reach 127.0.0.1 or the cloud metadata service will try other spellings."
run "$BIN" inspect-host 127.1 0x7f.0.0.1 0177.0.0.1 2130706433 '[::ffff:127.0.0.1]' \
    '[64:ff9b::a9fe:a9fe]' '[2002:a9fe:a9fe::1]' 169.254.169.254 8.8.8.8

say "Domain patterns: *.example.com matches subdomains only"
run "$BIN" inspect-host API.Example.COM. example.com evilexample.com example.com.evil.com \
    --pattern '*.example.com' --pattern api.example.com

say "Patterns that mean nothing safe are refused when the policy is loaded"
for p in '*' '*.com' 'exa*mple.com' '127.0.0.1'; do
    printf '$ %s inspect-host --pattern %q x\n' "$BIN" "$p"
    if "$BIN" inspect-host --pattern "$p" x >/dev/null; then
        echo "UNEXPECTED: pattern '$p' was accepted" >&2
        exit 1
    fi
done

say "Not built yet"
cat <<'TXT'
The egress gateway (issue 3), the DNS filter (issue 4) and the sandbox with `paddock run` (issue 5) are
the next components; when they land, `make demo` runs a sandboxed agent against a local HTTPS origin and
shows each denial. Nothing above was simulated: every line came from build/paddock.
TXT
