package session

import (
	"context"
	"log/slog"
	"sync"

	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
)

// ledgerGate is the seller's replicate.Gate for a paid stream: a viewer may have blocks while
// its ledger account has paid media time left, and paid time burns by the media time of each
// block delivered to it (a viewer who is paused, behind or disconnected is not charged).
//
// The allowance it gives is a wall-clock deadline (now + remaining): the seller re-asks at that
// deadline, and Delivered re-asks at once when a viewer catching up faster than real time used
// its time before the deadline came.
type ledgerGate struct {
	stream  string
	ledger  *ledger.Ledger
	clock   clock.Clock               // the seller's (SellerConfig.Clock): Until is read against it
	millis  func(index uint64) uint64 // media time of a block
	recheck func(peer.ID)             // Seller.Recheck, set once the seller exists
	// joinWindow is the blocks from the newest sync block to the live edge. The player needs
	// them to start but shows the live edge, so at a viewer's first admission in this
	// broadcast they are not billed: at most one key-frame interval (2 s in every preset), once
	// per viewer per broadcast, so reconnecting again and again earns nothing. Nil bills all.
	joinWindow func() (from, to uint64)
	log        *slog.Logger

	mu        sync.Mutex
	exhausted map[peer.ID]bool      // told to recheck once; cleared by the next allowed check
	joins     map[peer.ID][2]uint64 // each admitted viewer's unbilled join window, kept for the broadcast
}

func (g *ledgerGate) key(p peer.ID) ledger.Key {
	return ledger.Key{Stream: g.stream, Viewer: p.String()}
}

// Check implements replicate.Gate.
func (g *ledgerGate) Check(_ context.Context, p peer.ID) (replicate.Allowance, error) {
	rem := g.ledger.Remaining(g.key(p))
	if rem <= 0 {
		return replicate.Allowance{Reason: refusal(g.ledger.Credits(g.key(p)))}, nil
	}
	g.mu.Lock()
	delete(g.exhausted, p)
	if _, ok := g.joins[p]; !ok && g.joinWindow != nil {
		if g.joins == nil {
			g.joins = map[peer.ID][2]uint64{}
		}
		from, to := g.joinWindow()
		g.joins[p] = [2]uint64{from, to}
	}
	g.mu.Unlock()
	return replicate.Allowance{Until: g.clock.Now().Add(rem)}, nil
}

// paymentSeenReason is a refused viewer's reason while its on-chain payment waits for its
// confirmation; the wire carries only the text, so ViewFigures.PaymentSeen recognises it by
// paymentSeenPrefix.
const (
	paymentSeenPrefix = "Your payment was seen"
	paymentSeenReason = paymentSeenPrefix + ": the video starts once it is confirmed in a block."
)

// refusal says in plain words why a viewer with no paid time left is refused, from its credits:
// an on-chain payment seen but not yet confirmed (which buys nothing until it confirms when
// the seller gives no provisional access, or buys only what the cap allows) is told apart
// from no payment and from time used up.
func refusal(credits []ledger.Credit) string {
	paid := false
	for _, c := range credits {
		switch c.State {
		case ledger.Provisional:
			return paymentSeenReason
		case ledger.Settled:
			paid = true
		}
	}
	if paid {
		return "No paid time left: top up to keep watching."
	}
	return "Not paid yet: buy minutes to start watching."
}

// Delivered implements replicate.Gate: it bills the block's media time.
func (g *ledgerGate) Delivered(p peer.ID, index uint64, _ int) {
	g.mu.Lock()
	w := g.joins[p]
	g.mu.Unlock()
	if index >= w[0] && index < w[1] {
		return // the join window: see joinWindow
	}
	ms := g.millis(index)
	if ms == 0 {
		return
	}
	left, err := g.ledger.Consume(g.key(p), ms)
	if err != nil {
		g.log.Warn("cannot bill a delivered block", "viewer", p, "block", index, "err", err)
		return
	}
	if left <= 0 {
		g.mu.Lock()
		first := !g.exhausted[p]
		if g.exhausted == nil {
			g.exhausted = map[peer.ID]bool{}
		}
		g.exhausted[p] = true
		g.mu.Unlock()
		if first && g.recheck != nil {
			g.recheck(p)
		}
	}
}
