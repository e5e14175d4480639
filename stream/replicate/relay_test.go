package replicate

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

func relayNode(t *testing.T, cfg p2p.Config) *p2p.Node {
	t.Helper()
	id, err := p2p.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Identity, err = p2p.ParseIdentity(id); err != nil {
		t.Fatal(err)
	}
	cfg.PrivateAddrs = true
	cfg.Protocols = []protocol.ID{wire.Protocol}
	if !cfg.NoListen {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	n, err := p2p.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// The seller listens nowhere: its card carries only relay addresses. The viewer reaches it
// through the relay; the feed then flows on a direct connection (more than the relay's
// 128 KiB limit), verified.
func TestReplicateToSellerBehindRelay(t *testing.T) {
	relay := relayNode(t, p2p.Config{Reachability: p2p.ReachabilityPublic})
	sn := relayNode(t, p2p.Config{NoListen: true, Reachability: p2p.ReachabilityPrivate,
		StaticRelays: []peer.AddrInfo{relay.AddrInfo()}})
	vn := relayNode(t, p2p.Config{})
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 64, 8192) // 512 KiB
	startSeller(t, sn, sf, nil, nil)

	var card peer.AddrInfo
	waitFor(t, 30*time.Second, "a relay reservation", func() bool {
		card = peer.AddrInfo{ID: sn.ID()}
		for _, a := range sn.AddrInfo().Addrs {
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
				card.Addrs = append(card.Addrs, a)
			}
		}
		return len(card.Addrs) > 0
	})
	r := startViewer(t, vn, card, sf.Key(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.viewer.Fetch(ctx, 0, 64); err != nil {
		t.Fatal(err)
	}
	for _, c := range vn.Host().Network().ConnsToPeer(sn.ID()) {
		if c.Stat().Limited {
			continue
		}
		return // a direct connection carried it
	}
	t.Fatal("no direct connection to the seller")
}
