#!/usr/bin/env bash
# CPU cost per DNS query: dnsmasq, unbound and `paddock gateway --dns-listen`, each loaded by the same
# dnsperf run (allowed names, then denied names), with the server's own CPU time (utime + stime from
# /proc) divided by the queries it answered. On a 2-core machine the queries/s of bench/run-dns.sh are
# bounded by dnsperf itself (all three servers land within noise of each other); this is the
# comparison that separates them. Paddock writes one JSON audit line per query to a file; the peers
# log nothing per query (dnsmasq without --log-queries, unbound at verbosity 0).
# Usage: bench/run-dns-cpu.sh [SECONDS]   (needs `make build`; raw lines: bench/results/dns-cpu-<date>.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${PADDOCK_SHARED_BENCH:-$ROOT/../shared/bench}
DUR=${1:-10}
[ -x build/paddock ] || { echo "run 'make build' first" >&2; exit 1; }
"$SHARED/deps.sh" >/dev/null
# shellcheck disable=SC1091
. "$SHARED/lib.sh"
write_dns_zone
D=$STATE/dns
PORT=18057
work=$(mktemp -d)
chmod 755 "$work"
gw=""
cleanup() {
    if [ -n "$gw" ] && kill -0 "$gw" 2>/dev/null; then kill -TERM "$gw"; wait "$gw" 2>/dev/null || true; fi
    "$SHARED/peers.sh" stop dnsmasq unbound >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cat >"$work/gateway.yaml" <<YAML
allow:
  - host: "*.bench.test"
dns:
  hosts_file: $D/zone.hosts
  unique_subdomains_per_minute: 0
YAML
build/paddock --log-file "$work/gateway.log" gateway --config "$work/gateway.yaml" \
    --dns-listen "127.0.0.1:$PORT" --user nobody &
gw=$!
"$SHARED/peers.sh" start dnsmasq unbound >/dev/null
sleep 1
out=bench/results/dns-cpu-$(date -u +%Y-%m-%d).txt
mkdir -p bench/results
: >"$out"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
measure() { # NAME PID PORT
    local name=$1 pid=$2 port=$3 f t0 t1 q
    for f in allow deny; do
        t0=$(ticks "$pid")
        q=$(dnsperf -s 127.0.0.1 -p "$port" -d "$D/$f.queries" -l "$DUR" -c 1 -T 1 -q 100 -t 2 2>&1 |
            awk '/Queries completed:/ { print $3 }')
        t1=$(ticks "$pid")
        awk -v n="$name" -v f="$f" -v q="$q" -v t=$((t1 - t0)) -v hz="$hz" -v d="$DUR" 'BEGIN {
            cpu = t / hz; printf "bench=dns-cpu name=%s test=%s queries=%d qps=%.0f cpu_s=%.2f queries_per_cpu_s=%.0f us_per_query=%.2f\n",
                n, f, q, q / d, cpu, (cpu > 0 ? q / cpu : 0), (q > 0 ? cpu * 1e6 / q : 0) }' | tee -a "$out"
    done
}
pidof_port() { ss -Hlunp "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }
measure dnsmasq "$(pidof_port "$DNSMASQ_PORT")" "$DNSMASQ_PORT"
measure unbound "$(pidof_port "$UNBOUND_PORT")" "$UNBOUND_PORT"
measure paddock "$gw" "$PORT"
echo "raw lines: $out"
