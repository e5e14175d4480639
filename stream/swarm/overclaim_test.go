package swarm

import (
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// When a source replaced as slow is tried again, and whether its Have claims are disbelieved
// meanwhile: on evidence only (its own status contradicting its Have, or visits in a row that
// delivered nothing), never for one slow start, which under load an honest relay makes too.
func TestSlowRetryDisbelievesOnEvidenceOnly(t *testing.T) {
	const relay, seller = peer.ID("relay"), peer.ID("seller")
	const mine = 1000
	status := func(l uint64) *wire.Status { return &wire.Status{Length: l} }
	type visit struct {
		delivered bool
		status    *wire.Status // the source's own session's; nil: none came
		wait      time.Duration
		disbelief time.Duration // how long its claims are then ignored (0: believed)
	}
	for _, tc := range []struct {
		name   string
		source peer.ID
		claim  uint64 // its Have's length (0: no Have)
		visits []visit
	}{
		{"the seller is only retried", seller, mine + 500, []visit{{false, status(mine), slowRetry, 0}, {false, nil, slowRetry, 0}}},
		{"a claim within the lag is no fault", relay, mine + 10, []visit{{false, status(mine), slowRetry, 0}, {false, nil, slowRetry, 0}}},
		{"no Have, no claim", relay, 0, []visit{{false, nil, slowRetry, 0}, {false, nil, slowRetry, 0}}},
		{"its own status says it holds less: a lie", relay, mine + 500, []visit{{false, status(mine - 3), overclaimHold, overclaimHold}}},
		{"an honest slow start is only retried", relay, mine + 500, []visit{{false, status(mine + 400), slowRetry, 0}}},
		{"no session came up: only retried", relay, mine + 500, []visit{{false, nil, slowRetry, 0}}},
		{"nothing again and again: doubled", relay, mine + 500, []visit{
			{false, status(mine + 400), slowRetry, 0},
			{false, nil, 2 * slowRetry, 2 * slowRetry},
			{false, status(mine + 400), 4 * slowRetry, 4 * slowRetry},
			{false, nil, 8 * slowRetry, 8 * slowRetry},
			{false, nil, 16 * slowRetry, 16 * slowRetry},
			{false, nil, overclaimHold, overclaimHold},
			{false, nil, overclaimHold, overclaimHold},
		}},
		{"a day of strikes stays disbelieved", relay, mine + 500, func() []visit {
			v := []visit{{false, nil, slowRetry, 0}}
			for range 300 { // a strike every 5 minutes for a day, and more (the shift would overflow)
				v = append(v, visit{false, nil, overclaimHold, overclaimHold})
			}
			v[1], v[2], v[3], v[4] = visit{false, nil, 2 * slowRetry, 2 * slowRetry}, visit{false, nil, 4 * slowRetry, 4 * slowRetry},
				visit{false, nil, 8 * slowRetry, 8 * slowRetry}, visit{false, nil, 16 * slowRetry, 16 * slowRetry}
			return v
		}()},
		{"a delivery clears the strikes", relay, mine + 500, []visit{
			{false, nil, slowRetry, 0},
			{true, status(mine + 400), slowRetry, 0},
			{false, nil, slowRetry, 0},
			{false, nil, 2 * slowRetry, 2 * slowRetry},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hv := &haves{links: map[linkKey]*link{}}
			if tc.claim > 0 {
				hv.links[linkKey{tc.source, true}] = &link{got: true, have: haveEntry{Have: Have{Length: tc.claim, Relay: true}, at: time.Now()}}
			}
			s := &Swarm{cfg: Config{Seller: peer.AddrInfo{ID: seller}, SlowLag: defaultSlowLag}, log: quiet(), haves: hv,
				cands: map[peer.ID]*cand{tc.source: {info: peer.AddrInfo{ID: tc.source}}}}
			now := time.Unix(1_800_000_000, 0)
			for i, v := range tc.visits {
				u := &upstream{id: tc.source, delivered: v.delivered}
				if v.status != nil {
					u.status.Store(v.status)
				}
				if got := s.slowRetry(u, mine, now); got != v.wait {
					t.Errorf("visit %d: tried again after %v, want %v", i+1, got, v.wait)
				}
				disbelief := max(s.cands[tc.source].overclaimed.Sub(now), 0)
				if disbelief != v.disbelief {
					t.Errorf("visit %d: claims ignored for %v, want %v", i+1, disbelief, v.disbelief)
				}
				now = now.Add(overclaimHold + time.Minute) // each visit after the last hold
			}
		})
	}
}

// Time the swarm's loop did not run (its process descheduled or starved) does not count
// against the source: its judging clocks move forward by the gap beyond two steps.
func TestPausedTimeDoesNotCountAgainstTheSource(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name      string
		last, now time.Time
		want      time.Duration
	}{
		{"first step", time.Time{}, t0, 0},
		{"on time", t0, t0.Add(stepEvery), 0},
		{"two steps", t0, t0.Add(2 * stepEvery), 0},
		{"woken early", t0, t0.Add(stepEvery / 4), 0},
		{"paused 1 s", t0, t0.Add(time.Second + 2*stepEvery), time.Second},
	} {
		if got := pausedFor(tc.last, tc.now); got != tc.want {
			t.Errorf("%s: paused for %v, want %v", tc.name, got, tc.want)
		}
	}
	u := &upstream{started: t0, lastUp: t0.Add(time.Second), lastGrow: t0.Add(2 * time.Second)}
	u.discount(time.Second)
	if u.started != t0.Add(time.Second) || u.lastUp != t0.Add(2*time.Second) || u.lastGrow != t0.Add(3*time.Second) ||
		!u.slowSince.IsZero() || !u.orphaned.IsZero() {
		t.Fatalf("after a 1 s discount: %+v", u)
	}
}
