#!/usr/bin/env bash
# ui: the desktop window's figures (issue 11, "## Figures"), under Xvfb, each next to its goal
# and, where the goal is a time, next to a reference measured in the same run.
#  - start-up: process start -> first window drawn, the app's Home against a bare Fyne window
#    (app/ui/testdata/barefyne), interleaved start by start (BenchmarkStartup).
# Raw output: bench-out/ui.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench-out
rounds=9
[ -n "${BENCH_QUICK:-}" ] && rounds=5
out=bench-out/ui.txt
: > "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== ui (./app/ui BenchmarkStartup, $rounds rounds)"
go test -c -o "$tmp/ui.test" ./app/ui
# The test binary builds the app and the reference from its package directory, as go test runs it.
ui() { (cd app/ui && "$tmp/ui.test" -test.run '^$' -test.timeout 30m -test.benchtime 1x "$@"); }
DV_UI_STARTUP_ROUNDS=$rounds ui -test.bench 'Startup$' >> "$out"
awk '
function metric(line, unit,   i, f, n) {
  n = split(line, f, /[ \t]+/)
  for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
  return ""
}
function met(v, goal) { return (v != "" && v + 0 <= goal) ? "met" : "MISSED" }
/^BenchmarkStartup/ { s50 = metric($0, "p50-ms"); s90 = metric($0, "p90-ms"); b50 = metric($0, "bare-p50-ms"); b90 = metric($0, "bare-p90-ms"); sr = metric($0, "app/bare"); sn = metric($0, "rounds") }
END {
  printf "%-34s %9s %9s %13s %13s %9s  %s\n", "start-up (ms)", "p50", "p90", "bare Fyne p50", "bare Fyne p90", "app/bare", "goal"
  printf "%-34s %9.0f %9.0f %13.0f %13.0f %8.2fx  p50 <= 500: %s (%d starts each, interleaved)\n", "process start -> window drawn", s50, s90, b50, b90, sr, met(s50, 500), sn
}' "$out"
