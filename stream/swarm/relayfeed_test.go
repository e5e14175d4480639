package swarm

import (
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// A relay's reader can hold a signed length before its newest block (an upgrade that reached
// past the block it came with); that head is passed on only once the block is held, so the
// relay never pushes a block it lacks. Every viewer the relay serves (a subscriber each) gets
// it then, not only one of them.
func TestRelayFeedHoldsHeadsUntilTheNewestBlockIsHeld(t *testing.T) {
	checkLeaks(t)
	w := newWriter(t, 2)
	r := newReader(t, w.Key())
	rf := newRelayFeed(r)
	const viewers = 4
	var subs [viewers]<-chan feed.Head
	for i := range subs {
		heads, cancel := rf.Subscribe()
		defer cancel()
		subs[i] = heads
	}
	p, err := w.Proof(feed.Request{Block: &feed.BlockRequest{Index: 0}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(p); err != nil {
		t.Fatal(err)
	}
	if r.Length() != 2 || r.Has(1) {
		t.Fatalf("the reader holds length %d, block 1: %v; want the signed length without the block", r.Length(), r.Has(1))
	}
	rf.arrived()
	// Block 0's arrival wakes the feed, which must still hold the head back.
	time.Sleep(300 * time.Millisecond)
	for i, heads := range subs {
		select {
		case h := <-heads:
			t.Fatalf("viewer %d: head %d passed on without its newest block", i, h.Length)
		default:
		}
	}
	p, err = w.Proof(feed.Request{Block: &feed.BlockRequest{Index: 1, Nodes: flattree.LevelsToRoot(1, 2)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(p); err != nil {
		t.Fatal(err)
	}
	rf.arrived()
	for i, heads := range subs {
		select {
		case h := <-heads:
			if h.Length != 2 {
				t.Fatalf("viewer %d: head %d, want 2", i, h.Length)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("viewer %d: the head was not passed on once block 1 was held", i)
		}
	}
}
