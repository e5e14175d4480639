#!/usr/bin/env bash
# `make bench`: every area's benchmarks next to its reference, measured in this one run.
# Each scripts/bench.d/*.sh prints its own table of ratios; outputs are kept in bench-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench-out
# References from an earlier run must not stand in for this one's.
rm -f bench-out/hypercore-ref.json bench-out/hypercore-bcd.json
echo "# make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for s in scripts/bench.d/*.sh; do
  [ -e "$s" ] || continue
  [ -n "${ONLY_BENCH:-}" ] && ! grep -q "$(basename "$s" .sh)" <<<"$ONLY_BENCH" && continue
  bash "$s"
done
