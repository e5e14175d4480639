// Package replicate carries a signed feed from its seller to viewers over libp2p, with
// per-viewer gating: the seller asks a Gate whether a viewer may have blocks, sends nothing of
// the feed (no block, no proof) to a viewer the gate refuses, and stops at the deadline the gate
// gave on its own clock. Viewers verify every block against the feed key before storing it.
//
// One libp2p stream of protocol wire.Protocol carries one session. The seller pushes each new
// block to viewers that follow the live edge; viewers fetch older ranges on demand.
package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SellerFeed is what a Seller needs of the feed it serves: *feed.Feed, writable for the
// stream's seller, or a reader's feed relaying the signatures it verified.
//
// The seller never waits for the feed's disk without bound: requests with an upgrade go to
// ProofPending, whose signature it waits for with a context (SellerConfig.SyncTimeout), and
// a feed that also has Encrypted() and ProofPendingDeferred (an encrypted *feed.Feed, whose
// ProofPending waits for the disk to let a new block out) is asked through
// ProofPendingDeferred instead, the block's wait bounded the same way (BlockDurable).
type SellerFeed interface {
	Head() feed.Head
	Length() uint64
	MaxBlockSize() int
	// ProofLength answers a request and returns the signed length the proof's upgrade
	// reaches. The seller asks it only requests without an upgrade, which it answers
	// without waiting for the disk.
	ProofLength(feed.Request) (*feed.Proof, uint64, error)
	// ProofPending is ProofLength with the upgrade's signature held back until the feed
	// has made the state it signs durable (the block can travel meanwhile).
	ProofPending(feed.Request) (*feed.PendingProof, error)
	Subscribe() (<-chan feed.Head, func())
}

// ViewerFeed is what a Viewer needs of the feed it stores into: a *feed.Feed reader created
// with the feed key from the card.
type ViewerFeed interface {
	Key() [32]byte
	Head() feed.Head
	Length() uint64
	MaxBlockSize() int
	Has(i uint64) bool
	// VerifyBatch verifies and stores proofs that arrived back to back, each against the
	// last signature among them (feed.Feed.VerifyBatch), and returns how many it stored.
	VerifyBatch([]*feed.Proof) (int, error)
	// CheckFork verifies, storing nothing, an upgrade from length 0 on another fork.
	CheckFork(*feed.Proof) (fork, length uint64, err error)
}

// Feed is a feed that can take either role (a viewer relaying to other viewers holds one);
// *feed.Feed implements it. The seller and the viewer each ask only for their part.
type Feed interface {
	SellerFeed
	ViewerFeed
	MissingNodes(i uint64) uint64
	Proof(feed.Request) (*feed.Proof, error)
}

var (
	_ Feed       = (*feed.Feed)(nil)
	_ SellerFeed = (*feed.Feed)(nil)
	_ ViewerFeed = (*feed.Feed)(nil)
)

// Allowance is a gate's answer for one viewer.
type Allowance struct {
	// Free lets the viewer have every block with no deadline.
	Free bool
	// Until lets the viewer have blocks until then. Zero or past (and not Free) refuses.
	Until time.Time
	// Reason tells a refused viewer why, in plain words ("No paid time left: pay the
	// invoice to keep watching."). Empty gets a default.
	Reason string
}

// Gate decides which viewers get blocks. The app implements it with the wallet.
type Gate interface {
	// Check is called when a viewer connects, when Seller.Recheck names it (a payment
	// arrived) and when its deadline passes. An error refuses the viewer for now: it is
	// logged on the seller, and the viewer is told only that its payment could not be
	// checked (the error's text never leaves the seller); the session asks again after 1 s,
	// then twice as late each time the gate fails again, up to every 30 s, until it answers.
	// Check may block (it runs on its own goroutine per viewer), and should honour ctx.
	Check(ctx context.Context, viewer peer.ID) (Allowance, error)
	// Delivered is told of each block sent to a viewer (paid time is billed on what was
	// delivered), once the block has been written to the viewer's stream: a block still in
	// the send buffer when the connection drops is not reported. It is called from the
	// viewer's send loop and must not block.
	Delivered(viewer peer.ID, index uint64, size int)
}

// FreeGate lets everyone have everything (a free stream).
type FreeGate struct{}

// Check allows every viewer with no deadline.
func (FreeGate) Check(context.Context, peer.ID) (Allowance, error) { return Allowance{Free: true}, nil }

// Delivered does nothing.
func (FreeGate) Delivered(peer.ID, uint64, int) {}

// Clock is the time source for deadlines: github.com/filecoin-project/go-clock's, the one
// clock the program injects (clock.NewMock() in tests).
type Clock = clock.Clock

// Errors the session reports, wrapped with details.
var (
	ErrInvalidData = errors.New("the seller sent data that does not verify against the feed key")
	ErrProtocol    = errors.New("the peer broke the replication protocol")
	ErrClosed      = errors.New("replication is closed")
	ErrNoSession   = errors.New("not connected to the seller")
	// ErrForked: the seller's feed moved to a new fork (it lost appends in a power loss)
	// and the viewer has no OnFork to start again on it.
	ErrForked = errors.New("the seller's feed moved to a new fork after losing data")
	// ErrNotHeld: the source (a relaying viewer, which holds the stream from when it joined)
	// answered twice in a row that it does not hold blocks it announced the feed reaches.
	ErrNotHeld = errors.New("the source does not hold these blocks")
)

// Default refusal reasons.
const (
	reasonNoTime    = "No paid time left on this stream: pay the invoice to watch."
	reasonExpired   = "Your paid time has run out: top up to keep watching."
	reasonGateError = "The seller could not check your payment just now; it will try again."
)

// PeerStats counts one viewer's traffic on the seller, over its sessions since it connected
// (the counters are dropped when its last session ends). Bytes and blocks count once they
// were written to the stream, not when they entered the send buffer.
type PeerStats struct {
	BytesSent, BytesReceived uint64 // replication protocol bytes, framing included
	Blocks, BlockBytes       uint64 // blocks (with their proofs) sent, and their payload
	Proofs                   uint64 // data messages sent (blocks and upgrades)
}

func describeAllowance(a Allowance, now time.Time) string {
	switch {
	case a.Free:
		return "free"
	case a.Until.After(now):
		return fmt.Sprintf("allowed for %s", a.Until.Sub(now).Round(time.Second))
	}
	return "refused"
}
