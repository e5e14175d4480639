#!/usr/bin/env bash
# wallet: the ledger for 1 000 concurrent viewers, one billed block (Consume, 300 viewers), btcd mempool → provisional credit (websocket
# and poller), LND settled → credit, on real btcd and LND nodes. The in-run reference is the
# disk's fsync floor (one small synced append), measured in the same run; latency goals are
# printed next to the figures. Raw output: bench-out/wallet.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/tools.d/btcd.sh
bash scripts/tools.d/lnd.sh
n_chain=100 n_ln=50
[ -n "${BENCH_QUICK:-}" ] && n_chain=30 n_ln=15
echo "== wallet (go test -bench: ./wallet/ledger, ./wallet/invoice; real btcd $(basename "$(ls -d "${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}"/btcd-* | head -1)"), real LND)"
out=bench-out/wallet.txt
{
  go test -run '^$' -bench 'FsyncFloor|Credit$|Ledger1000Viewers|Consume' -benchtime 2s ./wallet/ledger
  go test -run '^$' -bench 'MempoolToCredit' -benchtime ${n_chain}x ./wallet/invoice
  go test -run '^$' -bench 'LightningSettleToCredit' -benchtime ${n_ln}x ./wallet/invoice
} 2>&1 | grep -E '^(Benchmark|ok|FAIL|---)' > "$out"
awk '
/^BenchmarkFsyncFloor/ { floor = $3 }
/^BenchmarkCredit/ { credit = $3 }
/^BenchmarkLedger1000Viewers/ { l1000 = $3 }
/^BenchmarkConsume[-\t ]/ { consume = $3 }
/^BenchmarkConsumeParallel/ { consumep = $3 }
/^BenchmarkMempoolToCredit\/websocket/ { for (i = 1; i < NF; i++) { if ($(i+1) == "accept_to_credit_p50_ms") ws50 = $i; if ($(i+1) == "accept_to_credit_p99_ms") ws99 = $i } }
/^BenchmarkMempoolToCredit\/poller/ { for (i = 1; i < NF; i++) { if ($(i+1) == "accept_to_credit_p50_ms") po50 = $i; if ($(i+1) == "accept_to_credit_p99_ms") po99 = $i } }
/^BenchmarkLightningSettleToCredit/ { for (i = 1; i < NF; i++) { if ($(i+1) == "settled_to_credit_p50_ms") ln50 = $i; if ($(i+1) == "settled_to_credit_p99_ms") ln99 = $i; if ($(i+1) == "pay_to_credit_p50_ms") pay50 = $i; if ($(i+1) == "pay_to_credit_p99_ms") pay99 = $i } }
/^FAIL/ { failed = 1 }
END {
  if (failed) { print "wallet benchmarks FAILED: see bench-out/wallet.txt"; exit 1 }
  f = floor / 1e6
  printf "%-52s %12s %12s %s\n", "figure", "p50 / cost", "p99", "vs reference (fsync floor " sprintf("%.2f", f) " ms) or goal"
  printf "%-52s %9.2f ms %12s %s\n", "one durable credit", credit / 1e6, "", sprintf("%.1fx floor", credit / floor)
  printf "%-52s %9.2f ms %12s %s\n", "ledger, 1 000 viewers, one second of activity", l1000 / 1e6, "", sprintf("%.1fx floor; %.2f%% of one core-second", l1000 / floor, l1000 / 1e7)
  printf "%-52s %9.0f ns %12s %s\n", "one billed block (Consume, 300 viewers)", consume, "", sprintf("%.0f ns from 2 goroutines; 300 viewers x 30 blocks/s = %.2f%% of a core", consumep, consume * 9000 / 1e7)
  printf "%-52s %9.2f ms %9.2f ms %s\n", "btcd mempool accept -> provisional credit (websocket)", ws50, ws99, sprintf("p99 %.3fx the 1 s goal; p50 %.1fx floor", ws99 / 1000, ws50 / f)
  printf "%-52s %9.2f ms %9.2f ms %s\n", "btcd mempool accept -> provisional credit (poller 100ms)", po50, po99, sprintf("p99 %.3fx the 1 s goal", po99 / 1000)
  printf "%-52s %9.2f ms %9.2f ms %s\n", "LND settled -> ledger credit", ln50, ln99, sprintf("p50 %.1fx floor", ln50 / f)
  printf "%-52s %9.2f ms %9.2f ms %s\n", "viewer starts LN payment -> ledger credit", pay50, pay99, ""
}' "$out"
