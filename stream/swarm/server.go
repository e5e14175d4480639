package swarm

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/swarm/swarmwire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// DefaultMaxViewers is a relay's bound on the viewers it serves directly: a 1 Mbit/s stream
// four times is 4 Mbit/s, what a home connection's uplink usually carries with room to spare.
const DefaultMaxViewers = 4

// DefaultOriginViewers is a seller's bound on its direct viewers when its uplink is neither
// measured nor set: three, so that with what the protocol adds (proofs and signatures, about
// 1.5 %), the Have links, the redirects of viewers turned away and TCP's retransmissions, the
// seller uploads fewer than four copies of its stream whatever the audience (BENCHMARKS.md:
// 4.06 copies in the protocol and 4.3-4.5 on the wire with four). The relays below it serve
// four each, so the tree is no deeper for it at any audience up to 3·4^k.
const DefaultOriginViewers = 3

// ReasonFull is what a viewer turned away by a full server is told (the redirect that comes
// with it names the peers to watch through).
const ReasonFull = "This source is serving as many viewers as its connection carries; watching through other viewers instead."

// DirectLimit is the number of viewers an uplink carries directly: 80 % of the uplink (the
// rest is headroom for the protocol, retransmissions and the user's other traffic) divided
// by the stream's bit rate, at least 1. Either figure unknown (≤ 0) gives
// DefaultOriginViewers.
func DirectLimit(uplinkBitsPerSecond, streamBitsPerSecond int64) int {
	if uplinkBitsPerSecond <= 0 || streamBitsPerSecond <= 0 {
		return DefaultOriginViewers
	}
	return max(1, int(uplinkBitsPerSecond*8/10/streamBitsPerSecond))
}

// edgeSlack is how far behind the live edge (in blocks) a peer may be and still be named in
// a redirect as holding it: 1 s at 30 blocks a second.
const edgeSlack = 30

// ServeConfig configures a Server.
type ServeConfig struct {
	Host host.Host
	// Feed is served: the seller's writable feed (Origin), or a viewer's verified reader.
	Feed replicate.SellerFeed
	// Origin marks the stream's seller (depth 0).
	Origin bool
	// MaxViewers bounds the viewers served at once (0: DefaultOriginViewers for the seller,
	// DefaultMaxViewers for a relay; see DirectLimit).
	// Past it a new viewer is sent to peers holding the live edge.
	MaxViewers int
	// Seller holds further replication settings (OnApp, Clock, MaxLiveLag, timeouts, Logger);
	// Host, Feed, Gate, MaxViewers and Full are set by Serve. Only free streams are relayed.
	Seller replicate.SellerConfig
	Logger *slog.Logger

	depth   func() uint8 // a relay's depth (the swarm's); nil: 0 for Origin
	haves   *haves       // the host's have links (the swarm's); nil: the server runs its own
	forward func() []byte
}

// Server serves a free stream's feed to a bounded number of viewers and sends the rest to
// peers holding the live edge. The seller runs one (Serve with Origin); each relaying viewer's
// Swarm runs one on its verified copy.
type Server struct {
	cfg    ServeConfig
	seller atomic.Pointer[replicate.Seller] // set once NewSeller returned (its handler may run before)
	haves  *haves
	own    bool
	disc   [32]byte
	log    *slog.Logger

	turned atomic.Uint64 // viewers turned away
	once   sync.Once
}

// keyed is a feed that knows its key (*feed.Feed does).
type keyed interface{ Key() [32]byte }

// Serve starts serving cfg.Feed on cfg.Host. Close stops it.
func Serve(cfg ServeConfig) (*Server, error) {
	if cfg.Host == nil || cfg.Feed == nil {
		return nil, errors.New("swarm: a server needs a host and a feed")
	}
	k, ok := cfg.Feed.(keyed)
	if !ok {
		return nil, errors.New("swarm: the served feed does not say its key")
	}
	if cfg.MaxViewers <= 0 {
		cfg.MaxViewers = DefaultMaxViewers
		if cfg.Origin {
			cfg.MaxViewers = DefaultOriginViewers
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, disc: feed.DiscoveryKey(k.Key()), log: cfg.Logger.With("component", "swarm-server")}
	s.haves = cfg.haves
	if s.haves == nil {
		s.own = true
		s.haves = newHaves(cfg.Host, s.disc, s.Have, 4*cfg.MaxViewers+64, s.log)
	}
	sc := cfg.Seller
	sc.Host, sc.Feed, sc.Gate, sc.MaxViewers, sc.Full = cfg.Host, cfg.Feed, welcomeGate{s}, cfg.MaxViewers, s.full
	if sc.Logger == nil {
		sc.Logger = cfg.Logger
	}
	seller, err := replicate.NewSeller(sc)
	if err != nil {
		if s.own {
			s.haves.close()
		}
		return nil, fmt.Errorf("swarm: serve: %w", err)
	}
	s.seller.Store(seller)
	s.haves.preferServed(s.served)
	return s, nil
}

// served is the set of viewers the server serves now.
func (s *Server) served() map[peer.ID]bool {
	m := map[peer.ID]bool{}
	if sl := s.seller.Load(); sl != nil {
		for _, p := range sl.Viewers() {
			m[p] = true
		}
	}
	return m
}

// Seller is the replication server inside (viewers, stats, app messages).
func (s *Server) Seller() *replicate.Seller { return s.seller.Load() }

// MaxViewers is the bound on viewers served at once.
func (s *Server) MaxViewers() int { return s.cfg.MaxViewers }

// TurnedAway counts the viewers sent elsewhere because the server was full.
func (s *Server) TurnedAway() uint64 { return s.turned.Load() }

// Free is the number of viewers the server would take now.
func (s *Server) Free() int {
	sl := s.seller.Load()
	if sl == nil {
		return s.cfg.MaxViewers
	}
	return max(0, s.cfg.MaxViewers-len(sl.Viewers()))
}

// Have is the server's own Have (what it tells linked peers).
func (s *Server) Have() Have {
	h := s.cfg.Feed.Head()
	d := uint8(0)
	if s.cfg.depth != nil {
		d = s.cfg.depth()
	}
	return Have{Discovery: s.disc, Fork: h.Fork, Length: h.Length, Depth: d, Free: uint16(min(s.Free(), 0xffff)), Relay: true}
}

// Close stops serving and waits for its goroutines.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.seller.Load().Close()
		if s.own {
			s.haves.close()
		}
	})
	return err
}

// full builds the redirect for a viewer turned away: linked peers that relay, on our fork,
// within edgeSlack of our length; the viewers we serve that have free slots first, then
// those with free slots (most first, a claim counting
// up to maxFreeClaim), then the freshest (a claim counting up to our own length), then the
// shallowest, and peers alike in all three in random order. Peers without free slots are
// named too: they send the viewer further on.
func (s *Server) full(p peer.ID) ([]byte, string) {
	s.turned.Add(1)
	return swarmwire.EncodeRedirect(s.relaysFor(p)), ReasonFull
}

func (s *Server) relaysFor(p peer.ID) []peer.AddrInfo {
	head := s.cfg.Feed.Head()
	type cand struct {
		id     peer.ID
		h      haveEntry
		proven int // 1: a viewer we serve that has free slots
	}
	served := s.served()
	var cs []cand
	for q, h := range s.haves.all() {
		if q == p || !h.Relay || h.Fork != head.Fork || h.Depth == NoDepth || h.Length+edgeSlack < head.Length {
			continue
		}
		c := cand{id: q, h: h}
		if served[q] && h.Free > 0 {
			c.proven = 1
		}
		cs = append(cs, c)
	}
	// Nothing checks a Have's claims: counted beyond what an honest peer can claim (more free
	// slots than a relay has, more blocks than we hold), they put whoever lies first. So the
	// viewers we serve come first: they hold a place here, which throwaway identities
	// opening links cannot take in numbers. A tie after the claims is broken at random, so
	// that peers claiming the most cannot take every place from honest relays claiming as
	// much.
	rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	slices.SortStableFunc(cs, func(a, b cand) int {
		return cmp.Or(-cmp.Compare(a.proven, b.proven), -cmp.Compare(min(a.h.Free, maxFreeClaim), min(b.h.Free, maxFreeClaim)),
			-cmp.Compare(min(a.h.Length, head.Length), min(b.h.Length, head.Length)), cmp.Compare(a.h.Depth, b.h.Depth))
	})
	var out []peer.AddrInfo
	for _, c := range cs {
		if len(out) == MaxRedirectPeers {
			break
		}
		addrs := s.cfg.Host.Peerstore().Addrs(c.id)
		addrs = slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool { return len(a.Bytes()) > swarmwire.MaxAddrLen })
		if len(addrs) == 0 {
			continue
		}
		out = append(out, peer.AddrInfo{ID: c.id, Addrs: addrs})
	}
	return out
}
