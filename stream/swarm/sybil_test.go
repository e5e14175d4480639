package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
)

// TestIdleLinksDoNotShutOutServedRelays: throwaway identities open idle Have links to the
// broadcaster until its inbound cap is full, each claiming to relay with free slots. A real
// relay it serves still gets its link in, comes first in the redirects, and a viewer the
// broadcaster turns away reaches the stream through it. Before, the relay's link was reset at
// the cap and every redirect named only the idle identities: the turned-away viewer got
// nothing in 30 s.
func TestIdleLinksDoNotShutOutServedRelays(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	srv := serveOrigin(t, sn, sf, 1)
	startAppending(t, sf)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var hosts []host.Host
	var links []*haves
	t.Cleanup(func() {
		for _, o := range links {
			o.close()
		}
		for _, h := range hosts {
			_ = h.Close()
		}
	})
	for range srv.haves.maxIn {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
		o := newHaves(h, srv.disc, func() Have { return Have{Length: sf.Length(), Depth: 1, Free: maxFreeClaim, Relay: true} }, 2, quiet())
		links = append(links, o)
		if err := h.Connect(ctx, sn.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		if err := o.open(ctx, sn.ID()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the idle links fill the cap", func() bool { return len(srv.haves.all()) >= srv.haves.maxIn })

	a := startSwarm(t, sn.AddrInfo(), sf.Key(), nil)
	waitFor(t, 20*time.Second, "the relay served by the broadcaster", func() bool {
		st := a.sw.Stats()
		return st.Depth == 1 && st.ActiveIsSeller
	})
	waitFor(t, 20*time.Second, "the relay named first in a redirect", func() bool {
		named := srv.relaysFor("")
		return len(named) > 0 && named[0].ID == a.node.ID()
	})
	if n := len(srv.haves.all()); n > srv.haves.maxIn {
		t.Fatalf("%d inbound links held, cap %d", n, srv.haves.maxIn)
	}
	b := startSwarm(t, sn.AddrInfo(), sf.Key(), nil)
	waitFor(t, 20*time.Second, "the turned-away viewer's first blocks", func() bool { return b.sw.Feed().Length() > 0 })
	// The figures count what each relayed: the relay serving the viewer, and not the
	// viewer's own requests upstream (before, any node's protocol traffic out).
	waitFor(t, 20*time.Second, "the relay's figures", func() bool {
		st := a.sw.Stats()
		return st.Downstreams == 1 && st.RelayedBytes > 0
	})
	b.sw.mu.Lock()
	bServes := b.sw.srv != nil
	b.sw.mu.Unlock()
	if st := b.sw.Stats(); !bServes || st.Downstreams != 0 || st.RelayedBytes != 0 {
		t.Fatalf("a viewer serving nobody (server running: %v) reports %d downstreams and %d bytes relayed", bServes, st.Downstreams, st.RelayedBytes)
	}
}
