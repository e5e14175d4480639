package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// SellerConfig configures a Seller.
type SellerConfig struct {
	Host host.Host
	// Feed is the feed served: *feed.Feed, writable for the stream's seller, or a reader's
	// feed relaying what it verified.
	Feed SellerFeed
	// Gate decides who gets blocks; nil makes the stream free for all.
	Gate Gate
	// Clock for deadlines (the program's one clock: clock.New(), or clock.NewMock() in
	// tests); nil is the system clock.
	Clock clock.Clock
	// OnApp receives application messages from viewers with their authenticated peer ID.
	// It runs on the viewer's read loop: hand long work to another goroutine.
	OnApp func(from peer.ID, msg []byte)
	// MaxLiveLag is how far (in blocks) a live viewer may fall behind before it skips ahead
	// to the newest sync point instead of receiving every block. Default 90 (3 s at 30 fps).
	MaxLiveLag uint64
	// StallTimeout ends a session whose viewer takes no bytes for this long (a stalled or
	// vanished viewer must not hold its session and buffers for ever). Default 30 s.
	StallTimeout time.Duration
	// KeepAlive is how long a session may write nothing before it sends a status anyway, so
	// that a viewer can tell a seller with nothing to send (a paused stream, a viewer whose
	// paid time ran out) from a stalled one (ViewerConfig.IdleTimeout). Default 10 s.
	KeepAlive time.Duration
	// SyncTimeout bounds how long a session waits for the disk to sync what a signature it
	// shares covers (an early live push's, or any proof with an upgrade: a live push, a
	// skip-ahead, a range's or a request's), or an encrypted feed's new block; past it the
	// session ends (a hung disk must not hold it), and the viewer comes back in a new one.
	// Meanwhile its control messages (refusals) still go out, a refusal ends the wait, and
	// Close does not wait for the disk. Default 10 s.
	SyncTimeout time.Duration
	// MaxViewers bounds the viewers (distinct peers) served at once; 0 is no bound. A new
	// viewer past it is not served: it gets Full's app message (if any) and an access refusal
	// with Full's reason, and its stream is closed (viewers already served keep their place
	// while they take blocks: one that took none for IdleEvict makes room for the newcomer;
	// a new stream from a served peer replaces its session as usual). For free streams whose
	// seller's uplink cannot carry everyone (stream/swarm points the rest at relays).
	MaxViewers int
	// Full gives a viewer turned away by MaxViewers an app message (nil: none; at most
	// wire.MaxApp bytes) and a reason in plain words (empty: a default). It runs on the
	// stream's handler goroutine and must not block.
	Full   func(viewer peer.ID) (app []byte, reason string)
	Logger *slog.Logger
}

// Seller serves a feed to viewers. Create it with NewSeller, stop it with Close.
type Seller struct {
	cfg     SellerConfig
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	maxData int

	mu       sync.Mutex
	sessions map[*sellerSession]struct{}
	byPeer   map[peer.ID]map[*sellerSession]struct{} // the same sessions by viewer: no scan of all per stream
	stats    map[peer.ID]*peerCounters
	closed   bool
	opens    *streamOpens // new streams per peer: a peer opening them in a loop is disconnected

	head  atomic.Pointer[feed.Head] // newest head, as the feed announced it
	cache proofCache

	checks *gateChecks   // gate checks: per peer and for all viewers together
	apps   *rate.Limiter // application messages, all viewers together
	faults atomic.Uint64 // numbers the faults viewers were told of, to find them in the log
}

// currentHead is the newest head without recomputing it per viewer.
func (s *Seller) currentHead() feed.Head {
	if h := s.head.Load(); h != nil {
		return *h
	}
	return s.cfg.Feed.Head()
}

type peerCounters struct {
	sent, recv, blocks, blockBytes, proofs atomic.Uint64
}

// NewSeller registers the replication protocol on the host and starts serving.
func NewSeller(cfg SellerConfig) (*Seller, error) {
	if cfg.Host == nil || cfg.Feed == nil {
		return nil, errors.New("replicate: a seller needs a host and a feed")
	}
	if cfg.Gate == nil {
		cfg.Gate = FreeGate{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = defaultSyncTimeout
	}
	if cfg.MaxLiveLag == 0 {
		cfg.MaxLiveLag = 90
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = defaultStallTimeout
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Seller{cfg: cfg, log: cfg.Logger.With("component", "seller"),
		sessions: map[*sellerSession]struct{}{}, byPeer: map[peer.ID]map[*sellerSession]struct{}{},
		stats: map[peer.ID]*peerCounters{}, opens: newStreamOpens(),
		maxData: wire.MaxFrame(cfg.Feed.MaxBlockSize()),
		checks:  newGateChecks(), apps: newAppLimiter(appRate)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	heads, unsub := cfg.Feed.Subscribe()
	h0 := cfg.Feed.Head()
	s.head.Store(&h0)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer unsub()
		s.fanOut(heads)
	}()
	cfg.Host.SetStreamHandler(wire.Protocol, s.handle)
	return s, nil
}

// fanOut wakes every session's send loop when the feed grows. Each session keeps only a
// "something new" flag, so a slow viewer never holds a backlog of heads.
func (s *Seller) fanOut(heads <-chan feed.Head) {
	for {
		select {
		case <-s.ctx.Done():
			return
		case h, ok := <-heads:
			if !ok {
				return // the feed closed
			}
			if old := s.head.Load(); old == nil || h.Length >= old.Length || h.Fork != old.Fork {
				s.head.Store(&h)
			}
			s.mu.Lock()
			for ss := range s.sessions {
				ss.wake()
			}
			s.mu.Unlock()
		}
	}
}

// Recheck asks the gate again about viewer p at once (call it when a payment arrived). The
// check goes in the class of first checks, not behind the refused peers' queue: a viewer that
// was refused until it paid is the one whose check matters most.
func (s *Seller) Recheck(p peer.ID) {
	s.checks.vouch(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.byPeer[p] {
		ss.recheck()
	}
}

// Send sends an application message to viewer p on every session it has open.
func (s *Seller) Send(p peer.ID, msg []byte) error {
	if len(msg) > wire.MaxApp {
		return fmt.Errorf("replicate: app message of %d bytes is over the %d byte limit", len(msg), wire.MaxApp)
	}
	s.mu.Lock()
	var targets []*sellerSession
	for ss := range s.byPeer[p] {
		targets = append(targets, ss)
	}
	s.mu.Unlock()
	if len(targets) == 0 {
		return fmt.Errorf("replicate: viewer %s: %w", p, ErrNoSession)
	}
	for _, ss := range targets {
		if err := ss.queueApp(msg); err != nil {
			return err
		}
	}
	return nil
}

// Farewell hands msg to every viewer with an open session as the session's last message: it
// writes it, closes its side of the stream and sends nothing more. It waits, until ctx ends,
// for each session to have ended (the viewer, having read to the end, hangs up): a stream
// reset right after the write could lose what the viewer had not read yet. It is a last word
// before Close, such as a broadcaster saying the stream ended. A session whose message queue
// is full is passed over (overflow policy: its viewer does not get the message).
func (s *Seller) Farewell(ctx context.Context, msg []byte) error {
	if len(msg) > wire.MaxApp {
		return fmt.Errorf("replicate: app message of %d bytes is over the %d byte limit", len(msg), wire.MaxApp)
	}
	s.mu.Lock()
	targets := make([]*sellerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		targets = append(targets, ss)
	}
	s.mu.Unlock()
	var waits []*sellerSession
	for _, ss := range targets {
		select {
		case ss.ctrl <- item{app: append([]byte(nil), msg...), last: true}:
			waits = append(waits, ss)
		default:
		}
	}
	for _, ss := range waits {
		select {
		case <-ss.ctx.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Viewers lists the peers with an open session.
func (s *Seller) Viewers() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer.ID, 0, len(s.byPeer))
	for p := range s.byPeer {
		out = append(out, p)
	}
	return out
}

// Stats returns what was exchanged with viewer p so far.
func (s *Seller) Stats(p peer.ID) PeerStats {
	s.mu.Lock()
	c := s.stats[p]
	s.mu.Unlock()
	if c == nil {
		return PeerStats{}
	}
	return PeerStats{BytesSent: c.sent.Load(), BytesReceived: c.recv.Load(), Blocks: c.blocks.Load(),
		BlockBytes: c.blockBytes.Load(), Proofs: c.proofs.Load()}
}

// BytesSent is what the seller sent its viewers so far, all of them together, framing
// included (a refused peer's redirect is not counted).
func (s *Seller) BytesSent() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, c := range s.stats {
		n += c.sent.Load()
	}
	return n
}

// Close stops serving, ends every session and waits for their goroutines.
func (s *Seller) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cfg.Host.RemoveStreamHandler(wire.Protocol)
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Seller) handle(str network.Stream) {
	p := str.Conn().RemotePeer()
	if !s.opens.allow(p) {
		// A viewer runs one session at a time and opens the next only after a backoff; a
		// peer opening streams in a loop gets them reset before any session starts.
		_ = str.Reset()
		if s.opens.firstRefusal(p) {
			s.log.Info("a peer opens streams too fast; they are reset", "peer", p)
		}
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = str.Reset()
		return
	}
	if s.cfg.MaxViewers > 0 && !s.servingLocked(p) && s.viewersLocked() >= s.cfg.MaxViewers && !s.makeRoomLocked() {
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.turnAway(str, p)
		}()
		return
	}
	c := s.stats[p]
	if c == nil {
		c = &peerCounters{}
		s.stats[p] = c
	}
	// A viewer runs one session at a time: a new one from the same peer replaces the older
	// (a stale session after an unclean disconnect, or a client opening several streams),
	// which would otherwise be served and billed alongside it.
	for old := range s.byPeer[p] {
		old.stop()
	}
	ss := newSellerSession(s, str, c)
	s.sessions[ss] = struct{}{}
	if s.byPeer[p] == nil {
		s.byPeer[p] = map[*sellerSession]struct{}{}
	}
	s.byPeer[p][ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		err := ss.run()
		s.mu.Lock()
		delete(s.sessions, ss)
		delete(s.byPeer[p], ss)
		last := len(s.byPeer[p]) == 0
		if last {
			delete(s.byPeer, p)
			delete(s.stats, p)
		}
		s.mu.Unlock()
		if last {
			s.cfg.Host.ConnManager().Unprotect(p, protectTag)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Info("viewer session ended", "viewer", p, "err", err)
		}
	}()
}
