package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// Dialer reaches a seller; *p2p.Node implements it.
type Dialer interface {
	Host() host.Host
	// Connect reaches the peer at the given addresses, else through the DHT.
	Connect(ctx context.Context, info peer.AddrInfo) error
	// WaitDirect waits for a direct (not relayed) connection.
	WaitDirect(ctx context.Context, p peer.ID) error
}

// ViewerConfig configures a Viewer.
type ViewerConfig struct {
	Dialer Dialer
	// Seller is the seller's peer ID and addresses from the card. The session is only ever
	// opened with this peer ID (libp2p's Noise handshake authenticates it).
	Seller peer.AddrInfo
	// Feed is a reader created with the feed key from the card; every block is verified
	// against it before it is stored.
	Feed ViewerFeed
	// Live asks the seller to push each new block as it is appended.
	Live bool
	// OnAccess is told each access decision of the seller (allowed, free, refused and why).
	OnAccess func(wire.Access)
	// OnApp receives application messages from the seller.
	OnApp func(msg []byte)
	// OnBlock is called after block index was verified and stored, with its bytes (the
	// player can use them without reading the feed again; they stay valid after the call).
	// It runs on the session's verify loop: keep it short.
	OnBlock func(index uint64, data []byte)
	// OnFork is called when the seller's feed has moved to a new fork (its machine lost
	// appends in a power loss, see feed.ForkOnPowerLoss) while this viewer holds blocks of
	// the old one, which may differ from what the seller signs from now on. It returns a new,
	// empty reader of the same feed key; the viewer goes on with it at once (the old one is
	// the caller's to keep, for what was watched, or to remove). The fork is the seller's
	// claim until the new reader verifies it. Without OnFork, Run ends with ErrForked.
	// (It returns a Feed, which a *feed.Feed is, for callers written against it.)
	OnFork func(fork uint64) (Feed, error)
	// OnStatus is told the seller's signed length and newest sync point.
	OnStatus func(wire.Status)
	// OnInvalid is told when a session ended because the peer sent data that does not
	// verify against the feed key (ErrInvalidData), before the viewer reconnects. A relay
	// that lies can be dropped for good here (stream/swarm does).
	OnInvalid func(err error)
	// Backoff bounds the reconnect delays. Defaults: 200 ms doubling to 10 s, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// MaxInflight bounds the blocks requested and not yet received. Default 1024, asked for
	// in ranges of at most 256 blocks (at most 4 ranges in flight).
	MaxInflight uint64
	// IdleTimeout ends a session that has received nothing for this long (a stalled seller,
	// or one that sends a frame's bytes one at a time); the viewer then reconnects. Sellers
	// send a status at least every 2 × SellerConfig.KeepAlive when they have nothing else to
	// send. Default 30 s.
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultIdleTimeout is ViewerConfig.IdleTimeout's default: three of the seller's default
// keep-alive intervals.
const DefaultIdleTimeout = 3 * DefaultKeepAlive

// ErrStalled ends a session on which nothing arrived for ViewerConfig.IdleTimeout.
var ErrStalled = errors.New("the seller stopped answering")

// Viewer downloads a seller's feed, reconnecting with backoff until its context ends.
type Viewer struct {
	cfg ViewerConfig
	log *slog.Logger

	mu      sync.Mutex
	feed    ViewerFeed // the reader in use: cfg.Feed, then what OnFork gave
	sess    *viewerSession
	sessC   chan struct{} // closed and replaced when sess changes
	access  wire.Access
	status  wire.Status
	changed chan struct{} // closed and replaced when a block is stored or a range ends
	stored  atomic.Uint64 // blocks verified and stored by this viewer
	nsess   atomic.Uint64 // sessions established
	unlive  atomic.Bool   // SetLive(false): a Live viewer asks for no pushes for now
}

// NewViewer makes a viewer; Run connects it.
func NewViewer(cfg ViewerConfig) (*Viewer, error) {
	if cfg.Dialer == nil || cfg.Feed == nil || cfg.Seller.ID == "" {
		return nil, errors.New("replicate: a viewer needs a dialer, a feed and the seller's peer ID")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Viewer{cfg: cfg, log: cfg.Logger.With("component", "viewer", "seller", cfg.Seller.ID),
		feed: cfg.Feed, sessC: make(chan struct{}), changed: make(chan struct{})}, nil
}

// Run connects to the seller and keeps the session up, reconnecting with exponential backoff
// after failures, until ctx ends. It returns ctx's error, or an error that reconnecting cannot
// fix: the seller proved a new fork and there is no OnFork (ErrForked), or OnFork failed. Even
// a seller that sent invalid data is retried, with backoff.
func (v *Viewer) Run(ctx context.Context) error {
	backoff := v.cfg.MinBackoff
	for {
		start := time.Now()
		err := v.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fe *forkError
		if errors.As(err, &fe) {
			if v.cfg.OnFork == nil {
				return fmt.Errorf("replicate: %w (fork %d); this viewer cannot follow it", ErrForked, fe.fork)
			}
			nf, ferr := v.cfg.OnFork(fe.fork)
			if ferr != nil {
				return fmt.Errorf("replicate: start again on the seller's new fork %d: %w", fe.fork, ferr)
			}
			if nf == nil || nf.Key() != v.Feed().Key() || nf.Length() != 0 {
				return errors.New("replicate: OnFork must return a new, empty reader of the same feed key")
			}
			v.log.Warn("the seller's feed moved to a new fork; starting again on it", "fork", fe.fork)
			v.mu.Lock()
			v.feed = nf
			v.mu.Unlock()
			v.notify()
			backoff = v.cfg.MinBackoff
			continue
		}
		if time.Since(start) > 30*time.Second {
			backoff = v.cfg.MinBackoff
		}
		v.log.Info("disconnected from the seller; reconnecting", "err", err, "in", backoff)
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		backoff = min(2*backoff, v.cfg.MaxBackoff)
	}
}

// forkError ends a session whose seller announced a newer fork than the viewer's reader.
type forkError struct{ fork uint64 }

func (e *forkError) Error() string {
	return fmt.Sprintf("the seller's feed is at fork %d, newer than the blocks held", e.fork)
}

// Feed is the reader the viewer stores into: the configured one, or after the seller moved
// to a new fork the one OnFork gave.
func (v *Viewer) Feed() ViewerFeed {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.feed
}

// Access is the seller's last access decision.
func (v *Viewer) Access() wire.Access {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.access
}

// Status is the seller's last announced signed length and sync point.
func (v *Viewer) Status() wire.Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.status
}

// Connected reports whether a session is up.
func (v *Viewer) Connected() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sess != nil
}

// Send sends an application message to the seller.
func (v *Viewer) Send(msg []byte) error {
	if len(msg) > wire.MaxApp {
		return fmt.Errorf("replicate: app message of %d bytes is over the %d byte limit", len(msg), wire.MaxApp)
	}
	v.mu.Lock()
	s := v.sess
	v.mu.Unlock()
	if s == nil {
		return fmt.Errorf("replicate: %w", ErrNoSession)
	}
	return s.write(wire.TApp, func(b []byte) ([]byte, error) { return append(b, msg...), nil })
}

// SetLive turns a Live viewer's pushes off and on again: a viewer that paused asks the seller
// to stop pushing each new block (so it is neither sent nor, on a paid stream, charged
// blocks nobody plays), and asks again when it plays. Blocks it wants meanwhile it asks for
// with Fetch. It holds for later sessions too; a viewer made without Live ignores it.
func (v *Viewer) SetLive(live bool) {
	if !v.cfg.Live || v.unlive.Swap(!live) == !live {
		return
	}
	v.mu.Lock()
	s := v.sess
	v.mu.Unlock()
	if s != nil {
		if err := s.sendStatus(); err != nil {
			v.log.Debug("cannot tell the seller to follow the live edge or not", "live", live, "err", err)
		}
	}
}

func (v *Viewer) setSession(s *viewerSession) {
	v.mu.Lock()
	v.sess = s
	close(v.sessC)
	v.sessC = make(chan struct{})
	v.mu.Unlock()
}

func (v *Viewer) notify() {
	v.mu.Lock()
	close(v.changed)
	v.changed = make(chan struct{})
	v.mu.Unlock()
}

// session runs one connection to the seller until it fails or ctx ends.
func (v *Viewer) session(ctx context.Context) error {
	d := v.cfg.Dialer
	seller := v.cfg.Seller
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h := d.Host()
	// Fast path: dial the card's addresses directly and open the stream without waiting for
	// libp2p's identify exchange (it runs alongside). Anything else (stale addresses, a
	// relayed connection) goes through the dialer: DHT lookup, waiting for a direct
	// connection.
	if h.Network().Connectedness(seller.ID) != network.Connected && len(seller.Addrs) > 0 {
		h.Peerstore().AddAddrs(seller.ID, seller.Addrs, peerstore.TempAddrTTL)
		_, _ = h.Network().DialPeer(cctx, seller.ID)
	}
	if h.Network().Connectedness(seller.ID) != network.Connected {
		if err := d.Connect(cctx, seller); err != nil {
			return fmt.Errorf("reach the seller: %w", err)
		}
		if err := d.WaitDirect(cctx, seller.ID); err != nil {
			return err
		}
	}
	str, err := openStream(cctx, h, seller.ID)
	if err != nil {
		return fmt.Errorf("open a replication stream: %w", err)
	}
	if got := str.Conn().RemotePeer(); got != seller.ID {
		_ = str.Reset()
		return fmt.Errorf("%w: stream is with %s, not the seller %s", ErrProtocol, got, seller.ID)
	}
	s := &viewerSession{v: v, f: v.Feed(), str: str, w: wire.NewWriter(str), ranges: map[uint64]*pending{}}
	sctx, stop := context.WithCancel(ctx)
	resetDone := make(chan struct{})
	defer func() { stop(); <-resetDone }()
	go func() { // ends with the session: the stream is reset and the goroutine waited for
		defer close(resetDone)
		<-sctx.Done()
		_ = str.Reset()
	}()
	if err := s.sendStatus(); err != nil {
		return fmt.Errorf("send status: %w", err)
	}
	v.nsess.Add(1)
	v.setSession(s)
	defer func() {
		v.setSession(nil)
		s.closeRanges()
		v.notify()
	}()
	// SetLive from here on finds the session and tells the seller; one made since the status
	// above read the flag is told now.
	if err := s.resendLive(); err != nil {
		return fmt.Errorf("send status: %w", err)
	}
	err = s.run(sctx)
	if errors.Is(err, io.EOF) {
		err = errors.New("the seller closed the stream")
	}
	if errors.Is(err, ErrInvalidData) || errors.Is(err, ErrProtocol) {
		v.log.Warn("dropping the seller's connection", "err", err)
		_ = d.Host().Network().ClosePeer(seller.ID)
	}
	if errors.Is(err, ErrInvalidData) && v.cfg.OnInvalid != nil {
		v.cfg.OnInvalid(err)
	}
	return err
}

// localFailure tells a failure of our own feed (closed, disk) from data that did not verify.
func localFailure(err error) bool {
	return errors.Is(err, feed.ErrClosed) || errors.Is(err, feed.ErrStorage)
}

// openStream opens a replication stream on the direct connection to p, negotiating the
// protocol lazily (with the first bytes written) instead of after identify, as
// host.NewStream would.
func openStream(ctx context.Context, h host.Host, p peer.ID) (network.Stream, error) {
	s, err := h.Network().NewStream(network.WithNoDial(ctx, "replication"), p)
	if err != nil {
		return nil, err
	}
	if err := s.SetProtocol(wire.Protocol); err != nil {
		s.Reset()
		return nil, err
	}
	return &lazyStream{Stream: s, rw: msmux.NewMSSelect(s, protocol.ID(wire.Protocol))}, nil
}

// lazyStream is a stream whose reads and writes go through multistream's lazy negotiation.
type lazyStream struct {
	network.Stream
	rw io.ReadWriter
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.rw.Write(b) }

type pending struct {
	start, end uint64
	done       atomic.Bool // the seller ended the range (or the session ended)
	notHere    atomic.Bool // set before done: the source said it does not hold part of it
}

type viewerSession struct {
	v   *Viewer
	f   ViewerFeed // the reader for this session's life
	str network.Stream

	wmu      sync.Mutex
	w        *wire.Writer
	sentLive bool // the live flag of the last status written (under wmu)

	mu     sync.Mutex
	nextID uint64
	ranges map[uint64]*pending // ranges asked for and not finished

	// early is the live push received ahead of its signature, held unverified and unused
	// until the TSignature that completes it (handler goroutine only). Overflow policy: one
	// is held; a newer one replaces it, and a refusal drops it.
	early *feed.Proof
	// forkCheck is the id of the request for the signed state of a newer fork the seller
	// announced (0: none); live data is set aside until the answer (handler goroutine only).
	forkCheck uint64
	// batch holds verified-to-be proofs (live pushes and range data) while more frames wait
	// behind them, so that they are verified and stored together (feed.VerifyBatch: one
	// signature check and one write for the lot); batchBytes is their frames' share of the
	// byte budget, given back once they are stored. Overflow policy: at verifyBatch proofs
	// the batch is verified before the next frame is handled (handler goroutine only).
	batch      []*feed.Proof
	batchBytes int
	budget     *byteBudget // the run loop's frame budget, which batchBytes return to
	// heldStatus is the newest status that came behind the batch, handled once the batch
	// is stored (handler goroutine only).
	heldStatus *wire.Status
}

// verifyBatch caps the proofs a viewer verifies together. A batch only forms when frames
// queue up behind a proof (the viewer is behind), and each frame of it is already within
// the byte budget.
const verifyBatch = 32

// sendStatus tells the seller what this viewer holds and whether it follows the live edge now.
// The live flag is read under the write lock, so the last status written carries the newest.
func (s *viewerSession) sendStatus() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.statusLocked()
}

func (s *viewerSession) statusLocked() error {
	live := s.v.cfg.Live && !s.v.unlive.Load()
	st := wire.Status{Length: s.f.Length()}
	if live {
		st.Flags |= wire.StatusLive | wire.StatusEarly
	}
	if err := s.writeLocked(wire.TStatus, st.AppendBinary); err != nil {
		return err
	}
	s.sentLive = live
	return nil
}

// resendLive sends the status again when the live flag changed since the last status went
// out: a SetLive made while the session's first status was on its way, before the session
// was registered where SetLive finds it, is not lost.
func (s *viewerSession) resendLive() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if live := s.v.cfg.Live && !s.v.unlive.Load(); live == s.sentLive {
		return nil
	}
	return s.statusLocked()
}

func (s *viewerSession) write(t wire.Type, fill func([]byte) ([]byte, error)) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(t, fill)
}

func (s *viewerSession) writeLocked(t wire.Type, fill func([]byte) ([]byte, error)) error {
	// A seller (or relay) that keeps sending but stops reading would block the write for
	// ever, and with it the goroutine that wrote (the handler, a Fetch, Send): a write
	// gets IdleTimeout, like a read, and ends the session when it runs out.
	_ = s.str.SetWriteDeadline(time.Now().Add(s.v.cfg.IdleTimeout))
	if err := s.w.Frame(t, fill); err != nil {
		return err
	}
	return s.w.Flush()
}

func (s *viewerSession) closeRanges() {
	s.mu.Lock()
	for _, p := range s.ranges {
		p.done.Store(true)
	}
	s.mu.Unlock()
}

type frame struct {
	t    wire.Type
	body []byte
}

// frameQueue and frameQueueBytes bound the frames read and not yet handled: the reader
// (network, decryption) runs ahead of the handler (verification, storage) by at most this
// many frames and this many bytes (or one frame, if a single frame is larger), then waits
// (overflow policy: back-pressure to the seller through the stream's flow control).
const (
	frameQueue      = 32
	frameQueueBytes = 8 << 20
)

// byteBudget bounds the bytes of frames between the reader and the handler.
type byteBudget struct {
	mu     sync.Mutex
	cond   sync.Cond
	used   int
	max    int
	closed bool
}

func newByteBudget(max int) *byteBudget {
	b := &byteBudget{max: max}
	b.cond.L = &b.mu
	return b
}

// acquire waits until n more bytes fit (a frame always fits when nothing is held) and takes
// them; it returns false once the budget is closed.
func (b *byteBudget) acquire(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && b.used > 0 && b.used+n > b.max {
		b.cond.Wait()
	}
	if b.closed {
		return false
	}
	b.used += n
	return true
}

func (b *byteBudget) release(n int) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Signal()
}

func (b *byteBudget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// run reads frames on one goroutine and handles them, in order, on this one.
func (s *viewerSession) run(ctx context.Context) error {
	f := s.f
	r := wire.NewReader(s.str, wire.MaxFrame(f.MaxBlockSize()))
	frames := make(chan frame, frameQueue)
	budget := newByteBudget(frameQueueBytes)
	s.budget = budget
	rerr := make(chan error, 1)
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	idle := s.v.cfg.IdleTimeout
	go func() {
		defer close(frames)
		var armed time.Time
		for {
			// The read deadline is moved on at most six times a window, so it is never
			// nearer than 5/6 of IdleTimeout after the last frame.
			if now := time.Now(); now.Sub(armed) > idle/6 {
				_ = s.str.SetReadDeadline(now.Add(idle))
				armed = now
			}
			t, body, err := r.Next()
			if err != nil {
				var ne net.Error
				if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
					err = fmt.Errorf("%w: nothing arrived for %v", ErrStalled, idle)
				}
				if errors.Is(err, wire.ErrFrameTooBig) || errors.Is(err, wire.ErrMalformed) {
					err = fmt.Errorf("%w: %w", ErrProtocol, err)
				}
				rerr <- err
				return
			}
			if !budget.acquire(len(body)) {
				rerr <- context.Canceled
				return
			}
			select {
			case frames <- frame{t, body}:
			case <-hctx.Done():
				rerr <- hctx.Err()
				return
			}
		}
	}()
	for fr := range frames {
		var err error
		if len(s.batch) > 0 && fr.t != wire.TData && fr.t != wire.TEarly && fr.t != wire.TSignature && fr.t != wire.TStatus {
			// Anything else may read the feed's state: store what came before it first (a
			// status waits for the batch on its own, see handle).
			err = s.flush()
		}
		if err == nil {
			held := len(s.batch)
			err = s.handle(fr.t, fr.body)
			if len(s.batch) > held {
				s.batchBytes += len(fr.body) // given back by flush
			} else {
				budget.release(len(fr.body))
			}
		} else {
			budget.release(len(fr.body))
		}
		if err == nil && len(s.batch) > 0 && (len(frames) == 0 || len(s.batch) >= verifyBatch) {
			err = s.flush()
		}
		if err != nil {
			// What came before the failing frame is stored, as it would have been one by one.
			_ = s.flush()
			stop()
			budget.close()
			_ = s.str.Reset()
			for range frames {
			}
			<-rerr
			return err
		}
	}
	if err := s.flush(); err != nil {
		<-rerr
		return err
	}
	return <-rerr
}

func (s *viewerSession) handle(t wire.Type, body []byte) error {
	f := s.f
	{
		switch t {
		case wire.TStatus:
			st, err := wire.DecodeStatus(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if len(s.batch) > 0 {
				// The seller follows each push with a status: on the same fork it is handled
				// once the proofs before it are stored (a newer one replaces it), so that a
				// viewer that is behind still verifies its backlog together. Another fork's
				// goes through at once: live data after it is set aside (forkCheck).
				if h := f.Head(); h.Length == 0 || st.Fork == h.Fork {
					s.heldStatus = &st
					return nil
				}
				if err := s.flush(); err != nil {
					return err
				}
			}
			return s.status(st)
		case wire.TAccess:
			a, err := wire.DecodeAccess(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if a.State == wire.Refused {
				s.early = nil // the seller will not complete it
			}
			s.v.mu.Lock()
			s.v.access = a
			s.v.mu.Unlock()
			if s.v.cfg.OnAccess != nil {
				s.v.cfg.OnAccess(a)
			}
			s.v.notify()
		case wire.TData:
			tg, err := wire.DecodeTagged(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			p, err := feed.DecodeProof(tg.Payload, f.MaxBlockSize())
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidData, err)
			}
			if s.forkCheck != 0 {
				if tg.ID == s.forkCheck {
					if err := s.flush(); err != nil {
						return err
					}
					return s.checkFork(p)
				}
				// Anything else is the new fork's too: a live push, or a range asked before the
				// viewer knew (Fetch asks again at once after a reconnect). It is set aside;
				// the session ends at the fork proof and Fetch asks again from the new reader.
				return nil
			}
			s.batch = append(s.batch, p)
		case wire.TEarly:
			if !s.v.cfg.Live {
				return fmt.Errorf("%w: early data to a viewer that did not ask for it", ErrProtocol)
			}
			p, err := feed.DecodeProof(body, f.MaxBlockSize())
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidData, err)
			}
			if p.Block == nil || p.Upgrade == nil || len(p.Upgrade.Signature) != 0 {
				return fmt.Errorf("%w: early data must be a block with an unsigned upgrade", ErrProtocol)
			}
			s.early = p
			if s.forkCheck != 0 {
				s.early = nil // a live push on the fork being checked
			}
		case wire.TSignature:
			sg, err := wire.DecodeSignature(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			p := s.early
			if p == nil {
				if s.forkCheck != 0 {
					return nil // completes a live push set aside during the fork check
				}
				return fmt.Errorf("%w: a signature with no early data to complete", ErrProtocol)
			}
			s.early = nil
			// The signature is for the tree the proof reaches: Start+Length, or the seller's
			// longer length when it appended while making the proof and sent the additional
			// nodes that reach it (Hypercore's upgrade with additional nodes). The signature's
			// check over that tree decides; the length only has to be one the proof can reach.
			if reach := p.Upgrade.Start + p.Upgrade.Length; sg.Fork != p.Fork || sg.Length < reach ||
				(sg.Length > reach && len(p.Upgrade.AdditionalNodes) == 0) {
				return fmt.Errorf("%w: the signature is for fork %d length %d, the early data for fork %d length %d",
					ErrProtocol, sg.Fork, sg.Length, p.Fork, p.Upgrade.Start+p.Upgrade.Length)
			}
			p.Upgrade.Signature = sg.Sig
			s.batch = append(s.batch, p)
		case wire.TNoData:
			nd, err := wire.DecodeNoData(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if s.forkCheck != 0 && nd.ID == s.forkCheck {
				// The seller cannot prove the fork it announced (or will not while this
				// viewer is refused): keep what is held; the next session asks again.
				s.forkCheck = 0
				if s.v.Access().State == wire.Refused {
					return nil
				}
				return fmt.Errorf("%w: the seller announced a new fork it cannot prove: %s", ErrProtocol, nd.Reason)
			}
			s.mu.Lock()
			if p := s.ranges[nd.ID]; p != nil {
				p.notHere.Store(nd.Reason == reasonNotHere)
				p.done.Store(true)
				delete(s.ranges, nd.ID)
			}
			s.mu.Unlock()
			s.v.notify()
		case wire.TApp:
			msg, err := wire.DecodeApp(body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if s.v.cfg.OnApp != nil {
				s.v.cfg.OnApp(msg)
			}
		default:
			return fmt.Errorf("%w: a seller may not send %s messages", ErrProtocol, t)
		}
	}
	return nil
}

// askForkProof asks the seller for the signed state its status announced on a newer fork.
func (s *viewerSession) askForkProof(st wire.Status) error {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	s.forkCheck, s.early = id, nil
	req := feed.Request{Fork: st.Fork, Upgrade: &feed.UpgradeRequest{Start: 0, Length: st.Length}, Manifest: true}
	return s.write(wire.TRequest, func(b []byte) ([]byte, error) { return wire.AppendTagged(b, id, req.AppendBinary) })
}

// checkFork ends the session for a new reader (Run calls OnFork) once the seller proved,
// with its signature, a state on a newer fork than the one held.
func (s *viewerSession) checkFork(p *feed.Proof) error {
	s.forkCheck = 0
	fork, _, err := s.f.CheckFork(p)
	if err != nil {
		return fmt.Errorf("%w: the seller's proof of its new fork: %w", ErrInvalidData, err)
	}
	if fork <= s.f.Head().Fork {
		return fmt.Errorf("%w: the seller announced a new fork but proved fork %d", ErrProtocol, fork)
	}
	return &forkError{fork: fork}
}

// status handles the seller's status: a newer fork is checked before anything is given
// up, and the viewer's callers see the seller's signed length and sync point.
func (s *viewerSession) status(st wire.Status) error {
	if h := s.f.Head(); h.Length > 0 && st.Fork != h.Fork {
		if st.Fork < h.Fork {
			return fmt.Errorf("%w: the seller's fork %d is older than the %d already verified", ErrProtocol, st.Fork, h.Fork)
		}
		// A status is not signed: ask for the new fork's signed state and check it
		// before giving up what is held (checkFork). Until then live data, which
		// belongs to the new fork, is set aside.
		if s.forkCheck == 0 && st.Length > 0 {
			if err := s.askForkProof(st); err != nil {
				return err
			}
		}
	}
	s.v.mu.Lock()
	s.v.status = st
	s.v.mu.Unlock()
	if s.v.cfg.OnStatus != nil {
		s.v.cfg.OnStatus(st)
	}
	return nil
}

// flush verifies the batch's proofs from the seller against the feed key, stores them, and
// hands their blocks on; their frames' bytes go back to the budget.
func (s *viewerSession) flush() error {
	if s.batchBytes > 0 {
		defer func() {
			s.budget.release(s.batchBytes)
			s.batchBytes = 0
		}()
	}
	if len(s.batch) == 0 {
		return nil
	}
	n, err := s.f.VerifyBatch(s.batch)
	stored := 0
	for _, p := range s.batch[:n] {
		if p.Block != nil {
			stored++
			if s.v.cfg.OnBlock != nil {
				s.v.cfg.OnBlock(p.Block.Index, p.Block.Value)
			}
		}
	}
	clear(s.batch)
	s.batch = s.batch[:0]
	if stored > 0 {
		s.v.stored.Add(uint64(stored))
		s.v.notify()
	}
	held := s.heldStatus
	s.heldStatus = nil
	if err != nil {
		if localFailure(err) {
			// Our own storage failed: not the seller's fault.
			return fmt.Errorf("store verified data: %w", err)
		}
		return fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	if held != nil {
		return s.status(*held)
	}
	return nil
}

// askRange asks the seller for the blocks of [start, end).
func (s *viewerSession) askRange(start, end uint64) (*pending, error) {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	p := &pending{start: start, end: end}
	s.ranges[id] = p
	s.mu.Unlock()
	r := wire.Range{ID: id, Start: start, End: end, FromLength: s.f.Length()}
	if err := s.write(wire.TRange, r.AppendBinary); err != nil {
		return nil, err
	}
	return p, nil
}

// Fetch downloads blocks [start, end) that are not stored yet and returns when all are
// stored, verified. It keeps at most MaxInflight blocks requested at once, survives
// reconnects (asking again only for what is still missing), and waits while access is
// refused. end past the seller's length waits for those blocks to be appended. A source that
// answers two rounds in a row that it does not hold the same first missing block, below the
// length it announced (a relaying viewer holds the stream from when it joined), ends the call
// with ErrNotHeld, so the caller can ask another.
func (v *Viewer) Fetch(ctx context.Context, start, end uint64) error {
	const chunk = 256
	var sess *viewerSession
	var asked []*pending
	next := start
	var roundStored uint64
	notHere, notHereRounds, notHereAt := false, 0, uint64(0)
	for {
		// Take the notification channels before looking at the feed, so that nothing
		// stored in between goes unnoticed.
		v.mu.Lock()
		cur, sessC, changed, access, f := v.sess, v.sessC, v.changed, v.access, v.feed
		v.mu.Unlock()
		for start < end && f.Has(start) {
			start++
		}
		if start >= end {
			return nil
		}
		if cur != sess {
			sess, asked, next = cur, nil, start
		}
		// Forget finished ranges; go round again once everything asked has finished.
		inflight := uint64(0)
		live := asked[:0]
		for _, p := range asked {
			if !p.done.Load() {
				inflight += p.end - p.start
				live = append(live, p)
			} else if p.notHere.Load() {
				notHere = true
			}
		}
		asked = live
		var idle <-chan time.Time
		if len(asked) == 0 && next >= end {
			// Every range asked has ended and blocks are still missing (not appended yet, or
			// the seller stopped): ask again, after a pause if the last round brought nothing.
			next = start
			// The same first missing block said not held twice in a row: ask elsewhere. (A
			// live viewer stores pushed blocks meanwhile, so progress is this range's own.)
			if notHere && start < v.Status().Length && (notHereRounds == 0 || start == notHereAt) {
				if notHereRounds, notHereAt = notHereRounds+1, start; notHereRounds >= 2 {
					return fmt.Errorf("%w: blocks %d to %d", ErrNotHeld, start, end-1)
				}
			} else {
				notHereRounds = 0
			}
			notHere = false
			if n := v.stored.Load(); n == roundStored {
				idle = time.After(100 * time.Millisecond)
			} else {
				roundStored = n
			}
		}
		if idle != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-idle:
			case <-sessC:
			}
			continue
		}
		refused := access.State == wire.Refused
		for sess != nil && !refused && next < end && inflight < v.cfg.MaxInflight {
			for next < end && f.Has(next) {
				next++
			}
			if next >= end {
				break
			}
			e := next + 1
			for e < end && e-next < chunk && !f.Has(e) {
				e++
			}
			p, err := sess.askRange(next, e)
			if err != nil {
				break // the session is failing; wait for the next
			}
			asked = append(asked, p)
			inflight += e - next
			next = e
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-sessC:
		}
	}
}
