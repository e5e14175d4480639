#!/usr/bin/env bash
# media: VP8 rate control per quality preset on a camera-like moving scene and on the test
# camera's noise block, 20 s each at synthetic capture times (go test -bench RateControl
# ./media/vp8). Goals: every 5 s window within +-15 % of the target on the scene, at most
# 1.5x on the noise. Raw output: bench-out/media-rate.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench-out
out=bench-out/media-rate.txt
echo "== media rate control (go test -bench RateControl -benchtime 1x ./media/vp8)"
go test -run '^$' -bench 'RateControl' -benchtime 1x ./media/vp8 > "$out"
awk '
function metric(line, unit,   i, f) {
  n = split(line, f, /[ \t]+/)
  for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
  return ""
}
BEGIN { printf "%-16s %9s %10s %9s %13s %8s  %s\n", "preset/source", "target", "kbit/s", "whole", "5 s windows", "dropped", "goal" }
/^BenchmarkRateControl\// {
  split($1, p, "/"); preset = p[2]; src = p[3]; sub(/-[0-9]+$/, "", src)
  target["low"] = 300; target["medium"] = 1200; target["high"] = 2500
  goal = (src == "scene") ? "5 s windows within 0.85..1.15x" : "5 s windows <= 1.5x"
  printf "%-16s %9s %10.0f %8.2fx %6.2f..%.2fx %8d  %s\n", preset "/" src, target[preset], metric($0, "kbit/s"), metric($0, "x-target"), metric($0, "x-min5s"), metric($0, "x-max5s"), metric($0, "dropped"), goal
}' "$out"
