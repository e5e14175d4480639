package fanoutlab

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// starMode: every viewer opens a session with the seller, which serves them all (relaying
// off, no limit on its viewers unless the run sets DirectLimit).
var starMode = Mode{
	Seller: func(r *Role) {
		r.FeedSeller([]protocol.ID{wire.Protocol}, func(node *p2p.Node, f *feed.Feed) (io.Closer, error) {
			return replicate.NewSeller(replicate.SellerConfig{Host: node.Host(), Feed: f, MaxViewers: r.DirectLimit,
				Logger: QuietLogger()})
		})
	},
	Viewers: func(r *Role) {
		seller := r.Seller()
		sem := make(chan struct{}, 8) // sessions being opened at once
		r.FeedViewers([]protocol.ID{wire.Protocol}, func(_ int, node *p2p.Node, f *feed.Feed, st *Stats) FeedViewer {
			var answered atomic.Bool
			var once sync.Once
			sem <- struct{}{}
			v, err := replicate.NewViewer(replicate.ViewerConfig{Dialer: node, Seller: seller, Feed: f, Live: true,
				Logger: QuietLogger(), OnBlock: st.Record,
				OnAccess: func(wire.Access) { once.Do(func() { answered.Store(true); <-sem }) }})
			if err != nil {
				r.Fail(err)
			}
			// Ready once the seller answered (refused viewers included).
			return FeedViewer{Run: func(ctx context.Context) error { return v.Run(ctx) }, Ready: answered.Load}
		})
	},
}
