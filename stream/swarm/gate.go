package swarm

import (
	"context"

	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/libp2p/go-libp2p/core/peer"
)

// welcomeGate is a free stream's gate that gives each new viewer the newest forwarded app
// message (where the stream's header is) before its first block.
type welcomeGate struct{ s *Server }

func (g welcomeGate) Check(_ context.Context, p peer.ID) (replicate.Allowance, error) {
	if g.s.cfg.forward != nil {
		if msg, sl := g.s.cfg.forward(), g.s.seller.Load(); msg != nil && sl != nil {
			_ = sl.Send(p, msg) // best effort: a full control queue drops it
		}
	}
	return replicate.Allowance{Free: true}, nil
}

func (welcomeGate) Delivered(peer.ID, uint64, int) {}
