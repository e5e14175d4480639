#!/usr/bin/env bash
# Runs every test with the race detector, then each fuzz target briefly. The per-binary timeout
# is 40 minutes: on a cold machine packaging/windows cross-compiles the app for its wine test.
# On a machine where everything can run (root), a skipped test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
export DV_REQUIRE_VECTORS=1
noskip=""
[ "$(id -u)" -eq 0 ] && noskip="-noskip"
go build -o /tmp/dv-testreport ./tools/testreport
set +e
go test -race -json -timeout 40m ./... 2>&1 | /tmp/dv-testreport $noskip
rc=${PIPESTATUS[1]}
set -e
[ "$rc" -eq 0 ] || exit "$rc"
# Every benchmark once (-benchtime 1x), so a broken benchmark fails CI: only the packages that
# have one and without the race detector, so this adds their set-up time, not a second test run;
# built with DV_GOFLAGS (the Makefile's), the configuration vet and the tests' own builds use.
# -v: without it go test prints nothing for a skipped benchmark.
bench_pkgs=$(grep -rlE --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata '^func Benchmark' . | xargs -r -n1 dirname | sort -u)
if [ -n "$bench_pkgs" ]; then
  bstart=$(date +%s)
  set +e
  GOFLAGS="${DV_GOFLAGS:-}" go test -v -run '^$' -bench . -benchtime 1x -timeout 20m $bench_pkgs 2>&1 | tee /tmp/dv-bench-once.txt
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || { echo "a benchmark failed (make test runs each once)"; exit "$rc"; }
  if [ -n "$noskip" ] && grep -q -- '--- SKIP' /tmp/dv-bench-once.txt; then
    echo "a benchmark skipped on a machine where everything can run"; exit 1
  fi
  echo "every benchmark ran once in $(( $(date +%s) - bstart )) s"
fi
FUZZTIME=${FUZZTIME:-2s} scripts/fuzz.sh
echo "make test took $(( $(date +%s) - start )) s"
