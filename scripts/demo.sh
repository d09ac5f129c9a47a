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
stop_pid() { # stop a process we started, by PID; its exit status is not ours
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    stop_pid "$gw_pid"
    stop_pid "$dns_pid"
    stop_pid "$origin_pid"
    rm -rf "$work"
    exit "$rc"
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
stop_pid "$dns_pid"; dns_pid=""
[ "$failed" = 0 ] || { echo "make demo: an outcome was not the expected one" >&2; exit 1; }

say "The sandbox: paddock run -- CMD, whose only ways out are its own gateway and DNS filter"
mkdir -p "$work/ws"
cat > "$work/run.yaml" <<YAML
sandbox_id: demo
allow:
  - host: api.demo.test
    ports: [$oport]
    allow_private: true
upstream:
  hosts:
    api.demo.test: ["127.0.0.1"]
    other.demo.test: ["127.0.0.1"]
sandbox:
  limits: {memory: 512M, pids: 256}
YAML
echo "policy ($work/run.yaml):"; sed 's/^/  /' "$work/run.yaml"
cat > "$work/ws/agent.sh" <<SH
# A scripted "agent": each line tries something and says whether it was allowed.
bad=0
check() {
    want=\$1 what=\$2; shift 2
    if "\$@" >/dev/null 2>&1; then got=allowed; else got=refused; fi
    mark=ok; [ "\$got" = "\$want" ] || { mark=UNEXPECTED; bad=1; }
    printf '  %-56s expected %s, got %s  %s\\n' "\$what" "\$want" "\$got" "\$mark"
}
check allowed "HTTP through the proxy to the allowed name" curl -sf http://api.demo.test:$oport/hello.txt
check refused "a name the policy does not list" curl -sf http://other.demo.test:$oport/hello.txt
check refused "a direct connection that bypasses the proxy" curl -sf --noproxy '*' --max-time 3 http://127.0.0.1:$oport/
check allowed "DNS for the allowed name" getent hosts api.demo.test
check refused "DNS for a name no rule allows" getent hosts evil.example
check refused "reading a masked file (/etc/shadow)" cat /etc/shadow
check refused "writing outside the workspace (/etc)" sh -c 'echo x > /etc/paddock-demo'
check allowed "writing in the workspace" sh -c 'echo x > /workspace/made-inside'
check refused "a raw socket" /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)'
check refused "a new user namespace (unshare -U)" unshare -U true
exit \$bad
SH
echo "inside the sandbox (one command: paddock run --policy run.yaml -- sh agent.sh):"
bin_abs=$(realpath "$BIN")
if ! (cd "$work/ws" && "$bin_abs" run --policy "$work/run.yaml" --log "$work/run.log" -- sh agent.sh); then
    echo "make demo: an outcome inside the sandbox was not the expected one" >&2
    exit 1
fi
[ -f "$work/ws/made-inside" ] || { echo "make demo: the workspace write did not reach the host" >&2; exit 1; }
echo "  the gateway's log for this sandbox (denials included):"
grep -E '"event":"(access|dns)"' "$work/run.log" | head -4 | cut -c1-200 | sed 's/^/    /'
cat <<'TXT'

Nothing above was simulated: every line came from build/paddock, a real origin on loopback, dig, and a
real sandbox (user, mount, PID, network, UTS, IPC and cgroup namespaces, Landlock, seccomp, no
capabilities). `paddock doctor` shows which of those layers this host offers.
TXT
