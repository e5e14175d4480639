#!/usr/bin/env bash
# app: the product's figures (issue 10, "## Figures"), each next to its goal.
#  - glass-to-glass per preset: the built binary's `live` (test camera) as the broadcaster
#    process, an app/session Viewer in the benchmark process, loopback; capture time (PTS + the
#    header's Start) -> picture decoded after verification. Next to it, in the same run and
#    interleaved preset by preset, tools/webrtcref: pion/webrtc v4 + mediadevices' VP8 encoder
#    at the same size, rate and bit rate, two PeerConnections on loopback, frames assembled on
#    the RTP marker bit; and the same WebRTC path with our encoder (what the transport alone
#    costs).
#  - CPU of both processes at each preset (CPU time / wall time, % of one core).
#  - time to first frame: card pasted -> first decoded picture (new viewer each time).
#  - payment settled at the seller's LND -> video flowing again (btcd + two LND nodes).
# Raw output: bench-out/app.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench-out
frames=600 joins=20 pays=15
[ -n "${BENCH_QUICK:-}" ] && frames=150 joins=5 pays=4
out=bench-out/app.txt
: > "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== app (./app/e2e BenchmarkGlassToGlass -benchtime ${frames}x, FirstFrame ${joins}x, PaidResume ${pays}x; tools/webrtcref -frames $frames)"
go build -o "$tmp/webrtcref" ./tools/webrtcref
go test -c -o "$tmp/e2e.test" ./app/e2e
# The e2e test binary builds the app from its package directory, as go test runs it.
e2e() { (cd app/e2e && "$tmp/e2e.test" -test.run '^$' -test.timeout 30m "$@"); }
for p in low:640x360 medium:640x480 high:1280x720; do
  preset=${p%%:*} size=${p#*:}
  e2e -test.bench "GlassToGlass/$size/$preset\$" -test.benchtime "${frames}x" >> "$out"
  "$tmp/webrtcref" -preset "$preset" -frames "$frames" -encoder mediadevices >> "$out"
  "$tmp/webrtcref" -preset "$preset" -frames "$frames" -encoder ours >> "$out"
done
e2e -test.bench 'FirstFrame$' -test.benchtime "${joins}x" >> "$out"
scripts/tools.sh >&2 # btcd and lnd for the payment figure (built once, cached)
e2e -test.bench 'PaidResume$' -test.benchtime "${pays}x" >> "$out"
awk '
function metric(line, unit,   i, f, n) {
  n = split(line, f, /[ \t]+/)
  for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
  return ""
}
function met(v, goal) { return (v != "" && v + 0 <= goal) ? "met" : "MISSED" }
/^BenchmarkGlassToGlass\// {
  split($1, p, "/"); s = p[2]
  g50[s] = metric($0, "p50-ms"); g90[s] = metric($0, "p90-ms"); g99[s] = metric($0, "p99-ms"); gmax[s] = metric($0, "max-ms")
  gfps[s] = metric($0, "decoded-fps"); bcpu[s] = metric($0, "bcast-cpu-%"); vcpu[s] = metric($0, "viewer-cpu-%")
  bq[s] = metric($0, "bcast-runq-ms/s"); vq[s] = metric($0, "viewer-runq-ms/s")
  a50[s] = metric($0, "to-verified-p50-ms"); a99[s] = metric($0, "to-verified-p99-ms")
  d50[s] = metric($0, "verified-to-decoded-p50-ms"); d99[s] = metric($0, "verified-to-decoded-p99-ms"); ooo[s] = metric($0, "out-of-order-pictures")
}
/^BenchmarkWebRTCRef\// {
  split($1, p, "/"); s = p[2]; e = p[4]
  r50[s, e] = metric($0, "p50-ms"); r99[s, e] = metric($0, "p99-ms"); rfps[s, e] = metric($0, "decoded-fps"); rcpu[s, e] = metric($0, "cpu-%"); rq[s, e] = metric($0, "runq-ms/s")
}
/^BenchmarkFirstFrame/ { f50 = metric($0, "p50-ms"); f90 = metric($0, "p90-ms"); fmax = metric($0, "max-ms"); fstart = metric($0, "start-p50-ms") }
/^BenchmarkPaidResume/ { p50 = metric($0, "p50-ms"); p99 = metric($0, "p99-ms"); pmax = metric($0, "max-ms"); pp50 = metric($0, "from-pay-p50-ms"); pp99 = metric($0, "from-pay-p99-ms") }
END {
  n = split("640x360 640x480 1280x720", sizes, " ")
  split("low medium high", names, " ")
  printf "%-34s %9s %9s %9s %9s %7s %11s %11s  %s\n", "glass-to-glass (ms)", "p50", "p90", "p99", "max", "fps", "webrtc p50", "ours/webrtc", "goal"
  for (i = 1; i <= n; i++) { s = sizes[i]
    ratio = (r50[s, "mediadevices"] > 0) ? g50[s] / r50[s, "mediadevices"] : 0
    goal = ""
    if (s == "640x480") goal = sprintf("p50 <= 10: %s, p99 <= 30: %s, <= 0.5x: %s", met(g50[s], 10), met(g99[s], 30), met(ratio, 0.5))
    if (s == "1280x720") goal = sprintf("p50 <= 20: %s, <= 0.5x: %s", met(g50[s], 20), met(ratio, 0.5))
    printf "%-34s %9.1f %9.1f %9.1f %9.1f %7.1f %11.1f %10.2fx  %s\n", s " " names[i], g50[s], g90[s], g99[s], gmax[s], gfps[s], r50[s, "mediadevices"], ratio, goal
    printf "%-34s %9.1f %9s %9.1f %9s  (broadcaster + network + verify; %d pictures out of order)\n", "  capture -> verified at viewer", a50[s], "", a99[s], "", ooo[s]
    printf "%-34s %9.1f %9s %9.1f %9s  (viewer: wake, read, decode)\n", "  verified -> decoded", d50[s], "", d99[s], ""
    printf "%-34s %9.1f %9s %9.1f %9s %7.1f %11s %11s  (WebRTC transport with our VP8 encoder)\n", "  webrtc + our encoder", r50[s, "ours"], "", r99[s, "ours"], "", rfps[s, "ours"], "", ""
    printf "%-34s %9.1f %9s %9.1f %9s %7.1f\n", "  webrtc + mediadevices (reference)", r50[s, "mediadevices"], "", r99[s, "mediadevices"], "", rfps[s, "mediadevices"]
  }
  printf "%-34s %12s %12s %18s %18s\n", "CPU (% of one core)", "broadcaster", "viewer", "webrtc ref (both)", "webrtc ours (both)"
  for (i = 1; i <= n; i++) { s = sizes[i]
    printf "%-34s %11.0f%% %11.0f%% %17.0f%% %17.0f%%\n", s " " names[i], bcpu[s], vcpu[s], rcpu[s, "mediadevices"], rcpu[s, "ours"] }
  printf "%-34s %12s %12s %18s %18s\n", "waiting for a CPU (ms per s)", "broadcaster", "viewer", "webrtc ref (both)", "webrtc ours (both)"
  for (i = 1; i <= n; i++) { s = sizes[i]
    printf "%-34s %12.0f %12.0f %18.0f %18.0f\n", s " " names[i], bq[s], vq[s], rq[s, "mediadevices"], rq[s, "ours"] }
  printf "%-34s %9.1f ms p50, %.1f p90, %.1f max (viewer started: %.1f ms)  goal p50 <= 300: %s\n", "time to first frame", f50, f90, fmax, fstart, met(f50, 300)
  printf "%-34s %9.1f ms p50, %.1f p99, %.1f max  goal p50 <= 100: %s, p99 <= 1000: %s\n", "payment settled -> video again", p50, p99, pmax, met(p50, 100), met(p99, 1000)
  printf "%-34s %9.1f ms p50, %.1f p99\n", "  (from the payment being sent)", pp50, pp99
}' "$out"
