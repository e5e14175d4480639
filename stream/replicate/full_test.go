package replicate

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A seller bounded to two viewers serves two; the third gets Full's app message and reason
// and no block; once a served viewer leaves, the third gets in on its next try.
func TestSellerMaxViewers(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 8, 512)
	sn := newNode(t, nil)
	redirect := []byte{0xd6, 1, 0}
	var asked []peer.ID
	// A clock that stands still: the served viewers, idle once they hold the 8 blocks, never
	// become idle long enough to be made room for (TestFullSellerMakesRoom).
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, MaxViewers: 2, Logger: quietLogger(), Clock: clock.NewMock(),
		Full: func(p peer.ID) ([]byte, string) { asked = append(asked, p); return redirect, "full: go elsewhere" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	b := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	waitFor(t, 20*time.Second, "two viewers served", func() bool { return a.feed.Has(7) && b.feed.Has(7) })
	c := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	acc := c.waitAccess(t, wire.Refused)
	if acc.Reason != "full: go elsewhere" {
		t.Fatalf("reason %q", acc.Reason)
	}
	select {
	case m := <-c.apps:
		if !bytes.Equal(m, redirect) {
			t.Fatalf("app message %x, want the redirect", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no redirect")
	}
	if c.feed.Length() != 0 || c.feed.Has(0) {
		t.Fatal("a viewer past the bound got data")
	}
	if n := len(s.Viewers()); n != 2 {
		t.Fatalf("%d viewers served, want 2", n)
	}
	// A served viewer opening a new stream keeps its place (it replaces its own session).
	a.stop()
	waitFor(t, 20*time.Second, "the third viewer let in after one left", func() bool { return c.feed.Has(7) })
	if st := s.Stats(c.node.ID()); st.Blocks == 0 {
		t.Fatal("no blocks counted for the third viewer")
	}
}

// A full seller makes room for a newcomer by ending the session of a viewer that took no
// block for IdleEvict: two peers that open a session and take nothing (they ask for no range
// and follow nothing) no longer hold a free stream's few slots for as long as they like.
func TestFullSellerMakesRoom(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 8, 512)
	sn := newNode(t, nil)
	clk := clock.NewMock()
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, MaxViewers: 2, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for range 2 {
		dialRaw(t, newNode(t, nil), sn.AddrInfo()) // a session that asks for nothing
	}
	waitFor(t, 20*time.Second, "the two idle sessions", func() bool { return len(s.Viewers()) == 2 })
	c := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	c.waitAccess(t, wire.Refused) // full, and nobody idle for long yet
	if c.feed.Has(0) {
		t.Fatal("a viewer past the bound got data")
	}
	clk.Add(IdleEvict)
	waitFor(t, 20*time.Second, "the newcomer let in in an idle viewer's place", func() bool { return c.feed.Has(7) })
	waitFor(t, 20*time.Second, "the idle viewer's session gone", func() bool { return len(s.Viewers()) == 2 })
}

// A viewer that holds everything is not idle while the broadcaster appends nothing: with the
// stream paused for longer than IdleEvict a newcomer to a full seller is refused, and the
// caught-up viewer keeps its session. (Before, the newcomer evicted it; the evicted viewer came
// back as a newcomer and evicted the next caught-up viewer, and so on round all of them.)
func TestFullSellerKeepsCaughtUpViewerOfPausedStream(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 8, 512)
	sn := newNode(t, nil)
	clk := clock.NewMock()
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, MaxViewers: 1, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	waitFor(t, 20*time.Second, "the first viewer caught up", func() bool { return a.feed.Has(7) })
	clk.Add(IdleEvict + time.Minute) // the stream stays paused
	b := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	b.waitAccess(t, wire.Refused)
	if b.feed.Has(0) {
		t.Fatal("the newcomer got data")
	}
	if v := s.Viewers(); len(v) != 1 || v[0] != a.node.ID() {
		t.Fatalf("viewers %v, want only the caught-up one %s", v, a.node.ID())
	}
	if n := a.viewer.nsess.Load(); n != 1 {
		t.Fatalf("the caught-up viewer had %d sessions, want 1 (it was evicted)", n)
	}
	// It still follows the stream when it resumes.
	appendBlocks(t, sf, 8, 1, 512)
	waitFor(t, 20*time.Second, "the caught-up viewer to get the next block", func() bool { return a.feed.Has(8) })
}

// idleLocked, session by session: only a viewer with something to take that it did not take
// for IdleEvict is made room for.
func TestIdleMeansBehind(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 8, 512)
	clk := clock.NewMock()
	s := &Seller{cfg: SellerConfig{Feed: sf, Clock: clk}, log: quietLogger(),
		sessions: map[*sellerSession]struct{}{}, byPeer: map[peer.ID]map[*sellerSession]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	cases := []struct {
		name         string
		follow, free bool
		hint         *uint64
		newHead      bool // a new head waits for the session's send loop
		idle         bool
	}{
		{name: "follower that took the newest head", follow: true, free: true},
		{name: "follower with a new head it does not take", follow: true, free: true, newHead: true, idle: true},
		{name: "follower refused blocks", follow: true, idle: true},
		{name: "no status, asks for nothing", idle: true},
		{name: "not following, holds the head", free: true, hint: ptr(uint64(8))},
		{name: "not following, behind the head", free: true, hint: ptr(uint64(3)), idle: true},
		// Its paid time ran out while the broadcaster paused: it holds a place it cannot use.
		{name: "refused blocks, holds the head", hint: ptr(uint64(8)), idle: true},
	}
	for i, tc := range cases {
		ss := &sellerSession{s: s, peer: peer.ID(rune('a' + i)), live: make(chan struct{}, 1),
			follow: tc.follow, decided: true, allow: Allowance{Free: tc.free}}
		ss.ctx, ss.stop = context.WithCancel(s.ctx)
		if tc.hint != nil {
			ss.vlenHint, ss.hinted = *tc.hint, true
		}
		if tc.newHead {
			ss.wake()
		}
		ss.took.Store(clk.Now().UnixNano())
		s.mu.Lock()
		if got := s.idleLocked(ss, clk.Now().Add(IdleEvict-time.Millisecond).UnixNano()); got {
			t.Errorf("%s: idle before IdleEvict", tc.name)
		}
		if got := s.idleLocked(ss, clk.Now().Add(IdleEvict).UnixNano()); got != tc.idle {
			t.Errorf("%s: idle %v after IdleEvict, want %v", tc.name, got, tc.idle)
		}
		s.sessions[ss] = struct{}{}
		s.byPeer[ss.peer] = map[*sellerSession]struct{}{ss: {}}
		s.mu.Unlock()
	}
	// makeRoomLocked ends one idle session, never a caught-up one.
	clk.Add(IdleEvict)
	for {
		s.mu.Lock()
		made := s.makeRoomLocked()
		s.mu.Unlock()
		if !made {
			break
		}
	}
	for ss := range s.sessions {
		c := cases[ss.peer[0]-'a']
		if ended := ss.ctx.Err() != nil; ended != c.idle {
			t.Errorf("%s: ended %v, want %v", c.name, ended, c.idle)
		}
	}
}

func ptr[T any](v T) *T { return &v }
