package replicate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// SellerConfig configures a Seller.
type SellerConfig struct {
	Host host.Host
	Feed Feed
	// Gate decides who gets blocks; nil makes the stream free for all.
	Gate Gate
	// Clock for deadlines; nil is the system clock.
	Clock Clock
	// OnApp receives application messages from viewers with their authenticated peer ID.
	// It runs on the viewer's read loop: hand long work to another goroutine.
	OnApp func(from peer.ID, msg []byte)
	// MaxLiveLag is how far (in blocks) a live viewer may fall behind before it skips ahead
	// to the newest sync point instead of receiving every block. Default 90 (3 s at 30 fps).
	MaxLiveLag uint64
	// StallTimeout ends a session whose viewer takes no bytes for this long (a stalled or
	// vanished viewer must not hold its session and buffers for ever). Default 30 s.
	StallTimeout time.Duration
	Logger       *slog.Logger
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
	stats    map[peer.ID]*peerCounters
	closed   bool

	head  atomic.Pointer[feed.Head] // newest head, as the feed announced it
	cache proofCache

	checks *limiter // gate checks, all viewers together
	apps   *limiter // application messages, all viewers together
}

// Rates that bound what viewers can make the seller's wallet do (peer IDs cost nothing, so
// besides the per-session bounds there are bounds for all viewers together).
const (
	checkInterval  = 500 * time.Millisecond // a refused viewer's gate checks, at most one per
	checkRate      = 100                    // gate checks per second, all viewers
	appRate        = 200                    // app messages per second, all viewers
	sessionAppRate = 10                     // app messages per second, one session
)

// proofCache shares encoded live proofs among sessions: after an append every viewer at the
// live edge needs the same block with the same upgrade, so it is made and encoded once. The
// first session to ask makes it; sessions asking meanwhile wait for that one (single flight)
// instead of making it again. It holds the last few (each holds a block; eviction is round
// robin). Only the seller's own live pushes (request id 0) use it: a viewer's requests carry
// ids from 1, so a viewer cannot put entries in it.
type proofCache struct {
	mu      sync.Mutex
	entries [4]*cachedProof
	next    int
}

type cachedProof struct {
	key   reqKey
	ready chan struct{} // closed once made (or failed)
	// Set before ready is closed, read only after.
	length uint64 // the signed length the proof's upgrade reaches
	enc    []byte // feed.Proof encoding (without the signature when early)
	block  *feed.BlockProof
	early  *feed.PendingProof // for early entries: hands out the signature once durable
	err    error
}

type reqKey struct {
	fork, index, nodes, start, upLength   uint64
	hasBlock, hasUpgrade, manifest, early bool
}

func keyOf(r feed.Request) reqKey {
	k := reqKey{fork: r.Fork, manifest: r.Manifest}
	if r.Block != nil {
		k.hasBlock, k.index, k.nodes = true, r.Block.Index, r.Block.Nodes
	}
	if r.Upgrade != nil {
		k.hasUpgrade, k.start, k.upLength = true, r.Upgrade.Start, r.Upgrade.Length
	}
	return k
}

// lookup returns the entry for k, and whether the caller is the one to make it (it then sets
// its fields and closes ready); everyone else waits for ready.
func (c *proofCache) lookup(k reqKey) (*cachedProof, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e != nil && e.key == k {
			return e, false
		}
	}
	e := &cachedProof{key: k, ready: make(chan struct{})}
	c.entries[c.next%len(c.entries)] = e
	c.next++
	return e, true
}

// drop removes a failed entry so that the next lookup tries again.
func (c *proofCache) drop(e *cachedProof) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if c.entries[i] == e {
			c.entries[i] = nil
		}
	}
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
		cfg.Clock = SystemClock{}
	}
	if cfg.MaxLiveLag == 0 {
		cfg.MaxLiveLag = 90
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = defaultStallTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Seller{cfg: cfg, log: cfg.Logger.With("component", "seller"),
		sessions: map[*sellerSession]struct{}{}, stats: map[peer.ID]*peerCounters{},
		maxData: wire.MaxFrame(cfg.Feed.MaxBlockSize()),
		checks:  newLimiter(checkRate, 2*checkRate), apps: newLimiter(appRate, 2*appRate)}
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

// Recheck asks the gate again about viewer p at once (call it when a payment arrived).
func (s *Seller) Recheck(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		if ss.peer == p {
			ss.recheck()
		}
	}
}

// RecheckAll asks the gate again about every connected viewer.
func (s *Seller) RecheckAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
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
	for ss := range s.sessions {
		if ss.peer == p {
			targets = append(targets, ss)
		}
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

// Viewers lists the peers with an open session.
func (s *Seller) Viewers() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[peer.ID]bool{}
	var out []peer.ID
	for ss := range s.sessions {
		if !seen[ss.peer] {
			seen[ss.peer] = true
			out = append(out, ss.peer)
		}
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = str.Reset()
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
	for old := range s.sessions {
		if old.peer == p {
			old.stop()
		}
	}
	ss := newSellerSession(s, str, c)
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		err := ss.run()
		s.mu.Lock()
		delete(s.sessions, ss)
		last := true
		for o := range s.sessions {
			if o.peer == p {
				last = false
				break
			}
		}
		if last {
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

// protectTag marks connections to allowed viewers so that the connection manager never trims
// them.
const protectTag = "dazaar-replicate"

// item is one unit of work queued for a session's send loop.
type item struct {
	req    *feed.Request
	rng    *wire.Range
	id     uint64
	app    []byte
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
	apps  *limiter      // app messages from this viewer

	mu       sync.Mutex
	allow    Allowance
	decided  bool
	timer    Timer
	follow   bool   // viewer follows the live edge
	early    bool   // viewer takes live pushes as early data + signature
	vlenHint uint64 // viewer's length from its last status
	hinted   bool
}

func newSellerSession(s *Seller, str network.Stream, c *peerCounters) *sellerSession {
	ss := &sellerSession{s: s, str: str, peer: str.Conn().RemotePeer(), c: c,
		reqs: make(chan item, reqQueue), ctrl: make(chan item, ctrlQueue),
		live: make(chan struct{}, 1), gateC: make(chan struct{}, 1),
		apps: newLimiter(sessionAppRate, 2*sessionAppRate)}
	ss.ctx, ss.stop = context.WithCancel(s.ctx)
	return ss
}

// shared returns the proof cache's entry for k: made by fill (which sets its fields, e.err on
// failure) when this session asks first, else made by another session and waited for.
func (ss *sellerSession) shared(k reqKey, fill func(*cachedProof)) (*cachedProof, error) {
	e, mine := ss.s.cache.lookup(k)
	if mine {
		fill(e)
		if e.err != nil {
			ss.s.cache.drop(e)
		}
		close(e.ready)
		return e, nil
	}
	if err := ss.waitFor(e.ready); err != nil {
		return nil, err
	}
	return e, nil
}

// waitFor waits until ready is closed or the session ends.
func (ss *sellerSession) waitFor(ready <-chan struct{}) error {
	var done <-chan struct{}
	if ss.ctx != nil {
		done = ss.ctx.Done()
	}
	select {
	case <-ready:
		return nil
	case <-done:
		return ss.ctx.Err()
	}
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

// gateLoop asks the gate on connect and whenever a recheck is wanted (payment, deadline).
func (ss *sellerSession) gateLoop() error {
	ss.recheck()
	var refused bool
	var lastCheck time.Time
	for {
		select {
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		case <-ss.gateC:
		}
		// A refused peer asks again only at a bounded rate (peer IDs cost nothing, and each
		// check reaches the wallet); a payment's recheck is at most checkInterval late.
		if refused {
			select {
			case <-ss.ctx.Done():
				return ss.ctx.Err()
			case <-time.After(time.Until(lastCheck.Add(checkInterval))):
			}
		}
		if err := ss.s.checks.wait(ss.ctx); err != nil {
			return err
		}
		lastCheck = time.Now()
		a, err := ss.s.cfg.Gate.Check(ss.ctx, ss.peer)
		if ss.ctx.Err() != nil {
			return ss.ctx.Err()
		}
		now := ss.s.cfg.Clock.Now()
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
		if msg.State == wire.Allowed {
			// Re-ask at the deadline: the gate may know of a top-up by then, and if not the
			// viewer is told. allowed() already stops blocks at the deadline itself.
			ss.timer = ss.s.cfg.Clock.AfterFunc(a.Until.Sub(now), ss.recheck)
		}
		ss.mu.Unlock()
		ss.s.log.Debug("gate", "viewer", ss.peer, "access", describeAllowance(a, now))
		refused = msg.State == wire.Refused
		if refused {
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
	r := wire.NewReader(ss.str, wire.MaxViewerFrame) // viewers send only small messages
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
			if !ss.apps.allow() || !ss.s.apps.allow() {
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

// sendLoop is the only writer of the stream.
type sendLoop struct {
	ss      *sellerSession
	w       *wire.Writer
	last    uint64 // bytes written when last counted
	vlen    uint64 // the viewer's verified length as far as this session knows
	lenSet  bool
	rng     *wire.Range // range being streamed
	next    uint64      // its next block
	prev    uint64      // the block the range sent last
	chain   bool        // prev was sent by this range, so the viewer holds its path
	started bool        // the first access decision was sent
	// recent holds the blocks pushed live most recently, so that a range asked for at the
	// same time does not send them twice.
	recent [256]uint64
	nrec   int
	// pending are the data messages in the buffer, reported (stats, Gate.Delivered) once
	// they reach the stream.
	pending  []delivery
	deadline time.Time // the stream's write deadline as last set
}

func (l *sendLoop) pushed(i uint64) bool {
	for _, j := range l.recent[:min(l.nrec, len(l.recent))] {
		if j == i+1 {
			return true
		}
	}
	return false
}

func (l *sendLoop) remember(i uint64) {
	l.recent[l.nrec%len(l.recent)] = i + 1
	l.nrec++
}

func (ss *sellerSession) sendLoop() error {
	l := &sendLoop{ss: ss, w: wire.NewWriter(ss.str)}
	// Tell the viewer the signed length at once: the live flow and a late joiner's first
	// requests start from it.
	if err := l.status(); err != nil {
		return err
	}
	for {
		// Control messages (access, app) go first, then the live edge, then requests.
		select {
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		case it := <-ss.ctrl:
			if err := l.control(it); err != nil {
				return err
			}
			continue
		default:
		}
		if !l.started {
			// Nothing but control messages before the gate has answered once.
			if err := l.flush(); err != nil {
				return err
			}
			select {
			case <-ss.ctx.Done():
				return ss.ctx.Err()
			case it := <-ss.ctrl:
				if err := l.control(it); err != nil {
					return err
				}
			}
			continue
		}
		select {
		case <-ss.live:
			if err := l.pushLive(); err != nil {
				return err
			}
			continue
		default:
		}
		if l.rng == nil {
			select {
			case it := <-ss.reqs:
				if err := l.request(it); err != nil {
					return err
				}
				continue
			default:
			}
		}
		if l.rng != nil {
			if err := l.rangeStep(); err != nil {
				return err
			}
			continue
		}
		if err := l.flush(); err != nil {
			return err
		}
		select {
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		case it := <-ss.ctrl:
			if err := l.control(it); err != nil {
				return err
			}
		case <-ss.live:
			if err := l.pushLive(); err != nil {
				return err
			}
		case it := <-ss.reqs:
			if err := l.request(it); err != nil {
				return err
			}
		}
	}
}

// frame writes a control frame (status, access, no-data, app): it may go out even after a
// viewer's deadline, but not the data before it in the buffer, which writing it may flush.
func (l *sendLoop) frame(t wire.Type, fill func([]byte) ([]byte, error)) error {
	data := len(l.pending) > 0
	if data && !l.ss.allowed() {
		return errDeadline
	}
	l.arm(data)
	err := l.w.Frame(t, fill)
	l.settle()
	return err
}

// settle counts what has reached the stream since it last looked: bytes, and the data
// messages whose last byte left the buffer. Only then is the gate told of their blocks
// (billing), so a connection that drops with blocks in the buffer is not billed for them.
func (l *sendLoop) settle() {
	out := l.w.BytesWritten() - uint64(l.w.Buffered())
	if out <= l.last {
		return
	}
	c := l.ss.c
	c.sent.Add(out - l.last)
	l.last = out
	n := 0
	for _, d := range l.pending {
		if d.end > out {
			break
		}
		n++
		if d.proof {
			c.proofs.Add(1)
		}
		if d.block {
			c.blocks.Add(1)
			c.blockBytes.Add(uint64(d.size))
			l.ss.s.cfg.Gate.Delivered(l.ss.peer, d.index, d.size)
		}
	}
	l.pending = append(l.pending[:0], l.pending[n:]...)
}

// errDeadline ends a session whose buffer holds data written before the viewer's deadline
// that has passed since: those bytes may not leave, and a frame cannot be taken back.
var errDeadline = errors.New("the viewer's paid time ran out with blocks still in the send buffer")

func (l *sendLoop) flush() error {
	if l.w.Buffered() == 0 {
		return nil
	}
	data := len(l.pending) > 0
	if data && !l.ss.allowed() {
		return errDeadline
	}
	l.arm(data)
	err := l.w.Flush()
	l.settle()
	return err
}

const defaultStallTimeout = 30 * time.Second

// arm sets the stream's write deadline before bytes may reach it: StallTimeout from now, and
// for data under a timed allowance no later than the viewer's deadline (converted from the
// seller's clock to the real one), so that a write blocked on flow control cannot deliver
// blocks after it. The deadline is set again only when it moves earlier or by more than a
// few seconds.
func (l *sendLoop) arm(data bool) {
	str := l.ss.str
	if str == nil {
		return
	}
	now := time.Now()
	d := now.Add(l.ss.s.cfg.StallTimeout)
	if data {
		l.ss.mu.Lock()
		a := l.ss.allow
		l.ss.mu.Unlock()
		if !a.Free && !a.Until.IsZero() {
			if u := now.Add(a.Until.Sub(l.ss.s.cfg.Clock.Now())); u.Before(d) {
				d = u
			}
		}
	}
	if l.deadline.IsZero() || d.Before(l.deadline) || d.Sub(l.deadline) > l.ss.s.cfg.StallTimeout/6 {
		_ = str.SetWriteDeadline(d)
		l.deadline = d
	}
}

func (l *sendLoop) status() error {
	h := l.ss.s.cfg.Feed.Head()
	st := wire.Status{Fork: h.Fork, Length: h.Length, SyncPoint: h.SyncPoint}
	if h.HasSyncPoint {
		st.Flags |= wire.StatusHasSyncPoint
	}
	if err := l.frame(wire.TStatus, st.AppendBinary); err != nil {
		return err
	}
	return l.flush()
}

func (l *sendLoop) control(it item) error {
	var err error
	switch {
	case it.access != nil:
		l.started = true
		err = l.frame(wire.TAccess, it.access.AppendBinary)
		if err == nil && it.access.State == wire.Refused {
			// Whatever was being streamed stops here; the viewer asks again after a top-up.
			if l.rng != nil {
				err = l.noData(l.rng.ID, it.access.Reason)
				l.rng = nil
			}
		}
	case it.app != nil:
		err = l.frame(wire.TApp, func(b []byte) ([]byte, error) { return append(b, it.app...), nil })
	}
	if err != nil {
		return err
	}
	return l.flush()
}

// viewerLength is the viewer's verified length: what this session last upgraded it to, or
// what it said in its status.
func (l *sendLoop) viewerLength() uint64 {
	if !l.lenSet {
		l.ss.mu.Lock()
		if l.ss.hinted {
			l.vlen, l.lenSet = l.ss.vlenHint, true
		}
		l.ss.mu.Unlock()
	}
	return l.vlen
}

func (l *sendLoop) noData(id uint64, reason string) error {
	return l.frame(wire.TNoData, wire.NoData{ID: id, Reason: reason}.AppendBinary)
}

func (l *sendLoop) refusal() string {
	l.ss.mu.Lock()
	defer l.ss.mu.Unlock()
	if !l.ss.allow.Until.IsZero() {
		return reasonExpired
	}
	return reasonNoTime
}

// send makes the proof for req and writes it, if the viewer may have it. After a request
// with an upgrade the viewer's length is the signed length the proof reached (the feed may
// have grown since the caller looked at it).
func (l *sendLoop) send(id uint64, req feed.Request) (bool, error) {
	f := l.ss.s.cfg.Feed
	if !l.ss.allowed() {
		return false, l.noData(id, l.refusal())
	}
	var (
		p      *feed.Proof
		block  *feed.BlockProof
		length uint64
		enc    []byte // cached encoding, for live pushes
		err    error
	)
	if id == 0 {
		e, err := l.ss.shared(keyOf(req), func(e *cachedProof) {
			var p *feed.Proof
			if p, e.length, e.err = f.ProofLength(req); e.err == nil {
				e.block = p.Block
				e.enc, e.err = p.AppendBinary(nil)
			}
		})
		if err != nil {
			return false, err
		}
		if e.err != nil {
			return false, l.noData(id, "The seller cannot answer this request: "+e.err.Error())
		}
		block, length, enc = e.block, e.length, e.enc
	} else {
		if p, length, err = f.ProofLength(req); err != nil {
			return false, l.noData(id, "The seller cannot answer this request: "+err.Error())
		}
		block = p.Block
	}
	// The deadline may have passed while the proof was made.
	if !l.ss.allowed() {
		return false, l.noData(id, l.refusal())
	}
	l.arm(true)
	if enc != nil {
		var hdr [binary.MaxVarintLen64]byte
		err = l.w.FrameParts(wire.TData, binary.AppendUvarint(hdr[:0], id), enc)
	} else {
		err = l.w.Frame(wire.TData, func(b []byte) ([]byte, error) {
			return wire.AppendTagged(b, id, p.AppendBinary)
		})
	}
	if err != nil {
		return false, err
	}
	d := delivery{end: l.w.BytesWritten(), proof: true}
	if block != nil {
		d.block, d.index, d.size = true, block.Index, len(block.Value)
	}
	l.pending = append(l.pending, d)
	l.settle()
	if req.Upgrade != nil {
		l.vlen, l.lenSet = length, true
	}
	if id == 0 && block != nil {
		l.remember(block.Index)
	}
	return true, nil
}

// sendEarly sends a live push as early data: the block and proof at once, without the
// signature, then the signature as soon as the feed has synced the state it signs. The block
// crosses the network while the seller's disk syncs, and the viewer verifies it on the
// signature's arrival; a signature never leaves before the disk has what it signs. When the
// sync is already done (a viewer served late) it is an ordinary push.
func (l *sendLoop) sendEarly(req feed.Request) (bool, error) {
	ss := l.ss
	if !ss.allowed() {
		return false, l.noData(0, l.refusal())
	}
	k := keyOf(req)
	k.early = true
	e, err := ss.shared(k, func(e *cachedProof) {
		var pp *feed.PendingProof
		if pp, e.err = ss.s.cfg.Feed.ProofPending(req); e.err == nil {
			e.early, e.block, e.length = pp, pp.Proof.Block, pp.Length
			e.enc, e.err = pp.Proof.AppendBinary(nil)
		}
	})
	if err != nil {
		return false, err
	}
	if e.err != nil {
		return false, l.noData(0, "The seller cannot answer this request: "+e.err.Error())
	}
	if e.early.Durable() || e.block == nil {
		return l.send(0, req)
	}
	if !ss.allowed() {
		return false, l.noData(0, l.refusal())
	}
	l.arm(true)
	if err := l.w.FrameParts(wire.TEarly, nil, e.enc); err != nil {
		return false, err
	}
	// The block's bytes are billed once they reach the stream, whether or not the signature
	// follows (a viewer can keep bytes it could not verify).
	l.pending = append(l.pending, delivery{end: l.w.BytesWritten(), block: true, index: e.block.Index, size: len(e.block.Value)})
	if err := l.flush(); err != nil {
		return false, err
	}
	// The send loop waits for the disk here (a sync of a few milliseconds at most; Close's
	// stream reset ends the session right after it).
	sig, err := e.early.Signature()
	if err != nil {
		return false, l.noData(0, "The seller cannot answer this request: "+err.Error())
	}
	// The deadline may have passed during the sync: then the block stays unverifiable.
	if !ss.allowed() {
		return false, l.noData(0, l.refusal())
	}
	l.arm(true)
	if err := l.w.Frame(wire.TSignature, wire.Signature{Fork: e.early.Proof.Fork, Length: e.length, Sig: sig}.AppendBinary); err != nil {
		return false, err
	}
	l.pending = append(l.pending, delivery{end: l.w.BytesWritten(), proof: true})
	l.settle()
	l.vlen, l.lenSet = e.length, true
	l.remember(e.block.Index)
	return true, nil
}

// delivery is a data message written to the buffer and not yet to the stream.
type delivery struct {
	end   uint64 // BytesWritten after its last byte
	block bool   // carries block index's size bytes: billed once they reached the stream
	index uint64
	size  int
	proof bool // completes a proof (a data message, or the signature after early data)
}

// request answers one request or starts streaming a range.
func (l *sendLoop) request(it item) error {
	if it.rng != nil {
		if !l.ss.allowed() {
			return l.noData(it.id, l.refusal())
		}
		l.rng, l.next, l.chain = it.rng, it.rng.Start, false
		if !l.lenSet && it.rng.FromLength > 0 {
			l.vlen, l.lenSet = it.rng.FromLength, true
		}
		return nil
	}
	_, err := l.send(it.id, *it.req)
	return err
}

// rangeStep sends the next block of the range being streamed (first the upgrade that proves
// it, when the viewer's length does not cover it).
func (l *sendLoop) rangeStep() error {
	f := l.ss.s.cfg.Feed
	r := l.rng
	vlen := l.viewerLength()
	if r.End > vlen {
		n := f.Length()
		if n > vlen {
			ok, err := l.send(r.ID, feed.Request{Fork: f.Head().Fork, Upgrade: &feed.UpgradeRequest{Start: vlen, Length: n - vlen},
				Manifest: vlen == 0})
			if err != nil || !ok {
				l.rng = nil
				return err
			}
			vlen = l.vlen
		}
		if r.End > vlen {
			r.End = vlen // the rest does not exist yet
		}
	}
	if l.next >= r.End {
		l.rng = nil
		return l.noData(r.ID, "") // end of range
	}
	i := l.next
	l.next++
	if l.pushed(i) {
		l.chain = false
		return nil // already pushed live in this session
	}
	// The first block of a run carries its path up to its root. Each next block in order
	// needs only the levels below the node that the previous blocks' paths left with the
	// viewer (Hypercore's missingNodes for a sequential download): trailing zeros of i.
	nodes := levelsToRoot(i, vlen)
	if l.chain && i > 0 && i == l.prev+1 {
		nodes = min(nodes, uint64(bits.TrailingZeros64(i)))
	}
	ok, err := l.send(r.ID, feed.Request{Block: &feed.BlockRequest{Index: i, Nodes: nodes}})
	l.prev, l.chain = i, ok && err == nil
	if err != nil || !ok {
		l.rng = nil
	}
	return err
}

// pushLive sends a live viewer what appeared since its length: every block when it is at most
// MaxLiveLag behind, else the newest block and the newest sync point (skip ahead).
func (l *sendLoop) pushLive() error {
	ss := l.ss
	ss.mu.Lock()
	follow := ss.follow
	ss.mu.Unlock()
	if !follow || !ss.allowed() {
		return nil
	}
	head := ss.s.currentHead()
	vlen := l.viewerLength()
	n := head.Length
	if n <= vlen {
		return nil
	}
	// Announce the new signed length with the newest sync point once the proofs below are
	// written (the status goes after them, so the viewer has verified what it announces).
	defer func() {
		if l.vlen > vlen {
			st := wire.Status{Fork: head.Fork, Length: min(head.Length, l.vlen), SyncPoint: head.SyncPoint}
			if head.HasSyncPoint && head.SyncPoint < st.Length {
				st.Flags |= wire.StatusHasSyncPoint
			} else {
				st.SyncPoint = 0
			}
			_ = l.frame(wire.TStatus, st.AppendBinary)
		}
	}()
	// A viewer at length 0 may know only the feed key from the card: in manifest mode the
	// first upgrade carries the manifest (Manifest is ignored by compat-mode feeds).
	if n-vlen <= ss.s.cfg.MaxLiveLag {
		// Block vlen with the upgrade to the newest length (the viewer holds the peaks of
		// vlen, so one block needs no extra hashes), then the rest with their paths.
		req := feed.Request{Fork: head.Fork, Block: &feed.BlockRequest{Index: vlen},
			Upgrade: &feed.UpgradeRequest{Start: vlen, Length: n - vlen}, Manifest: vlen == 0}
		ss.mu.Lock()
		early := ss.early
		ss.mu.Unlock()
		var ok bool
		var err error
		if early {
			ok, err = l.sendEarly(req)
		} else {
			ok, err = l.send(0, req)
		}
		if err != nil || !ok {
			return err
		}
		for i := vlen + 1; i < l.vlen; i++ {
			if ok, err := l.send(0, feed.Request{Block: &feed.BlockRequest{Index: i, Nodes: levelsToRoot(i, l.vlen)}}); err != nil || !ok {
				return err
			}
		}
		return nil
	}
	// Skip ahead: the newest block proves the new length; the newest sync point lets the
	// viewer start playing from there. A feed without sync points gives nothing to start
	// from, so the viewer gets only the signed length and asks for what it wants.
	req := feed.Request{Fork: head.Fork, Upgrade: &feed.UpgradeRequest{Start: vlen, Length: n - vlen}, Manifest: vlen == 0}
	if head.HasSyncPoint {
		req.Block = &feed.BlockRequest{Index: n - 1}
	}
	ok, err := l.send(0, req)
	if err != nil || !ok {
		return err
	}
	sent := n - 1 // the newest block sent, if any
	if l.vlen > n {
		// The feed grew while the proof was made: the upgrade reached further than the head
		// looked at. Send the newest block and sync point of that length.
		if fresh := ss.s.cfg.Feed.Head(); fresh.Length == l.vlen {
			head = fresh
		}
		if head.HasSyncPoint && head.Length == l.vlen {
			sent = l.vlen - 1
			if ok, err := l.send(0, feed.Request{Block: &feed.BlockRequest{Index: sent, Nodes: levelsToRoot(sent, l.vlen)}}); err != nil || !ok {
				return err
			}
		}
	}
	if head.HasSyncPoint && head.SyncPoint < l.vlen && head.SyncPoint != sent && head.SyncPoint >= vlen {
		_, err = l.send(0, feed.Request{Block: &feed.BlockRequest{Index: head.SyncPoint, Nodes: levelsToRoot(head.SyncPoint, l.vlen)}})
	}
	return err
}

// limiter is a token bucket: rate tokens a second, at most burst saved. A nil limiter
// allows everything.
type limiter struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// take takes a token and returns how long to wait before using it.
func (l *limiter) take() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// allow takes a token if one is there now.
func (l *limiter) allow() bool {
	if l == nil {
		return true
	}
	if l.take() > 0 {
		l.mu.Lock()
		l.tokens++ // not used: give it back
		l.mu.Unlock()
		return false
	}
	return true
}

// wait takes a token, waiting for it unless ctx ends first.
func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	d := l.take()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
