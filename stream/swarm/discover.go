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
// provideEvery) and looks for other relays every discoverEvery while few sources are known;
// every searchSoon instead while it has nothing to announce yet or no source sends the
// stream.
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
		if s.cfg.Relay && time.Since(provided) > provideEvery {
			if s.Feed().Length() == 0 {
				wait = searchSoon
			} else {
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				if err := s.cfg.Routing.Provide(pctx, key, true); err != nil {
					s.log.Debug("cannot announce this relay on the DHT", "err", err)
					wait = searchSoon
				} else {
					provided = time.Now()
				}
				cancel()
			}
		}
		if !s.Connected() {
			wait = searchSoon
		}
		s.mu.Lock()
		n := len(s.cands)
		s.mu.Unlock()
		if n >= 2*s.cfg.MaxUpstreams && s.Connected() {
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
