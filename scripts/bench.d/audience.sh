#!/usr/bin/env bash
# The audience ceiling (issue 13): a free stream of 1.07 Mbit/s (the scale anchor's workload,
# 30 blocks/s) from a seller whose uplink is shaped with tc to 20 Mbit/s, viewers in network
# namespaces (50 to a process), relaying viewers (stream/swarm) next to go-libp2p-pubsub's
# GossipSub with default settings in the same run through the same shaping. Needs root and
# iproute2. See BENCHMARKS.md, "Audience ceiling".
#
#   AUDIENCE_SECONDS=20              length of each run (appending)
#   AUDIENCE_RELAY="50 100 200 400"  relay-mode viewer counts
#   AUDIENCE_GOSSIP="50 100 200 400" GossipSub viewer counts (stops after the first whose p99 passes 1 s)
#   AUDIENCE_UPLINK=20mbit           the seller's upload rate
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench-out
mkdir -p "$out"
secs=${AUDIENCE_SECONDS:-20}
relay=${AUDIENCE_RELAY:-50 100 200 400}
gossip=${AUDIENCE_GOSSIP:-50 100 200 400}
uplink=${AUDIENCE_UPLINK:-20mbit}
go test -c -o "$out/swarm.test" ./stream/swarm
echo
echo "## audience ceiling: seller uplink $uplink (tc tbf), 1.07 Mbit/s stream, ${secs} s a run, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$out/audience.json"
: >"$out/audience.log"
# The machine is shared: the two modes alternate at each count so that both meet the same load.
# Relay mode runs every count (a failure is a figure too); GossipSub stops after the first count
# whose p99 passed 1 s.
run() {
  DV_NETSIM_BENCH="$1:$2" DV_NETSIM_SECS="$secs" DV_NETSIM_PER_GROUP=50 DV_NETSIM_UPLINK="$uplink" \
    "$out/swarm.test" 2>>"$out/audience.log" | grep '^{' | tee -a "$out/audience.json"
}
gossip_done=0
for n in $(printf '%s\n' $relay $gossip | sort -n | uniq); do
  if grep -qw "$n" <<<"$relay"; then run relay "$n" >/dev/null || true; fi
  if [ $gossip_done = 0 ] && grep -qw "$n" <<<"$gossip"; then
    p99=$(run gossip "$n" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read() or "{\"p99\":-1}"); print(r["p99"])' || echo -1)
    python3 -c 'import sys; p=float(sys.argv[1]); sys.exit(0 if 0 <= p <= 1000 else 1)' "$p99" || gossip_done=1
  fi
done
python3 - "$out/audience.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'mode':7} {'N':>4} {'reached':>8} {'delivered':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'copies':>7} {'(proto)':>7} {'(have)':>6} {'depth':>5} {'viewers CPU':>11} {'others CPU':>10} {'set-up s':>8} {'load':>15}")
for r in rows:
    if r.get("err"):
        print(f"{r['mode']:7} {r['viewers']:>4}  failed: {r['err'][:100]}")
        continue
    print(f"{r['mode']:7} {r['viewers']:>4} {r['reached']:>8} {100*r['delivered']:>8.2f}% {r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} "
          f"{r['copies']:>7.2f} {r['protoCopies']:>7.2f} {r.get('auxCopies', 0):>6.2f} {r.get('maxDepth', 0):>5} {r['viewersCPU']:>11.2f} {r.get('othersCPU', 0):>10.2f} {r['setupSeconds']:>8.0f} {r['load']:>15}")
ceil = {}
for mode in ("relay", "gossip"):
    ok = [r["viewers"] for r in rows if r["mode"] == mode and not r.get("err") and 0 <= r["p99"] <= 1000 and r["delivered"] >= 0.99]
    bad = [r["viewers"] for r in rows if r["mode"] == mode and (r.get("err") or r["p99"] < 0 or r["p99"] > 1000 or r["delivered"] < 0.99)]
    ceil[mode] = max(ok, default=0)
    first_bad = min([n for n in bad if n > ceil[mode]], default=None)
    print(f"{mode}: largest N with p99 <= 1 s and >= 99 % delivered: {ceil[mode]}" + (f"; p99 passes 1 s (or delivery drops) by N={first_bad}" if first_bad else "; not passed in this sweep"))
if ceil.get("gossip"):
    print(f"relay ceiling / GossipSub ceiling: >= {ceil['relay'] / ceil['gossip']:.1f}x (goal 2x)")
elif ceil.get("relay"):
    print("GossipSub passed no count of this sweep: run smaller counts (AUDIENCE_GOSSIP) for a ratio")
PY
