#!/usr/bin/env bash
# stream/feed against the reference Hypercore measured just before (00-hypercore-reference.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
q=""
[ -n "${BENCH_QUICK:-}" ] && q="-quick"
echo "== stream/feed (Go benchmarks: go test -bench . ./stream/feed; figures: tools/feedbench)"
go test -run '^$' -bench 'Append1KiB$|Append1KiBBatch100$|Append64KiB$|LiveTailProof' -benchtime 2000x ./stream/feed | grep -E '^Benchmark'
go test -run '^$' -bench 'ProofTree' -benchtime 5x ./stream/feed | grep -E '^Benchmark'   # the tree alone vs its floor (goal x-over-floor <= 1.5)
go run ./tools/feedbench $q -out bench-out/feed.json -ref bench-out/hypercore-ref.json 2> bench-out/feed.log
echo "(node ../shared/reference/hypercore/compare.js bench-out/hypercore-ref.json bench-out/feed.json prints the reference's own comparison)"
