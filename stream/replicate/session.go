package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// protectTag marks connections to allowed viewers so that the connection manager never trims
// them.
const protectTag = "dazaar-replicate"

// item is one unit of work queued for a session's send loop.
type item struct {
	req    *feed.Request
	rng    *wire.Range
	id     uint64
	app    []byte
	last   bool // an app message that is the session's last (Farewell): its side of the stream closes after it
	access *wire.Access
}

// Queue bounds. reqQueue holds requests read from the viewer and not yet answered: when it is
// full the read loop stops reading, so a viewer that asks faster than it downloads is slowed
// down by its own stream's flow control (overflow policy: back-pressure, nothing dropped).
// ctrlQueue holds access changes and app messages for the viewer; an app message that finds it
// full is refused with an error to the sender (overflow policy: reject). Live blocks have no
// queue at all: the send loop keeps a "new head" flag and the viewer's verified length, and a
// viewer more than MaxLiveLag blocks behind skips ahead to the newest sync point.
const (
	reqQueue  = 64
	ctrlQueue = 16
)

type sellerSession struct {
	s     *Seller
	str   network.Stream
	peer  peer.ID
	c     *peerCounters
	ctx   context.Context
	stop  context.CancelFunc
	reqs  chan item
	ctrl  chan item
	live  chan struct{} // new head (coalescing, holds one)
	gateC chan struct{} // recheck wanted (coalescing, holds one)
	apps  *rate.Limiter // app messages from this viewer
	// took is when the session last had a block delivered, or began (unix ns, the seller's
	// clock): a full server makes room by ending a session that takes nothing (idleSession).
	took atomic.Int64

	mu       sync.Mutex
	allow    Allowance
	decided  bool
	timer    *clock.Timer
	follow   bool   // viewer follows the live edge
	early    bool   // viewer takes live pushes as early data + signature
	vlenHint uint64 // viewer's length from its last status
	hinted   bool
}

func newSellerSession(s *Seller, str network.Stream, c *peerCounters) *sellerSession {
	ss := &sellerSession{s: s, str: str, peer: str.Conn().RemotePeer(), c: c,
		reqs: make(chan item, reqQueue), ctrl: make(chan item, ctrlQueue),
		live: make(chan struct{}, 1), gateC: make(chan struct{}, 1),
		apps: newAppLimiter(sessionAppRate)}
	ss.ctx, ss.stop = context.WithCancel(s.ctx)
	ss.took.Store(s.cfg.Clock.Now().UnixNano())
	return ss
}

func (ss *sellerSession) wake() {
	select {
	case ss.live <- struct{}{}:
	default:
	}
}

func (ss *sellerSession) recheck() {
	select {
	case ss.gateC <- struct{}{}:
	default:
	}
}

func (ss *sellerSession) queueApp(msg []byte) error {
	select {
	case ss.ctrl <- item{app: append([]byte(nil), msg...)}:
		return nil
	case <-ss.ctx.Done():
		return fmt.Errorf("replicate: viewer %s: %w", ss.peer, ErrNoSession)
	default:
		return fmt.Errorf("replicate: viewer %s is not reading its messages (queue full)", ss.peer)
	}
}

// allowed reports whether blocks may go to the viewer now: by the gate's last answer and the
// clock, so that a deadline stops sending even before its timer has fired.
func (ss *sellerSession) allowed() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.decided && (ss.allow.Free || ss.allow.Until.After(ss.s.cfg.Clock.Now()))
}

func (ss *sellerSession) run() error {
	defer ss.stop()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errc <- ss.readLoop() }()
	go func() { defer wg.Done(); errc <- ss.gateLoop() }()
	go func() { defer wg.Done(); errc <- ss.sendLoop() }()
	err := <-errc
	ss.stop()
	_ = ss.str.Reset() // unblocks the read loop and a blocked write
	wg.Wait()
	ss.mu.Lock()
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.mu.Unlock()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Backoff of the gate's checks after an error: the first retry after gateRetryMin, each next
// one twice as late, up to gateRetryMax; an answer resets it.
const (
	gateRetryMin = time.Second
	gateRetryMax = 30 * time.Second
)

// gateLoop asks the gate on connect and whenever a recheck is wanted (payment, deadline, and
// after a gate error, with backoff).
func (ss *sellerSession) gateLoop() error {
	ss.recheck()
	var retry time.Duration // the last wait before asking again after an error; 0 after an answer
	for {
		select {
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		case <-ss.gateC:
		}
		// One check per peer per checkInterval over all its sessions (peer IDs cost nothing,
		// each check reaches the wallet, and a new stream is a new session); a payment's
		// recheck is at most checkInterval late.
		if err := ss.s.checks.wait(ss.ctx, ss.peer); err != nil {
			return err
		}
		a, err := ss.s.cfg.Gate.Check(ss.ctx, ss.peer)
		now := ss.s.cfg.Clock.Now()
		ss.s.checks.answered(ss.peer, err != nil || !(a.Free || a.Until.After(now)))
		if ss.ctx.Err() != nil {
			return ss.ctx.Err()
		}
		msg := wire.Access{}
		switch {
		case err != nil:
			// The gate's error may say anything about the seller's wallet: it stays here.
			ss.s.log.Warn("gate check failed", "viewer", ss.peer, "err", err)
			a = Allowance{}
			msg.Reason = reasonGateError
		case a.Free:
			msg.State = wire.Free
		case a.Until.After(now):
			msg.State = wire.Allowed
			msg.RemainingMs = uint64(a.Until.Sub(now).Milliseconds())
		default:
			msg.Reason = a.Reason
			if msg.Reason == "" {
				msg.Reason = reasonNoTime
				ss.mu.Lock()
				if ss.decided && !ss.allow.Free && !ss.allow.Until.IsZero() {
					msg.Reason = reasonExpired
				}
				ss.mu.Unlock()
			}
		}
		ss.mu.Lock()
		ss.allow, ss.decided = a, true
		if ss.timer != nil {
			ss.timer.Stop()
			ss.timer = nil
		}
		switch {
		case err != nil:
			// The gate could not answer (a wallet busy or offline): ask again, later each
			// time while it keeps failing, as the viewer was told. The timer is the session's
			// (run stops it).
			retry = min(max(2*retry, gateRetryMin), gateRetryMax)
			ss.timer = ss.s.cfg.Clock.AfterFunc(retry, ss.recheck)
		case msg.State == wire.Allowed:
			// Re-ask at the deadline: the gate may know of a top-up by then, and if not the
			// viewer is told. allowed() already stops blocks at the deadline itself.
			ss.timer = ss.s.cfg.Clock.AfterFunc(a.Until.Sub(now), ss.recheck)
		}
		if err == nil {
			retry = 0
		}
		ss.mu.Unlock()
		ss.s.log.Debug("gate", "viewer", ss.peer, "access", describeAllowance(a, now))
		if msg.State == wire.Refused {
			ss.s.cfg.Host.ConnManager().Unprotect(ss.peer, protectTag)
		} else {
			ss.s.cfg.Host.ConnManager().Protect(ss.peer, protectTag)
		}
		select {
		case ss.ctrl <- item{access: &msg}:
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		}
		ss.wake()
	}
}

func (ss *sellerSession) readLoop() error {
	// Viewers send small messages (requests, the odd app message): a 4 KiB buffer, not the
	// 64 KiB a block reader wants, since every stream opened costs the seller one.
	r := wire.NewReaderSize(ss.str, wire.MaxViewerFrame, 4<<10)
	var last uint64
	for {
		t, body, err := r.Next()
		n := r.BytesRead()
		ss.c.recv.Add(n - last)
		last = n
		if err != nil {
			return err
		}
		var it item
		switch t {
		case wire.TStatus:
			st, err := wire.DecodeStatus(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			ss.mu.Lock()
			ss.follow = st.Flags&wire.StatusLive != 0
			ss.early = st.Flags&wire.StatusEarly != 0
			ss.vlenHint, ss.hinted = st.Length, true
			ss.mu.Unlock()
			ss.wake()
			continue
		case wire.TRequest:
			tg, err := wire.DecodeTagged(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			req, err := feed.DecodeRequest(tg.Payload)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if tg.ID == 0 {
				return fmt.Errorf("%w: request id 0 is the seller's own", ErrProtocol)
			}
			it = item{req: req, id: tg.ID}
		case wire.TRange:
			rg, err := wire.DecodeRange(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if rg.ID == 0 {
				return fmt.Errorf("%w: request id 0 is the seller's own", ErrProtocol)
			}
			it = item{rng: &rg, id: rg.ID}
		case wire.TApp:
			msg, err := wire.DecodeApp(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			// Overflow policy: application messages over the session's rate, or over the
			// seller's for all peers together, are dropped (the wallet behind OnApp is not
			// there to be flooded).
			if !ss.apps.Allow() || !ss.s.apps.Allow() {
				ss.s.log.Debug("app message dropped: over the rate", "viewer", ss.peer)
				continue
			}
			if ss.s.cfg.OnApp != nil {
				ss.s.cfg.OnApp(ss.peer, msg)
			}
			continue
		default:
			return fmt.Errorf("%w: a viewer may not send %s messages", ErrProtocol, t)
		}
		select {
		case ss.reqs <- it:
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		}
	}
}
