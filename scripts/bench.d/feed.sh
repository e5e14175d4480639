#!/usr/bin/env bash
# stream/feed against the reference Hypercore measured just before (00-hypercore-reference.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
q=""
[ -n "${BENCH_QUICK:-}" ] && q="-quick"
echo "== stream/feed (Go benchmarks: go test -bench . ./stream/feed; figures: tools/feedbench)"
go test -run '^$' -bench 'Append1KiB$|Append1KiBBatch100$|Append64KiB$|LiveTailProof' -benchtime 2000x ./stream/feed | grep -E '^Benchmark'
go test -run '^$' -bench 'ProofTree' -benchtime 5x ./stream/feed | grep -E '^Benchmark'   # the tree alone vs its floor (goal x-over-floor <= 1.5)
# A head's signature check, crypto/ed25519 against the expanded key the feed keeps, alternated.
go test -run '^$' -bench 'VerifySignature' -benchtime 20000x -count 3 ./stream/feed | awk '
  /^BenchmarkVerifySignature\/crypto/ {std += $3; ns++} /^BenchmarkVerifySignature\/expanded/ {ex += $3; ne++}
  END { if (ns && ne) printf "signature check: crypto/ed25519 %.1f us, expanded key %.1f us, ratio %.2fx (lower is better)\n", std/ns/1000, ex/ne/1000, (ex/ne)/(std/ns) }'
go run ./tools/feedbench $q -out bench-out/feed.json -ref bench-out/hypercore-ref.json 2> bench-out/feed.log
echo "(node ../shared/reference/hypercore/compare.js bench-out/hypercore-ref.json bench-out/feed.json prints the reference's own comparison)"
