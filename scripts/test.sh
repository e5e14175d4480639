#!/usr/bin/env bash
# Runs every test with the race detector, then each fuzz target briefly.
# On a machine where everything can run (root), a skipped test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
export DV_REQUIRE_VECTORS=1
noskip=""
[ "$(id -u)" -eq 0 ] && noskip="-noskip"
go build -o /tmp/dv-testreport ./tools/testreport
set +e
go test -race -json -timeout 25m ./... 2>&1 | /tmp/dv-testreport $noskip
rc=${PIPESTATUS[1]}
set -e
[ "$rc" -eq 0 ] || exit "$rc"
FUZZTIME=${FUZZTIME:-3s} scripts/fuzz.sh
echo "make test took $(( $(date +%s) - start )) s"
