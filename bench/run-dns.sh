#!/usr/bin/env bash
# DNS filter speed and memory: `paddock gateway --dns-listen` side by side with dnsmasq and unbound,
# using the shared peer harness (../shared/bench: dnsperf, dnslat). Usage:
#   bench/run-dns.sh                       # full run (10 s x 3 per test, ~5 min)
#   DURATION=5 REPS=1 bench/run-dns.sh     # quick look
# Needs `make build` first. The gateway runs DNS only, as shipped (two workers, --user nobody, seccomp,
# one log line per query to a file), allowing *.bench.test with the harness's zone as its hosts_file
# (h00001..h01000.bench.test -> 127.0.X.Y); every other name gets NXDOMAIN, like the peers.
# Raw lines go to bench/results/dns-<UTC date>.txt; summarise them into bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${PADDOCK_SHARED_BENCH:-$ROOT/../shared/bench}
[ -x "$SHARED/dns-all.sh" ] || { echo "no peer harness at $SHARED (set PADDOCK_SHARED_BENCH)" >&2; exit 1; }
[ -x build/paddock ] || { echo "run 'make build' first" >&2; exit 1; }
"$SHARED/deps.sh" >/dev/null
PORT=${DNS_PORT:-18055}
# The zone the peers serve (written by the harness's own helper, idempotent).
# shellcheck disable=SC1091
(. "$SHARED/lib.sh" && write_dns_zone)
ZONE=${BENCH_STATE:-/tmp/paddock-bench}/dns/zone.hosts
work=$(mktemp -d)
chmod 755 "$work"
gw=""
cleanup() {
    if [ -n "$gw" ] && kill -0 "$gw" 2>/dev/null; then
        kill -TERM "$gw"
        wait "$gw" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cat >"$work/gateway.yaml" <<YAML
allow:
  - host: "*.bench.test"
dns:
  hosts_file: $ZONE
  unique_subdomains_per_minute: 0
YAML
build/paddock --log-file "$work/gateway.log" gateway --config "$work/gateway.yaml" \
    --dns-listen "127.0.0.1:$PORT" --user nobody &
gw=$!
for _ in $(seq 50); do
    ss -Hlun "sport = :$PORT" | grep -q . && break
    sleep 0.1
done
ss -Hlun "sport = :$PORT" | grep -q . || { echo "gateway did not start; log:" >&2; cat "$work/gateway.log" >&2; exit 1; }
mkdir -p bench/results
export BENCH_RESULTS=${BENCH_RESULTS:-$ROOT/bench/results/dns-$(date -u +%Y-%m-%d).txt}
"$SHARED/dns-all.sh" "paddock=127.0.0.1:$PORT"
