package replicate

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// failingThenGate fails its first fails checks, then lets everyone in for an hour of its
// clock.
type failingThenGate struct {
	FreeGate
	now    func() time.Time
	fails  int32
	checks atomic.Int32
}

func (g *failingThenGate) Check(context.Context, peer.ID) (Allowance, error) {
	if g.checks.Add(1) <= g.fails {
		return Allowance{}, errors.New("wallet busy")
	}
	return Allowance{Until: g.now().Add(time.Hour)}, nil
}

// A gate that fails once is asked again: the viewer gets in on the same session, without
// reconnecting (the refusal said the seller would try again).
func TestGateErrorIsRetried(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 3, 100)
	sn := newNode(t, nil)
	g := &failingThenGate{now: time.Now, fails: 1}
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, Gate: g, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	if a := r.waitAccess(t, wire.Refused); a.Reason != reasonGateError {
		t.Fatalf("refusal %+v", a)
	}
	r.waitAccess(t, wire.Allowed)
	waitFor(t, 20*time.Second, "the blocks", func() bool { return r.feed.Has(2) })
	if n := r.viewer.nsess.Load(); n != 1 {
		t.Fatalf("the viewer got in after %d sessions, want the first", n)
	}
}

// The retries after gate errors back off on the seller's clock: 1 s, then 2 s, ..., and an
// answer ends them.
func TestGateErrorRetriesBackOff(t *testing.T) {
	clock := newFakeClock()
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 3, 100)
	sn := newNode(t, nil)
	g := &failingThenGate{now: clock.Now, fails: 3}
	startSeller(t, sn, sf, g, clock)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	checks := func(want int32) {
		t.Helper()
		waitFor(t, 20*time.Second, "the gate check", func() bool { return g.checks.Load() >= want })
		if n := g.checks.Load(); n != want {
			t.Fatalf("%d gate checks, want %d", n, want)
		}
	}
	// Each refusal is sent after the session set its retry timer.
	r.waitAccess(t, wire.Refused)
	checks(1)
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		clock.Advance(wait - time.Millisecond)
		time.Sleep(700 * time.Millisecond) // past the per-peer spacing of checks: none due yet
		checks(int32(i + 1))
		clock.Advance(time.Millisecond)
		if i < 2 {
			r.waitAccess(t, wire.Refused)
		}
		checks(int32(i + 2))
	}
	r.waitAccess(t, wire.Allowed)
	// Answered: no retry is pending.
	clock.Advance(gateRetryMax)
	time.Sleep(700 * time.Millisecond)
	checks(4)
}
