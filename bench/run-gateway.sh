#!/usr/bin/env bash
# Forward-proxy speed and memory: `paddock gateway` side by side with direct-to-origin, tinyproxy,
# squid and HAProxy, using the shared peer harness (../shared/bench: nginx origin on loopback, wrk,
# connbench). Usage:
#   bench/run-gateway.sh                 # full run (10 s x 3 per test, ~15 min)
#   DURATION=5 REPS=1 bench/run-gateway.sh            # quick look
#   PEERS= TESTS="checks get1k_c50" bench/run-gateway.sh   # only the gateway and direct
# Needs `make build` first. The gateway runs as `nobody` with its seccomp filter, exactly as shipped,
# inside the harness's private hosts namespace (origin.test -> 127.0.0.1; no real DNS is queried).
# Raw lines go to bench/results/proxy-<UTC date>.txt; summarise them into bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${PADDOCK_SHARED_BENCH:-$ROOT/../shared/bench}
[ -x "$SHARED/proxy-all.sh" ] || { echo "no peer harness at $SHARED (set PADDOCK_SHARED_BENCH)" >&2; exit 1; }
[ -x build/paddock ] || { echo "run 'make build' first" >&2; exit 1; }
"$SHARED/deps.sh" >/dev/null
PORT=${GATEWAY_PORT:-18131}
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
  - host: origin.test
    ports: [18080, 18443]
    allow_private: true
YAML
"$SHARED/with-hosts.sh" "$ROOT/build/paddock" --log-file "$work/gateway.log" gateway \
    --config "$work/gateway.yaml" --listen "127.0.0.1:$PORT" --user nobody &
gw=$!
for _ in $(seq 50); do
    ss -Hltn "sport = :$PORT" | grep -q . && break
    sleep 0.1
done
ss -Hltn "sport = :$PORT" | grep -q . || { echo "gateway did not start; log:" >&2; cat "$work/gateway.log" >&2; exit 1; }
mkdir -p bench/results
export BENCH_RESULTS=${BENCH_RESULTS:-$ROOT/bench/results/proxy-$(date -u +%Y-%m-%d).txt}
"$SHARED/proxy-all.sh" "paddock=127.0.0.1:$PORT"
