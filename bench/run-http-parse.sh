#!/usr/bin/env bash
# Request-head parsing speed, Paddock vs nodejs/http-parser (Debian's libhttp-parser-dev).
# Usage: bench/run-http-parse.sh [ITERATIONS]   (needs `make build` first; installs libhttp-parser-dev)
# Raw lines go to bench/results/http_parse.txt; summarise them into bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --bench
[ -f build/src/http/libpd_http_parse.a ] || { echo "run 'make build' first" >&2; exit 1; }
mkdir -p bench/results
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Same compiler and optimisation level as the release build (-O2), no sanitizers.
cc -std=c17 -O2 -D_GNU_SOURCE -Isrc -o "$out/http_parse_bench" bench/http_parse_bench.c \
    build/src/http/libpd_http_parse.a -lhttp_parser
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r) $(nproc) cores, gcc $(gcc -dumpversion), commit $(git rev-parse --short HEAD)"
    "$out/http_parse_bench" "${1:-1000000}"
} | tee bench/results/http_parse.txt
