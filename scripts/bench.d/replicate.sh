#!/usr/bin/env bash
# Replication figures (stream/replicate, over go-libp2p on 127.0.0.1 with Noise) next to the
# JavaScript hypercore reference measured in this same run, then the fan-out sweep next to a
# plain go-libp2p one-stream-per-viewer baseline. See BENCHMARKS.md.
#
#   RUNS=3               runs per workload (median reported)
#   FANOUT_SECONDS=20    length of each fan-out run; FANOUT_COUNTS="100 200 400 600 800" the sweep
# The reference is bench-out/hypercore-ref.json from 00-hypercore-reference.sh (this same
# `make bench`); when it is missing (ONLY_BENCH=replicate) the reference runs here (b, c, d).
# Ours runs twice: with its storage where the reference kept its own (the temp directory, on
# disk: the feed's SyncBeforeShare durability fsyncs before each new signature leaves), and on
# tmpfs (/dev/shm), where that fsync costs nothing, to show the protocol without the disk; then
# the live tail on disk with the ForkOnPowerLoss durability.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench-out
mkdir -p "$out"
ref=${HYPERCORE_REFERENCE_DIR:-../shared/reference/hypercore}
runs=${RUNS:-3}
secs=${FANOUT_SECONDS:-20}

go test -c -o "$out/replicate.test" ./stream/replicate
refjson=$out/hypercore-ref.json
if [ ! -s "$refjson" ]; then
  refjson=$out/hypercore-bcd.json
  echo "== reference: real Hypercore, workloads b, c, d"
  ONLY=b,c,d RUNS=$runs "$ref/run.sh" >"$refjson" 2>"$out/hypercore-bcd.log"
fi
for store in "${TMPDIR:-/tmp}" /dev/shm; do
  fs=$(stat -f -c %T "$store")
  tag=$(basename "$store")
  echo
  echo "== stream/replicate vs Hypercore: storage on $fs ($store), $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
  TMPDIR=$store DV_REFERENCE_JSON="$refjson" DV_REPLBENCH="$out/replicate-$tag.json" RUNS=$runs \
    "$out/replicate.test" 2>"$out/replicate-$tag.log"
  node "$ref/compare.js" "$refjson" "$out/replicate-$tag.json" | grep -E '^(result|replicate|liveTail_16KiB_33ms |verify|lateJoin)'
done
# The live tail once more on disk with the feed's other durability, ForkOnPowerLoss (what a
# live broadcaster uses): signatures leave without waiting for the disk, and a writer that
# finds its predecessor died before a reboot moves to a new fork.
echo
echo "== live tail on disk (${TMPDIR:-/tmp}) with durability ForkOnPowerLoss, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
TMPDIR=${TMPDIR:-/tmp} DV_DURABILITY=fork ONLY=c DV_REFERENCE_JSON="$refjson" DV_REPLBENCH="$out/replicate-fork.json" RUNS=$runs \
  "$out/replicate.test" 2>"$out/replicate-fork.log"
node "$ref/compare.js" "$refjson" "$out/replicate-fork.json" | grep -E '^(result|liveTail_16KiB_33ms )'
store=/dev/shm

echo
echo "## fan-out: one seller, N viewers at ~1.07 Mbit/s (viewers spread over processes of 100), ${secs} s each"
echo "## e2e = append -> the viewer holds the verified block; seller = append -> written to that viewer's stream"
echo "## limit: where the worst viewer's p99 accrued (none: every viewer <= 100 ms; seller; viewers: the simulated viewers' processes)"
printf '%-9s %5s %9s %8s %8s %10s %10s %10s %9s %9s %9s %9s %6s %8s\n' mode N delivered p50ms p99ms worstV_p99 seller_p99 sellerWorst sellerCPU viewerCPU Mbit/s core/Gbps drops limit
run() {
  TMPDIR=$store DV_FANOUT="$1:$2:$secs" "$out/replicate.test" 2>>"$out/fanout.log" | tail -1 >"$out/fanout-$1-$2.json"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const f = (x, d) => Number(x).toFixed(d);
    console.log([r.mode.padEnd(9), String(r.viewers).padStart(5),
      (f(100 * r.delivered / r.expected, 2) + "%").padStart(9), f(r.P50, 1).padStart(8), f(r.P99, 1).padStart(8),
      f(r.worstViewerP99, 1).padStart(10), f(r.SellerP99, 1).padStart(10), f(r.worstViewerSellerP99, 1).padStart(10),
      f(r.sellerCPU, 3).padStart(9), f(r.viewerProcCPU, 2).padStart(9),
      f(r.sellerMbps, 0).padStart(9), f(r.coresPerGbps, 2).padStart(9), String(r.drops).padStart(6), r.limit.padStart(8)].join(" "));
    process.exit(r.delivered === r.expected && r.worstViewerP99 <= 100 ? 0 : 3)' "$out/fanout-$1-$2.json"
}
largest=0
for n in ${FANOUT_COUNTS:-100 200 400 600 800}; do
  run baseline "$n" || true
  ok=0; run ours "$n" || ok=$?
  node -e '
    const [b, o] = process.argv.slice(1).map(p => JSON.parse(require("fs").readFileSync(p, "utf8")));
    const cpu = o.coresPerGbps / b.coresPerGbps;
    console.log(`   ${o.viewers} viewers: seller CPU per Gbit/s ours/star ${cpu.toFixed(2)}x (goal <= 1.3x: ${cpu <= 1.3 ? "met" : "NOT met"}); worst viewer p99 ${o.worstViewerP99.toFixed(0)} ms (goal <= 100: ${o.worstViewerP99 <= 100 ? "met" : "NOT met, limit: " + o.limit}); load ${require("fs").readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`)' \
    "$out/fanout-baseline-$n.json" "$out/fanout-ours-$n.json" || true
  if [ "$ok" = 0 ]; then largest=$n; else break; fi
done
echo "largest viewer count with every viewer's p99 <= 100 ms (ours): $largest"
