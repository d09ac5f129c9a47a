#!/usr/bin/env bash
# `make demo`: shows, with the real binary, what Paddock does today.
# Paddock is being built component by component (see ARCHITECTURE.md, "Status by component"). Until the
# sandbox exists, this shows the net module's reading of hosts, the egress gateway in front of a real
# origin on loopback and the DNS filter answering dig (each outcome checked; exit 1 if one is not the
# expected one), stops everything it started by PID, and says plainly what is not there yet.
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

say "The egress gateway: a local origin, a policy, and requests through paddock gateway"
work=$(mktemp -d)
origin_pid=""; gw_pid=""; dns_pid=""
cleanup() {
    [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
    [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
    [ -n "$origin_pid" ] && kill "$origin_pid" 2>/dev/null && wait "$origin_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
oport=$(free_port); gport=$(free_port)
mkdir -p "$work/www" && echo "hello from the origin" > "$work/www/hello.txt"
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$oport" >"$work/origin.log" 2>&1 &
origin_pid=$!
cat > "$work/gateway.yaml" <<YAML
sandbox_id: demo
allow:
  - host: api.demo.test          # the only destination this "agent" may reach
    ports: [$oport]
    allow_private: true          # it lives on loopback in this demo
upstream:
  hosts:                         # a static name for the demo origin (no DNS)
    api.demo.test: ["127.0.0.1"]
    other.demo.test: ["127.0.0.1"]
YAML
echo "policy ($work/gateway.yaml):"; sed 's/^/  /' "$work/gateway.yaml"
"$BIN" --log-file "$work/gateway.log" gateway --config "$work/gateway.yaml" --listen "127.0.0.1:$gport" &
gw_pid=$!
for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$oport/" 2>/dev/null && \
        grep -q '"event":"listening"' "$work/gateway.log" 2>/dev/null && break
    sleep 0.1
done
try() { # expected-status description curl-args...
    local want=$1 what=$2; shift 2
    local got; got=$(curl -s -o "$work/body" -w '%{http_code}' -x "http://127.0.0.1:$gport" "$@" || true)
    local mark="ok"; [ "$got" = "$want" ] || { mark="UNEXPECTED"; failed=1; }
    printf '  %-52s expected %s, got %s  %s\n' "$what" "$want" "$got" "$mark"
    [ "$got" = "200" ] && sed 's/^/      /' "$work/body" | head -2
    [ "$got" != "200" ] && [ -s "$work/body" ] && printf '      %s\n' "$(head -c 300 "$work/body")"
    return 0
}
failed=0
try 200 "allowed name" "http://api.demo.test:$oport/hello.txt"
try 403 "a name the policy does not list" "http://other.demo.test:$oport/hello.txt"
try 403 "loopback spelled 0x7f.1 (an IP literal)" "http://0x7f.1:$oport/hello.txt"
try 400 "Host header naming another host" -H "Host: other.demo.test:$oport" "http://api.demo.test:$oport/hello.txt"
echo "  access log (one JSON line per request):"
grep '"event":"access"' "$work/gateway.log" | head -4 | cut -c1-200 | sed 's/^/    /'
[ "$failed" = 0 ] || { echo "make demo: an outcome was not the expected one" >&2; exit 1; }

say "The DNS filter: the same allowlist, answered by the gateway (dig, UDP and TCP)"
dport=$(free_port)
cat > "$work/dns.yaml" <<YAML
sandbox_id: demo
allow:
  - host: api.demo.test
  - host: "*.pypi.demo.test"     # a wildcard: its subdomains resolve, with tunnelling defences
dns:
  unique_subdomains_per_minute: 20
YAML
echo "policy ($work/dns.yaml):"; sed 's/^/  /' "$work/dns.yaml"
"$BIN" --log-file "$work/dns.log" gateway --config "$work/dns.yaml" --dns-listen "127.0.0.1:$dport" &
dns_pid=$!
for _ in $(seq 50); do grep -q '"event":"dns_listening"' "$work/dns.log" 2>/dev/null && break; sleep 0.1; done
ask() { # expected-status description dig-args...
    local want=$1 what=$2; shift 2
    local out got
    out=$(dig +time=2 +tries=1 -p "$dport" @127.0.0.1 "$@" 2>&1 || true)
    got=$(printf '%s\n' "$out" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p' | head -1)
    local mark="ok"; [ "$got" = "$want" ] || { mark="UNEXPECTED"; failed=1; }
    printf '  %-52s expected %s, got %s  %s\n' "$what" "$want" "${got:-no answer}" "$mark"
    return 0
}
ask NOERROR "allowed name (answered locally: 127.0.0.1)" api.demo.test A
ask NOERROR "allowed name over TCP" +tcp api.demo.test A
ask NXDOMAIN "a name no rule allows (never sent upstream)" evil.example A
ask REFUSED "TXT, a type the policy does not allow" api.demo.test TXT
ask REFUSED "a high-entropy label under a wildcard (exfiltration)" k7q2x9v4m8z1w6r3t5y0p.pypi.demo.test A
echo "  query log (one JSON line per query):"
grep '"event":"dns"' "$work/dns.log" | head -5 | cut -c1-230 | sed 's/^/    /'
kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null; dns_pid=""
[ "$failed" = 0 ] || { echo "make demo: an outcome was not the expected one" >&2; exit 1; }

say "Not built yet"
cat <<'TXT'
The sandbox with `paddock run` (issue 5) is the next component; when it lands, `make demo` runs a sandboxed
agent whose only ways out are this gateway and this DNS filter. Nothing above was simulated: every line
came from build/paddock, a real origin on loopback and dig.
TXT
