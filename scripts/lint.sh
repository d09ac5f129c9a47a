#!/usr/bin/env bash
# Static analysis run by `make test`: cppcheck over src/ with the checks we keep.
# Kept: warning, portability, performance. Not kept: style (too many opinions that clang-format and review
# already settle) and information (missing system headers are expected: cppcheck does not need them).
set -euo pipefail
cd "$(dirname "$0")/.."
cppcheck --quiet --enable=warning,portability,performance --std=c11 --inline-suppr \
    --error-exitcode=1 -I src -D_GNU_SOURCE -DPD_VERSION='"lint"' \
    --suppress=missingIncludeSystem \
    src
echo "lint: cppcheck clean"
