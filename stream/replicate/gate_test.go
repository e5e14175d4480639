package replicate

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Gate flips driven by a fake clock: refused, paid, the deadline passing (blocks stop even
// before the deadline's timer fires), told so, topped up on the same connection.
func TestGateFlips(t *testing.T) {
	clock := newFakeClock()
	gate := newTestGate()
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 2048)
	sn := newNode(t, nil)
	seller := startSeller(t, sn, sf, gate, clock)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	vid := r.node.ID()

	a := r.waitAccess(t, wire.Refused)
	if !strings.Contains(a.Reason, "pay") {
		t.Fatalf("refusal reason %q does not say what to do", a.Reason)
	}
	appendBlocks(t, sf, 10, 5, 2048)
	time.Sleep(300 * time.Millisecond)
	if st := seller.Stats(vid); st.Blocks != 0 || st.Proofs != 0 || r.feed.Stored() != 0 {
		t.Fatalf("unpaid viewer got data: %+v, stored %d", st, r.feed.Stored())
	}

	// Payment arrives: the app tells the seller, which asks the gate at once.
	gate.set(vid, Allowance{Until: clock.Now().Add(time.Minute)})
	t0 := time.Now()
	seller.Recheck(vid)
	a = r.waitAccess(t, wire.Allowed)
	if a.RemainingMs != 60000 {
		t.Fatalf("time left %d ms, want 60000", a.RemainingMs)
	}
	waitFor(t, 10*time.Second, "newest block after payment", func() bool { return r.feed.Has(14) })
	resume := time.Since(t0)
	appendBlocks(t, sf, 15, 1, 2048)
	waitFor(t, 10*time.Second, "live block", func() bool { return r.feed.Has(15) })
	// The seller counts a block once its write returned, which may be just after the viewer
	// has it.
	waitFor(t, 5*time.Second, "block 15 counted", func() bool { return seller.Stats(vid).Blocks == 16 })

	// The deadline passes; the timer has not fired yet. Nothing more leaves the seller.
	before := seller.Stats(vid)
	clock.Set(61 * time.Second)
	appendBlocks(t, sf, 16, 3, 2048)
	time.Sleep(300 * time.Millisecond)
	if st := seller.Stats(vid); st.Blocks != before.Blocks || st.Proofs != before.Proofs || r.feed.Has(16) {
		t.Fatalf("blocks sent after the deadline: before %+v after %+v", before, st)
	}
	// The timer fires: the viewer is told why, in plain words.
	t1 := time.Now()
	clock.Advance(0)
	a = r.waitAccess(t, wire.Refused)
	stop := time.Since(t1)
	if !strings.Contains(a.Reason, "run out") {
		t.Fatalf("expiry reason %q", a.Reason)
	}

	// Top-up: the same connection resumes.
	gate.set(vid, Allowance{Until: clock.Now().Add(time.Hour)})
	t2 := time.Now()
	seller.Recheck(vid)
	r.waitAccess(t, wire.Allowed)
	waitFor(t, 10*time.Second, "blocks after top-up", func() bool { return r.feed.Has(16) && r.feed.Has(18) })
	resume2 := time.Since(t2)
	if n := r.viewer.nsess.Load(); n != 1 {
		t.Fatalf("viewer made %d sessions; the connection should have stayed open", n)
	}
	// Billing sees exactly what was delivered (the seller counts a block once its write
	// returned, which may be just after the viewer has it).
	waitFor(t, 5*time.Second, "blocks 16 to 18 counted", func() bool { return len(gate.deliveredTo(vid)) >= 19 })
	got := gate.deliveredTo(vid)
	slices.Sort(got)
	want := []uint64{}
	for i := uint64(10); i < 19; i++ {
		want = append(want, i)
	}
	// The live catch-up after payment sends from the viewer's length 0 on: blocks 0..9 too.
	want = append([]uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, want...)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	t.Logf("resume after payment %v, stop after deadline timer %v, resume after top-up %v", resume, stop, resume2)
	for _, d := range []time.Duration{resume, stop, resume2} {
		if d > time.Second {
			t.Errorf("a gate flip took %v; stop and resume must each take under 1 s", d)
		}
	}
}

// A gate that errors refuses, telling the viewer in plain words that its payment could not
// be checked; the error's own text (about the seller's wallet) stays on the seller.
func TestGateErrorRefusesWithoutLeakingIt(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 3, 100)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, errGate{}, nil)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	a := r.waitAccess(t, wire.Refused)
	if strings.Contains(a.Reason, "wallet offline") || !strings.Contains(a.Reason, "could not check your payment") {
		t.Fatalf("reason %q", a.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.viewer.Fetch(ctx, 0, 3); err == nil || r.feed.Stored() != 0 {
		t.Fatalf("refused viewer fetched: %v, stored %d", err, r.feed.Stored())
	}
}

type errGate struct{ FreeGate }

func (errGate) Check(context.Context, peer.ID) (Allowance, error) {
	return Allowance{}, errors.New("wallet offline")
}
