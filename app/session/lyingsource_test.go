package session

import (
	"context"
	"image"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// TestSourceInflatingItsStatusStillPlays: a free stream's source (a relay, here a proxy in
// front of the broadcaster that the card names) passes the broadcaster's verified blocks on
// unchanged but inflates every status, which is not signed: a million blocks more and a
// sync point just below them. The viewer plays from what it verified. Before, its player
// started at the claimed sync point and waited there for good, while the figures said
// connected, not starved.
func TestSourceInflatingItsStatusStillPlays(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	bc := b.Card()
	seller, err := peer.Decode(bc.Seller)
	if err != nil {
		t.Fatal(err)
	}
	up := peer.AddrInfo{ID: seller, Addrs: b.node.Host().Addrs()}
	proxy, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	dialer, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer dialer.Close()
	var lies atomic.Int64
	proxy.SetStreamHandler(wire.Protocol, func(down network.Stream) {
		defer down.Reset()
		if err := dialer.Connect(ctx, up); err != nil {
			return
		}
		us, err := dialer.NewStream(ctx, seller, wire.Protocol)
		if err != nil {
			return
		}
		defer us.Reset()
		go func() { _, _ = io.Copy(us, down) }()
		r := wire.NewReader(us, wire.MaxFrame(4<<20))
		w := wire.NewWriter(down)
		for {
			ty, body, err := r.Next()
			if err != nil {
				return
			}
			if st, derr := wire.DecodeStatus(body); ty == wire.TStatus && derr == nil {
				st.Length += 1_000_000
				st.SyncPoint, st.Flags = st.Length-1, st.Flags|wire.StatusHasSyncPoint
				lies.Add(1)
				err = w.Frame(ty, st.AppendBinary)
			} else {
				err = w.Frame(ty, func(b []byte) ([]byte, error) { return append(b, body...), nil })
			}
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				return
			}
		}
	})
	c := card.Card{Name: bc.Name, Feed: bc.Feed, Seller: proxy.ID().String(), Price: bc.Price}
	for _, a := range proxy.Addrs() {
		c.Addrs = append(c.Addrs, a.String())
	}
	var decoded atomic.Int64
	v := startViewerWith(ctx, t, c, func(cfg *ViewerConfig) {
		cfg.OnDecoded = func(time.Duration, *image.RGBA) { decoded.Add(1) }
	})
	defer v.Stop()
	waitFor(t, "pictures through a source that inflates its status", time.Minute, func() bool {
		return decoded.Load() >= 30
	})
	if lies.Load() == 0 {
		t.Fatal("the proxy passed on no status: the test did not test anything")
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
}
