package swarm

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// providerKey is the DHT key relays of a feed announce themselves under: a CID of the feed's
// discovery key (which does not reveal the feed key), namespaced so no other use collides.
func providerKey(disc [32]byte) cid.Cid {
	h, _ := mh.Sum(append([]byte("dazaar-vision/swarm/1/"), disc[:]...), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

// discover announces this relay on the DHT once it holds something (again every
// provideEvery) and looks for other relays every discoverEvery while few sources are known.
func (s *Swarm) discover(ctx context.Context) {
	key := providerKey(s.disc)
	var provided time.Time
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = discoverEvery
		if s.cfg.Relay && s.Feed().Length() > 0 && time.Since(provided) > provideEvery {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := s.cfg.Routing.Provide(pctx, key, true); err != nil {
				s.log.Debug("cannot announce this relay on the DHT", "err", err)
				wait = 5 * time.Second
			} else {
				provided = time.Now()
			}
			cancel()
		}
		s.mu.Lock()
		n := len(s.cands)
		s.mu.Unlock()
		if n >= 2*s.cfg.MaxUpstreams {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		found := s.cfg.Routing.FindProvidersAsync(fctx, key, discoverResults)
		for p := range found {
			if p.ID != s.cfg.Node.Host().ID() {
				s.learn([]peer.AddrInfo{p})
			}
		}
		cancel()
		s.poke()
	}
}
