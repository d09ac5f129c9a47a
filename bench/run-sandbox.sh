#!/usr/bin/env bash
# Sandbox start time and memory: `paddock run -- /bin/true` side by side with the launchers a user would
# pick instead (bubblewrap's agent profile, unshare, firejail, crun), through the shared peer harness
# (../shared/bench/sandbox.sh: hyperfine, warm-up first), then the resident memory of paddock's launcher,
# the sandbox's init and the gateway while a command runs. Usage:
#   bench/run-sandbox.sh                  # full run (300 runs per variant, ~2 min)
#   RUNS=50 bench/run-sandbox.sh          # quick look
# Needs `make build` first; run as root (the unprivileged variants use setpriv themselves). paddock runs
# with every layer on: user, mount, PID, network, UTS, IPC and cgroup namespaces, its own gateway
# process (started, handed the listeners, stopped), Landlock, the syscall filter, capabilities dropped
# and a cgroup with the default limits (paddock-nolimits: the same without resource limits, so no
# cgroup: on a cgroup v1 host each sandbox's cgroup costs a migration that waits for an RCU grace
# period). Raw lines go to bench/results/sandbox-<UTC time>.txt;
# summarise them into bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${PADDOCK_SHARED_BENCH:-$ROOT/../shared/bench}
[ -x "$SHARED/sandbox.sh" ] || { echo "no peer harness at $SHARED (set PADDOCK_SHARED_BENCH)" >&2; exit 1; }
[ -x build/paddock ] || { echo "run 'make build' first" >&2; exit 1; }
"$SHARED/deps.sh" >/dev/null
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$ROOT/bench/results/sandbox-$stamp.txt
log=$(mktemp /tmp/paddock-bench-gw.XXXXXX)
trap 'rm -f "$log"' EXIT
nobody_log=$(mktemp -d /tmp/paddock-bench-nobody.XXXXXX)
chmod 777 "$nobody_log"
nolimits=$(mktemp /tmp/paddock-bench-nolimits.XXXXXX.yaml)
printf 'sandbox:\n  limits: {memory: 0, pids: 0, cpu: 0}\n' >"$nolimits"
chmod 644 "$nolimits"
trap 'rm -f "$log" "$nolimits"; rm -rf "$nobody_log"' EXIT

BENCH_RESULTS=$out VARIANTS=${VARIANTS:-"plain unshare unshare-nonet bwrap-agent plain-nobody bwrap-agent-nobody firejail-min crun"} \
    "$SHARED/sandbox.sh" \
    "paddock=$ROOT/build/paddock run --log $log -- /bin/true" \
    "paddock-nolimits=$ROOT/build/paddock run --policy $nolimits --log $log -- /bin/true" \
    "paddock-nobody=setpriv --reuid=nobody --regid=nogroup --clear-groups $ROOT/build/paddock run --allow-degraded cgroup --log $nobody_log/gw.log -- /bin/true"

# Memory: VmRSS and Pss of each process of one running sandbox (the command sleeps).
"$ROOT/build/paddock" run --log "$log" -- /bin/sleep 3 &
launcher=$!
sleep 1.5
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
children() { cat /proc/"$1"/task/*/children 2>/dev/null; }
{
    echo "bench=sandbox-memory process=launcher rss_kib=$(rss $launcher) pss_kib=$(pss $launcher)"
    for c in $(children $launcher); do
        name=$(tr -d '\n' <"/proc/$c/comm")
        case $name in
            exe) echo "bench=sandbox-memory process=gateway rss_kib=$(rss "$c") pss_kib=$(pss "$c")" ;;
            *) echo "bench=sandbox-memory process=init rss_kib=$(rss "$c") pss_kib=$(pss "$c")" ;;
        esac
    done
} | tee -a "$out"
bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --die-with-parent /bin/sleep 3 &
bw=$!
sleep 1.5
{
    echo "bench=sandbox-memory process=bwrap-launcher rss_kib=$(rss $bw) pss_kib=$(pss $bw)"
    for c in $(children $bw); do
        echo "bench=sandbox-memory process=bwrap-init rss_kib=$(rss "$c") pss_kib=$(pss "$c")"
    done
} | tee -a "$out"
wait "$launcher" "$bw"
echo "raw results: $out"
