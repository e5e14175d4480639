#!/usr/bin/env bash
# `make bench`: every area's benchmarks next to its reference, measured in this one run.
# Each scripts/bench.d/*.sh prints its own table of ratios; outputs are kept in bench-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench-out
# References from an earlier run must not stand in for this one's.
rm -f bench-out/hypercore-ref.json bench-out/hypercore-bcd.json
echo "# make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# ONLY_BENCH="feed replicate" runs those areas alone (names as in scripts/bench.d, without the
# number); the reference Hypercore runs too whenever feed is among them (feed compares with it).
only=" ${ONLY_BENCH:-} "
[[ "$only" == *" feed "* ]] && only+="hypercore-reference "
for s in scripts/bench.d/*.sh; do
  [ -e "$s" ] || continue
  file=$(basename "$s" .sh)
  name=${file#[0-9][0-9]-}
  [ -n "${ONLY_BENCH:-}" ] && [[ "$only" != *" $name "* && "$only" != *" $file "* ]] && continue
  bash "$s"
done
