package replicate

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestCatchUpThenLive(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 1000, 1024)
	sn := newNode(t, nil)
	seller := startSeller(t, sn, sf, nil, nil)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	r.waitAccess(t, wire.Free)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.viewer.Fetch(ctx, 0, 1000); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 1000; i++ {
		got, err := r.feed.Get(i)
		if err != nil || !bytes.Equal(got, block(i, 1024)) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	// Live: each append reaches the viewer, verified, with no request.
	for i := 1000; i < 1050; i++ {
		appendBlocks(t, sf, i, 1, 1024)
		waitFor(t, 10*time.Second, "live block", func() bool { return r.feed.Has(uint64(i)) })
	}
	if st := seller.Stats(r.node.ID()); st.Blocks != 1050 {
		t.Fatalf("seller sent %d blocks, want 1050 (nothing twice)", st.Blocks)
	}
}

func TestLateJoinGetsSyncPointAndNewest(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 0, 0)
	// 20 "groups of pictures" of 50 blocks, each starting with a sync point.
	for g := 0; g < 20; g++ {
		var bs [][]byte
		for j := 0; j < 50; j++ {
			bs = append(bs, block(uint64(g*50+j), 512))
		}
		if _, err := sf.AppendSync(bs...); err != nil {
			t.Fatal(err)
		}
	}
	h := sf.Head()
	if !h.HasSyncPoint || h.SyncPoint != 950 {
		t.Fatalf("head %+v", h)
	}
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	waitFor(t, 20*time.Second, "sync point and newest block", func() bool { return r.feed.Has(950) && r.feed.Has(999) })
	time.Sleep(100 * time.Millisecond)
	if n := r.feed.Stored(); n != 2 {
		t.Fatalf("late joiner stored %d blocks, want 2 (sync point and newest)", n)
	}
	// Rewind: the blocks from the sync point on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.viewer.Fetch(ctx, 950, 1000); err != nil {
		t.Fatal(err)
	}
	if n := r.feed.Stored(); n != 50 {
		t.Fatalf("stored %d blocks after rewinding to the sync point, want 50", n)
	}
	// Each new signed length comes with the newest sync point.
	var bs [][]byte
	for j := 0; j < 50; j++ {
		bs = append(bs, block(uint64(1000+j), 512))
	}
	if _, err := sf.AppendSync(bs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "status with the new sync point", func() bool {
		st := r.viewerStatus()
		return st.Length == 1050 && st.Flags&wire.StatusHasSyncPoint != 0 && st.SyncPoint == 1000
	})
}

// A live viewer that holds nothing joins a young feed (shorter than MaxLiveLag) whose newest
// sync point is past block 0: it starts there like a late joiner, not with every block from 0
// (a paid viewer joining in a stream's first seconds was billed for those: TestPaidLightningStream
// failed when the payment landed after the second key frame).
func TestYoungFeedJoinStartsAtSyncPoint(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 0, 0)
	for g := 0; g < 2; g++ { // two groups of 30 blocks: sync points 0 and 30, length 60 < 90
		var bs [][]byte
		for j := 0; j < 30; j++ {
			bs = append(bs, block(uint64(g*30+j), 512))
		}
		if _, err := sf.AppendSync(bs...); err != nil {
			t.Fatal(err)
		}
	}
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	waitFor(t, 20*time.Second, "sync point and newest block", func() bool { return r.feed.Has(30) && r.feed.Has(59) })
	// Live blocks follow from the new length on.
	appendBlocks(t, sf, 60, 1, 512)
	waitFor(t, 10*time.Second, "the next live block", func() bool { return r.feed.Has(60) })
	for i := uint64(0); i < 30; i++ {
		if r.feed.Has(i) {
			t.Fatalf("the viewer was sent block %d, before the sync point it starts at", i)
		}
	}
	if n := r.feed.Stored(); n != 3 {
		t.Fatalf("a fresh viewer of a young feed stored %d blocks, want 3 (sync point, newest, next)", n)
	}
}

func TestAppMessages(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 1, 16)
	sn := newNode(t, nil)
	got := make(chan string, 1)
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, Gate: newTestGate(),
		OnApp: func(from peer.ID, msg []byte) { got <- from.String() + ":" + string(msg) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), false)
	a := r.waitAccess(t, wire.Refused) // unpaid: app messages still flow
	if a.Reason == "" {
		t.Fatal("refusal without a reason")
	}
	if err := r.viewer.Send([]byte("invoice please")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != r.node.ID().String()+":invoice please" {
			t.Fatalf("seller got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("app message did not arrive")
	}
	if err := s.Send(r.node.ID(), []byte("lnbc1...")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-r.apps:
		if string(m) != "lnbc1..." {
			t.Fatalf("viewer got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("app message did not reach the viewer")
	}
	if err := r.viewer.Send(make([]byte, wire.MaxApp+1)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized app message: %v", err)
	}
}

// Several live viewers at once, appends in bursts: every viewer gets every block, verified,
// and proofs shared between viewers (the seller's cache) verify for each.
func TestManyLiveViewers(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 20, 700)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	var rigs []*viewerRig
	for i := 0; i < 6; i++ {
		r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
		rigs = append(rigs, r)
	}
	for _, r := range rigs {
		waitFor(t, 20*time.Second, "viewers at the edge", func() bool { return r.feed.Length() == 20 })
	}
	n := 20
	for burst := 1; burst <= 12; burst++ {
		var bs [][]byte
		for j := 0; j < burst%5+1; j++ {
			bs = append(bs, block(uint64(n), 700+burst*10))
			n++
		}
		var err error
		if burst%4 == 0 {
			_, err = sf.AppendSync(bs...)
		} else {
			_, err = sf.Append(bs...)
		}
		if err != nil {
			t.Fatal(err)
		}
		if burst%3 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, r := range rigs {
		waitFor(t, 20*time.Second, "every live block", func() bool {
			for i := uint64(20); i < uint64(n); i++ {
				if !r.feed.Has(i) {
					return false
				}
			}
			return true
		})
		for i := uint64(20); i < uint64(n); i++ {
			got, err := r.feed.Get(i)
			if err != nil || len(got) < 4 || got[0] != byte(i) {
				t.Fatalf("block %d: %v", i, err)
			}
		}
	}
}

// A viewer that falls far behind skips ahead to the newest sync point instead of receiving
// the backlog (the send queue's overflow policy).
func TestSlowViewerSkipsAhead(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 100)
	sn := newNode(t, nil)
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, MaxLiveLag: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	waitFor(t, 20*time.Second, "viewer at the edge", func() bool { return r.feed.Length() == 10 })
	// 40 blocks in one batch: far more than MaxLiveLag behind at once.
	var bs [][]byte
	for i := 10; i < 30; i++ {
		bs = append(bs, block(uint64(i), 100))
	}
	if _, err := sf.Append(bs...); err != nil {
		t.Fatal(err)
	}
	bs = bs[:0]
	for i := 30; i < 50; i++ {
		bs = append(bs, block(uint64(i), 100))
	}
	if _, err := sf.AppendSync(bs...); err != nil { // sync point 30
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "newest block", func() bool { return r.feed.Has(49) && r.feed.Length() == 50 })
	if !r.feed.Has(30) {
		t.Fatal("skip-ahead did not bring the newest sync point")
	}
	time.Sleep(100 * time.Millisecond)
	if r.feed.Has(15) || r.feed.Has(40) {
		t.Fatal("a viewer far behind was sent the backlog")
	}
}
