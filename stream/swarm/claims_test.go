package swarm

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func newPeerID(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func haveLink(h Have) *link {
	return &link{got: true, have: haveEntry{Have: h, at: time.Now()}}
}

// A Have claiming far more of the stream sets what counts as fresh only when it comes from a
// peer we would take data from: from a banned peer, a peer we do not know as a source (one of
// our viewers linking to us, anyone) or one whose claims we disbelieve, it no longer makes
// every candidate look stale, so the fresh source is still picked over a stale shallower one.
func TestClaimsOfUnusablePeersDoNotSetFreshness(t *testing.T) {
	n := newNode(t)
	sf := newWriter(t, 1)
	now := time.Now()
	fresh, stale, liar := newPeerID(t), newPeerID(t), newPeerID(t)
	for _, tc := range []struct {
		name  string
		setup func(s *Swarm)
	}{
		{"no lying link (control)", nil},
		{"inbound link from a peer that is no source", func(s *Swarm) {
			s.haves.links[linkKey{liar, false}] = haveLink(Have{Length: 1_000_000 + 1000, Depth: 1, Free: 4, Relay: true})
		}},
		{"banned peer linking again", func(s *Swarm) {
			s.banned[liar] = now.Add(-time.Minute)
			s.haves.links[linkKey{liar, false}] = haveLink(Have{Length: 1_000_000 + 1000, Depth: 1, Free: 4, Relay: true})
		}},
		{"source whose claims are disbelieved", func(s *Swarm) {
			s.cands[liar] = &cand{info: peer.AddrInfo{ID: liar}, overclaimed: now.Add(time.Minute), retryAt: now.Add(time.Minute)}
			s.haves.links[linkKey{liar, true}] = haveLink(Have{Length: 1_000_000 + 1000, Depth: 1, Free: 4, Relay: true})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hv := &haves{links: map[linkKey]*link{
				{fresh, true}: haveLink(Have{Length: 1000, Depth: 3, Free: 1, Relay: true}),
				{stale, true}: haveLink(Have{Length: 900, Depth: 1, Free: 1, Relay: true}),
			}}
			s := &Swarm{cfg: Config{Node: n, Seller: peer.AddrInfo{ID: newPeerID(t)}, SlowLag: defaultSlowLag}, log: quiet(),
				haves: hv, feed: newRelayFeed(newReader(t, sf.Key())), banned: map[peer.ID]time.Time{}, depth: NoDepth, lastGood: NoDepth,
				cands: map[peer.ID]*cand{fresh: {info: peer.AddrInfo{ID: fresh}}, stale: {info: peer.AddrInfo{ID: stale}}}}
			if tc.setup != nil {
				tc.setup(s)
			}
			c := s.pick(now)
			if c == nil || c.info.ID != fresh {
				got := "nothing"
				if c != nil {
					got = map[peer.ID]string{stale: "the stale source", liar: "the liar"}[c.info.ID]
				}
				t.Fatalf("picked %s, want the fresh source", got)
			}
		})
	}
}

// A Have's free slots are counted up to maxFreeClaim when it is received, and a redirect counts
// a claimed length up to the server's own, then ranks by depth, then at random: eight peers
// claiming 65535 free slots and more blocks than the server holds no longer fill a redirect
// ahead of an honest relay with maxFreeClaim free at a smaller depth, and share the places
// left at random.
func TestFreeSlotClaimsAreClamped(t *testing.T) {
	n := newNode(t)
	sf := newWriter(t, 100)
	addr := ma.StringCast("/ip4/192.0.2.1/tcp/4001")
	ps := n.Host().Peerstore()
	srv := &Server{cfg: ServeConfig{Host: n.Host(), Feed: sf}, haves: &haves{links: map[linkKey]*link{}}}
	var fakes []peer.ID
	for range MaxRedirectPeers {
		id := newPeerID(t)
		ps.AddAddr(id, addr, time.Hour)
		fakes = append(fakes, id)
		srv.haves.links[linkKey{id, false}] = haveLink(clampHave(Have{Length: sf.Length() + 500, Depth: 2, Free: 0xffff, Relay: true}))
	}
	honest := newPeerID(t)
	ps.AddAddr(honest, addr, time.Hour)
	srv.haves.links[linkKey{honest, false}] = haveLink(clampHave(Have{Length: sf.Length(), Depth: 1, Free: maxFreeClaim, Relay: true}))
	counts := map[peer.ID]int{}
	for range 200 {
		out := srv.relaysFor(newPeerID(t))
		if len(out) != MaxRedirectPeers {
			t.Fatalf("%d peers named, want %d", len(out), MaxRedirectPeers)
		}
		if out[0].ID != honest {
			t.Fatalf("the honest relay with %d free is named at place %d (0: not at all), not first", maxFreeClaim,
				slices.IndexFunc(out, func(p peer.AddrInfo) bool { return p.ID == honest })+1)
		}
		for _, p := range out {
			counts[p.ID]++
		}
	}
	// The fakes tie among themselves: each of the seven places left goes to any of them.
	for i, f := range fakes {
		if counts[f] == 0 || counts[f] == 200 {
			t.Errorf("fake %d named in %d of 200 redirects: ties are not broken at random", i, counts[f])
		}
	}
}
