#!/usr/bin/env bash
# media: VP8 encode and decode per quality preset, and capture -> decoded-picture latency at
# 640x480, each next to mediadevices v0.9.4's own VP8 encoder/decoder measured in this same
# run (go test -bench ./media/internal/mediabench). Raw output: bench-out/media.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench-out
n=300
[ -n "${BENCH_QUICK:-}" ] && n=100
echo "== media (go test -bench 'Encode|Decode' -benchtime ${n}x, 'Latency' -benchtime 1x: ./media/internal/mediabench)"
out=bench-out/media.txt
go test -run '^$' -bench 'Encode|Decode' -benchtime "${n}x" ./media/internal/mediabench > "$out"
go test -run '^$' -bench 'Latency' -benchtime 1x ./media/internal/mediabench >> "$out"
awk '
function metric(line, unit,   i, f) {
  n = split(line, f, /[ \t]+/)
  for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
  return ""
}
/^Benchmark(Encode|Decode)\// {
  split($1, p, "/"); kind = p[1]; sub(/^Benchmark/, "", kind); preset = p[2]; impl = p[3]; sub(/-[0-9]+$/, "", impl)
  rt[kind, preset, impl] = metric($0, "x-realtime"); fps[kind, preset, impl] = metric($0, "frames/s")
  presets[preset] = 1
}
/^BenchmarkLatency\// {
  split($1, p, "/"); impl = p[3]; sub(/-[0-9]+$/, "", impl)
  p50[impl] = metric($0, "p50-ms"); p99[impl] = metric($0, "p99-ms"); mx[impl] = metric($0, "max-ms")
}
END {
  order[1] = "low"; order[2] = "medium"; order[3] = "high"
  goal["low"] = "-"; goal["medium"] = ">= 6x (640x480)"; goal["high"] = ">= 3x (1280x720)"
  printf "%-28s %14s %14s %10s  %s\n", "encode (x real time)", "ours", "mediadevices", "ratio", "goal"
  for (i = 1; i <= 3; i++) { s = order[i]
    printf "%-28s %13.1fx %13.1fx %9.1fx  %s\n", s " (" fps["Encode", s, "ours"] " fps)", rt["Encode", s, "ours"], rt["Encode", s, "mediadevices"], rt["Encode", s, "ours"] / rt["Encode", s, "mediadevices"], goal[s] }
  printf "%-28s %14s %14s %10s\n", "decode (x real time)", "ours->RGBA", "mediadevices", "ratio"
  for (i = 1; i <= 3; i++) { s = order[i]
    printf "%-28s %13.1fx %13.1fx %9.2fx  (ours to 4:2:0: %.1fx)\n", s, rt["Decode", s, "ours-rgba"], rt["Decode", s, "mediadevices"], rt["Decode", s, "ours-rgba"] / rt["Decode", s, "mediadevices"], rt["Decode", s, "ours-yuv"] }
  printf "%-28s %14s %14s %10s  %s\n", "capture->decoded 640x480", "ours", "mediadevices", "ratio", "goal"
  printf "%-28s %12.1fms %12.1fms %9.2fx  %s\n", "  p50", p50["ours"], p50["mediadevices"], p50["mediadevices"] / p50["ours"], "<= 15 ms"
  printf "%-28s %12.1fms %12.1fms %9.2fx  %s\n", "  p99", p99["ours"], p99["mediadevices"], p99["mediadevices"] / p99["ours"], "<= 40 ms"
  printf "%-28s %12.1fms %12.1fms\n", "  max", mx["ours"], mx["mediadevices"]
}' "$out"
