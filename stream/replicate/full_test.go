package replicate

import (
	"bytes"
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
