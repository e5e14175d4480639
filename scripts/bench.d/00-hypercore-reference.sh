#!/usr/bin/env bash
# The real Hypercore's benchmark (../shared/reference/hypercore), run once per
# `make bench` so that every area compares against figures from this same run.
# BENCH_QUICK=1 runs its quick mode. Output: bench-out/hypercore-ref.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
ref=${HYPERCORE_REFERENCE_DIR:-../shared/reference/hypercore}
if [ ! -x "$ref/run.sh" ]; then
  echo "bench: the reference benchmark is not at $ref (set HYPERCORE_REFERENCE_DIR)" >&2
  exit 1
fi
mode=""
[ -n "${BENCH_QUICK:-}" ] && export QUICK=1 && mode=" (quick)"
echo "== reference: real Hypercore$mode"
"$ref/run.sh" > bench-out/hypercore-ref.json 2> bench-out/hypercore-ref.log
tail -n 3 bench-out/hypercore-ref.log
