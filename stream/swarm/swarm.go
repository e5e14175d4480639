// Package swarm spreads a free stream through its viewers. Each viewer holds one source it
// receives the stream from (the seller or another viewer) and up to two standby sources it
// watches, and serves what it verified to a bounded number of viewers of its own. Sources tell
// each other what they hold (Have messages on HaveProtocol) and are found from the seller's
// redirects, from the peers a viewer is linked with and on the DHT under the feed's discovery
// key. Every block is verified against the feed key whoever sends it: a source whose data
// fails verification is dropped and never used again.
//
// Paid streams are not relayed: their viewers use replicate.Viewer, or a Swarm with Relay off.
package swarm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/swarm/swarmwire"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/routing"
)

// DefaultMaxUpstreams bounds the sources a viewer keeps: one it receives the stream from and
// two standbys it is linked with (their Have messages say how fresh they are, so a slow source
// is replaced by the freshest standby at once, without a search). More standbys would cost
// every source a link per viewer watching it for little gain; fewer leave no choice when the
// source and one standby fail together.
const DefaultMaxUpstreams = 3

// Tuning.
const (
	defaultSlowLag  = 15                     // blocks (0.5 s at 30 a second) behind the freshest standby
	defaultSlowFor  = 500 * time.Millisecond // for this long, before the source is replaced
	stepEvery       = 200 * time.Millisecond
	connectGrace    = 3 * time.Second  // a source not connected this long is replaced
	maxSellerRetry  = 5 * time.Second  // the card's seller, unreachable, is tried again at least this often (see unreachableRetry)
	fullRetry       = 5 * time.Second  // a full source is tried again after this
	slowRetry       = 10 * time.Second // a replaced slow source waits this long
	overclaimHold   = 5 * time.Minute  // a source that delivered nothing of what its Have claimed: its claims are ignored this long
	maxStrikeShift  = 5                // slowRetry doubled at most this often per strike (10 s << 5 > overclaimHold; a larger shift overflows)
	minStandbyLink  = 10 * time.Second // a standby's link is kept at least this long (see standbys)
	switchGrace     = 2 * time.Second  // a new source is not judged slow before this
	orphanGrace     = 2 * connectGrace // a relay in use saying it has no source this long is left (it switches within connectGrace and a dial)
	maxCandidates   = 64               // known sources (overflow: the least useful is forgotten)
	maxBanned       = 4096             // banned peers remembered (overflow: the oldest is forgotten)
	maxDepth        = 32               // a source deeper than this is ignored (breaks loops)
	discoverEvery   = 30 * time.Second
	searchSoon      = 2 * time.Second // the DHT search's period while nothing is announced yet or no source sends
	provideEvery    = 10 * time.Minute
	discoverResults = 8
)

// Config configures a Swarm.
type Config struct {
	// Node reaches peers (*p2p.Node).
	Node replicate.Dialer
	// Routing finds and announces sources under the feed's discovery key (the node's DHT,
	// *p2p.Node's DHT()); nil skips the DHT (redirects, hints and links still find sources).
	Routing routing.ContentRouting
	// Feed is the reader created with the feed key from the card.
	Feed replicate.Feed
	// Seller is the card's seller, the first source tried.
	Seller peer.AddrInfo
	// Relay serves what was verified to other viewers (free streams only).
	Relay bool
	// MaxViewers bounds the viewers this relay serves (0: DefaultMaxViewers).
	MaxViewers int
	// MaxUpstreams bounds the sources kept (0: DefaultMaxUpstreams).
	MaxUpstreams int
	// Hints are further known sources (tried after the seller).
	Hints []peer.AddrInfo
	// SlowLag and SlowFor: a source that leaves this viewer more than SlowLag blocks behind
	// the freshest standby for SlowFor is replaced (defaults 15 blocks, 500 ms).
	SlowLag uint64
	SlowFor time.Duration
	// OnBlock, OnStatus, OnAccess, OnApp and OnFork are replicate.ViewerConfig's, whichever
	// source the data comes from. Refusals by full sources and redirects are handled here
	// and not passed on.
	OnBlock  func(index uint64, data []byte)
	OnStatus func(wire.Status)
	OnAccess func(wire.Access)
	OnApp    func(msg []byte)
	OnFork   func(fork uint64) (replicate.Feed, error)
	Logger   *slog.Logger
}

// Stats are a swarm's figures.
type Stats struct {
	Upstreams      int     // sources linked: the one in use and the standbys
	Active         peer.ID // the source in use ("" while looking for one)
	ActiveIsSeller bool
	Depth          uint8  // relay hops from the seller (1: served by the seller; NoDepth: no source)
	Downstreams    int    // viewers this relay serves
	RelayedBytes   uint64 // replication bytes this node sent (to its viewers)
	TurnedAway     uint64 // viewers this relay sent elsewhere because it was full
	Switches       uint64 // times the source changed
	LinksOpened    uint64 // Have links this viewer opened (to its source and standbys)
	Banned         int    // sources dropped for data that failed verification
}

type cand struct {
	info     peer.AddrInfo
	seller   bool
	retryAt  time.Time
	fails    int
	added    time.Time
	linking  bool
	lastUsed time.Time
	// overclaimed: until then, this source's Have claims are not believed. It was in use
	// and replaced as slow, having delivered nothing while claiming well more than this
	// viewer held (a relay may claim any length; its blocks are proved, its claims are not).
	overclaimed time.Time
	// strikes: visits in a row that delivered nothing while claiming well more (slowRetry).
	strikes int
}

// upstream is the source in use: a replicate.Viewer into the swarm's feed.
type upstream struct {
	id        peer.ID
	v         *replicate.Viewer
	cancel    context.CancelFunc
	done      chan struct{}
	err       error // Run's error, once done is closed
	started   time.Time
	lastUp    time.Time
	slowSince time.Time
	orphaned  time.Time // since when this relay has said it has no source (zero: it has one)
	lastLen   uint64    // our length when judge last looked
	lastGrow  time.Time // when judge last saw our length grow (or the source start)
	delivered bool      // our length grew while this source was in use
	refused   atomic.Bool
	invalid   atomic.Bool
	status    atomic.Pointer[wire.Status]
}

// Swarm is one viewer's part in spreading a free stream. Create it with New; Run runs it.
type Swarm struct {
	cfg  Config
	log  *slog.Logger
	disc [32]byte

	haves *haves
	wg    sync.WaitGroup
	wake  chan struct{} // coalescing: holds one
	// sellerFetch holds a token while a fetch from the seller runs (fetchFromSeller): one at a
	// time, the others wait.
	sellerFetch chan struct{}

	mu       sync.Mutex
	feed     *relayFeed
	srv      *Server
	restart  bool // the feed changed (fork): serve the new one
	cands    map[peer.ID]*cand
	banned   map[peer.ID]time.Time
	active   *upstream
	activeC  chan struct{} // closed and replaced when active changes
	depth    uint8
	lastGood uint8 // depth while the last source worked (to avoid picking our own viewers' viewers)
	fwd      []byte
	fatal    error

	switches atomic.Uint64
	nbanned  atomic.Int64
	running  atomic.Bool

	lastStep time.Time // when step last ran (Run's goroutine only)
}

// New checks cfg and makes a swarm; Run starts it.
func New(cfg Config) (*Swarm, error) {
	if cfg.Node == nil || cfg.Feed == nil || cfg.Seller.ID == "" {
		return nil, errors.New("swarm: a viewer needs a node, a feed and the seller's peer ID")
	}
	if cfg.MaxViewers <= 0 {
		cfg.MaxViewers = DefaultMaxViewers
	}
	if cfg.MaxUpstreams <= 0 {
		cfg.MaxUpstreams = DefaultMaxUpstreams
	}
	if cfg.SlowLag == 0 {
		cfg.SlowLag = defaultSlowLag
	}
	if cfg.SlowFor <= 0 {
		cfg.SlowFor = defaultSlowFor
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Swarm{cfg: cfg, log: cfg.Logger.With("component", "swarm"), disc: feed.DiscoveryKey(cfg.Feed.Key()),
		wake: make(chan struct{}, 1), sellerFetch: make(chan struct{}, 1), feed: newRelayFeed(cfg.Feed), cands: map[peer.ID]*cand{},
		banned: map[peer.ID]time.Time{}, activeC: make(chan struct{}), depth: NoDepth, lastGood: NoDepth}
	now := time.Now()
	s.cands[cfg.Seller.ID] = &cand{info: cfg.Seller, seller: true, added: now}
	for _, h := range cfg.Hints {
		if h.ID != "" && h.ID != cfg.Seller.ID {
			s.cands[h.ID] = &cand{info: h, added: now}
		}
	}
	return s, nil
}

// Feed is the reader in use (a new one after the seller's feed moved to a new fork).
func (s *Swarm) Feed() replicate.Feed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feed.Feed
}

func (s *Swarm) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the swarm until ctx ends: it serves (Relay), links with sources, receives the
// stream from the best one and replaces it when it is slow, full, gone or lying. It returns
// ctx's error, or an error that no source can fix (the feed moved to a new fork and OnFork
// is missing or failed).
func (s *Swarm) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("swarm: Run called twice")
	}
	h := s.cfg.Node.Host()
	hv := newHaves(h, s.disc, s.have, 4*s.cfg.MaxViewers+64, s.log)
	s.mu.Lock()
	s.haves = hv // set once, before any goroutine of Run reads it; Stats reads it under mu
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.stopActive()
		s.wg.Wait()
		s.mu.Lock()
		srv := s.srv
		s.srv = nil
		s.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
		s.haves.close()
	}()
	if s.cfg.Relay {
		if err := s.serve(); err != nil {
			return err
		}
	}
	if s.cfg.Routing != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.discover(ctx)
		}()
	}
	t := time.NewTicker(stepEvery)
	defer t.Stop()
	for {
		if err := s.step(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-s.wake:
		}
	}
}

// serve starts (or after a fork restarts) the relay server on the current feed.
func (s *Swarm) serve() error {
	s.mu.Lock()
	old, f := s.srv, s.feed
	s.srv = nil
	s.mu.Unlock()
	if old != nil {
		old.Close() // first: it removes the protocol handler the new one sets
	}
	srv, err := Serve(ServeConfig{Host: s.cfg.Node.Host(), Feed: f, MaxViewers: s.cfg.MaxViewers,
		Logger: s.cfg.Logger, depth: s.Depth, haves: s.haves, forward: s.Forwarded})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	return nil
}

// Forwarded is the app message last passed on with Forward, which each viewer that joins this
// relay is given (nil: none).
func (s *Swarm) Forwarded() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fwd
}

// Depth is this viewer's distance from the seller in relay hops (NoDepth: no source).
func (s *Swarm) Depth() uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.depth
}

// have is what this viewer tells linked peers.
func (s *Swarm) have() Have {
	s.mu.Lock()
	f, srv, d := s.feed, s.srv, s.depth
	s.mu.Unlock()
	hd := f.Feed.Head()
	h := Have{Fork: hd.Fork, Length: hd.Length, Depth: d}
	if srv != nil {
		h.Relay, h.Free = true, uint16(min(srv.Free(), 0xffff))
	}
	return h
}

// Stats returns the swarm's figures.
func (s *Swarm) Stats() Stats {
	s.mu.Lock()
	st := Stats{Depth: s.depth, Banned: int(s.nbanned.Load()), Switches: s.switches.Load()}
	if s.active != nil {
		st.Active = s.active.id
		st.ActiveIsSeller = s.active.id == s.cfg.Seller.ID
	}
	srv, hv := s.srv, s.haves
	s.mu.Unlock()
	if hv != nil {
		st.Upstreams, st.LinksOpened = len(hv.outbound()), hv.opened.Load()
	}
	if srv != nil {
		st.Downstreams = len(srv.Seller().Viewers())
		st.TurnedAway = srv.TurnedAway()
		// What our server sent its viewers: not our own requests upstream, which share the
		// protocol (and so its bandwidth counter).
		st.RelayedBytes = srv.Seller().BytesSent()
	}
	return st
}

// Status is the source's last announced signed length and sync point.
func (s *Swarm) Status() wire.Status {
	s.mu.Lock()
	u := s.active
	s.mu.Unlock()
	if u != nil {
		if st := u.status.Load(); st != nil {
			return *st
		}
	}
	return wire.Status{}
}

// Connected reports whether a source is sending the stream.
func (s *Swarm) Connected() bool {
	s.mu.Lock()
	u := s.active
	s.mu.Unlock()
	return u != nil && !u.refused.Load() && u.v.Connected()
}

// Send sends an application message to the source in use (the seller, when it is the source).
func (s *Swarm) Send(msg []byte) error {
	s.mu.Lock()
	u := s.active
	s.mu.Unlock()
	if u == nil {
		return fmt.Errorf("swarm: %w", replicate.ErrNoSession)
	}
	return u.v.Send(msg)
}

// Fetch downloads blocks [start, end) like replicate.Viewer.Fetch, from whichever source is
// in use (going on with the next one when the source changes). A relaying viewer holds the
// stream from when it joined: when the source in use says it does not hold the blocks
// (replicate.ErrNotHeld), they are asked of the seller on a connection of their own; a seller
// with no room for another viewer turns that away, and Fetch says so.
func (s *Swarm) Fetch(ctx context.Context, start, end uint64) error {
	for {
		s.mu.Lock()
		u, changed := s.active, s.activeC
		s.mu.Unlock()
		if u == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
				continue
			}
		}
		fctx, cancel := context.WithCancel(ctx)
		go func() { // ends with fctx, which this call cancels before it returns
			select {
			case <-changed:
				cancel()
			case <-fctx.Done():
			}
		}()
		err := u.v.Fetch(fctx, start, end)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if errors.Is(err, replicate.ErrNotHeld) {
			if u.id == s.cfg.Seller.ID {
				return err
			}
			if err := s.fetchFromSeller(ctx, start, end, changed); !errors.Is(err, errSourceChanged) {
				return err
			}
		}
	}
}

// errSourceChanged ends a fetch from the seller when the source in use changed meanwhile:
// Fetch asks the new one (perhaps the seller itself, whose live session a second session
// from this peer would replace).
var errSourceChanged = errors.New("the source in use changed")

// sellerFetchWait: a fetch from the seller that stores no block for this long ends.
const sellerFetchWait = 10 * time.Second

// fetchFromSeller fetches [start, end) from the seller on a session of its own, beside the
// source in use, and ends it. One at a time (the seller keeps one session per peer: two would
// replace each other); it ends with errSourceChanged when the source in use changes (changed
// is closed). The seller admits it as a viewer like any other: when it is full it turns it
// away, and the blocks are not available from anyone this swarm knows.
func (s *Swarm) fetchFromSeller(parent context.Context, start, end uint64, changed <-chan struct{}) error {
	select {
	case s.sellerFetch <- struct{}{}:
		defer func() { <-s.sellerFetch }()
	case <-changed:
		return errSourceChanged
	case <-parent.Done():
		return parent.Err()
	}
	// The select picks at random when the source changed while the token was free too: a
	// session opened now could replace the one the new source (the seller itself) runs.
	select {
	case <-changed:
		return errSourceChanged
	default:
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	idle := time.AfterFunc(sellerFetchWait, func() { cancel(context.DeadlineExceeded) })
	defer idle.Stop()
	turnedAway := errors.New("turned away")
	v, err := replicate.NewViewer(replicate.ViewerConfig{Dialer: s.cfg.Node, Seller: s.cfg.Seller, Feed: s.Feed(), Logger: s.cfg.Logger,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		OnBlock: func(i uint64, data []byte) {
			idle.Reset(sellerFetchWait)
			s.onBlock(i, data)
		},
		OnAccess: func(a wire.Access) {
			if a.State == wire.Refused {
				cancel(turnedAway)
			}
		}})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { // ends with ctx, which this call cancels before it returns
		defer close(done)
		select {
		case <-changed:
			cancel(errSourceChanged)
		case <-ctx.Done():
		}
	}()
	run := make(chan struct{})
	go func() { // ends with ctx, as above
		defer close(run)
		_ = v.Run(ctx)
	}()
	defer func() { cancel(nil); <-done; <-run }()
	s.log.Debug("the source in use does not hold these blocks; asking the seller", "from", start, "to", end)
	err = v.Fetch(ctx, start, end)
	if err == nil || parent.Err() != nil {
		return err
	}
	const held = "the viewers relaying this stream hold it only from when they joined, and the broadcaster"
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errSourceChanged):
		return errSourceChanged
	case errors.Is(cause, turnedAway):
		return fmt.Errorf("%w: blocks %d to %d: %s has no room for another viewer now", replicate.ErrNotHeld, start, end-1, held)
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("%w: blocks %d to %d: %s sent none of them for %v", replicate.ErrNotHeld, start, end-1, held, sellerFetchWait)
	}
	return err
}

// step looks at the source in use and the candidates, and changes source when it must.
func (s *Swarm) step(ctx context.Context) error {
	now := time.Now()
	s.mu.Lock()
	restart, fatal := s.restart, s.fatal
	s.restart = false
	u := s.active
	s.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if restart && s.cfg.Relay {
		if err := s.serve(); err != nil {
			return err
		}
		s.haves.poke()
	}
	if lost := pausedFor(s.lastStep, now); u != nil && lost > 0 {
		// This loop did not run for a while (the process was descheduled or starved):
		// what the source did not send meanwhile was not observed, so it does not count
		// against it. Else every viewer of a paused process judged its source stalled at
		// once on waking and dropped it together with the others.
		u.discount(lost)
	}
	s.lastStep = now
	if u != nil {
		if reason, retry, ban := s.judge(u, now); reason != "" {
			s.log.Debug("changing source", "source", u.id, "why", reason)
			s.stopActive()
			s.mu.Lock()
			banned := false
			if ban {
				banned = s.banLocked(u.id, now)
			} else if c := s.cands[u.id]; c != nil {
				c.retryAt = now.Add(retry)
			}
			s.mu.Unlock()
			if banned {
				s.haves.drop(u.id)
				_ = s.cfg.Node.Host().Network().ClosePeer(u.id)
			}
			if ctx.Err() == nil {
				s.switches.Add(1)
			}
			u = nil
		}
	}
	if u == nil && ctx.Err() == nil {
		if c := s.pick(now); c != nil {
			s.startActive(ctx, c, now)
		}
	}
	s.standbys(ctx, now)
	s.updateDepth()
	return nil
}

// pausedFor is how much of the time since the last step (zero: none yet) this loop was not
// running: the gap beyond two steps.
func pausedFor(last, now time.Time) time.Duration {
	if last.IsZero() {
		return 0
	}
	return max(now.Sub(last)-2*stepEvery, 0)
}

// discount moves the source's judging clocks forward by d, time that is not to count.
func (u *upstream) discount(d time.Duration) {
	for _, t := range []*time.Time{&u.started, &u.lastUp, &u.lastGrow, &u.slowSince, &u.orphaned} {
		if !t.IsZero() {
			*t = t.Add(d)
		}
	}
}

// unreachableRetry is how long a source that could not be reached fails times in a row waits
// before it is tried again: doubling from 2 s up to a minute, and for the card's seller up to
// maxSellerRetry, since a free stream's broadcaster that went away (a killed process, `live
// -resume`) comes back at the same address and the viewer may know no one else.
func unreachableRetry(fails int, seller bool) time.Duration {
	d := min(time.Duration(1)<<min(fails, 6)*time.Second, time.Minute)
	if seller {
		d = min(d, maxSellerRetry)
	}
	return d
}

// judge says why the source in use must go (empty: it stays), when to try it again, and
// whether it lied.
func (s *Swarm) judge(u *upstream, now time.Time) (string, time.Duration, bool) {
	select {
	case <-u.done:
		if u.err != nil && !errors.Is(u.err, context.Canceled) {
			s.mu.Lock()
			if s.fatal == nil {
				s.fatal = u.err
			}
			s.mu.Unlock()
		}
		return "its session ended", fullRetry, false
	default:
	}
	if u.invalid.Load() {
		return "it sent data that failed verification", 0, true
	}
	if u.refused.Load() {
		return "it is full", fullRetry, false
	}
	if u.v.Connected() {
		u.lastUp = now
		s.mu.Lock()
		if c := s.cands[u.id]; c != nil {
			c.fails, c.lastUsed = 0, now
		}
		s.mu.Unlock()
	} else if now.Sub(u.lastUp) > connectGrace {
		s.mu.Lock()
		fails := 0
		if c := s.cands[u.id]; c != nil {
			c.fails++
			fails = c.fails
		}
		s.mu.Unlock()
		return "it cannot be reached", unreachableRetry(fails, u.id == s.cfg.Seller.ID), false
	}
	// Orphaned: a relay whose own source is gone (the broadcaster stopped, or its chain
	// broke) keeps our session alive with keep-alives but will send nothing more; it goes
	// once it has said so for orphanGrace, and another source (or none) is looked for.
	if u.id != s.cfg.Seller.ID {
		if h, ok := s.haves.get(u.id); ok && h.Depth == NoDepth {
			if u.orphaned.IsZero() {
				u.orphaned = now
			} else if now.Sub(u.orphaned) >= orphanGrace {
				return "it lost its own source", fullRetry, false
			}
		} else {
			u.orphaned = time.Time{}
		}
	}
	// Slow: the freshest standby is well ahead of what this viewer holds. A source that
	// delivered and then sent nothing for SlowFor while a standby is that far ahead has
	// stalled and goes at once; one that sends but lags, or has not delivered yet (still
	// connecting), goes after SlowFor more, once past a new source's grace.
	mine := s.Feed().Length()
	if u.lastGrow.IsZero() {
		u.lastLen, u.lastGrow = mine, now
	} else if mine > u.lastLen {
		u.lastLen, u.lastGrow, u.delivered = mine, now, true
	}
	best, _ := s.freshest(u.id, false)
	ahead := best != nil && best.Length > mine+s.cfg.SlowLag
	if !ahead && now.Sub(u.lastGrow) >= s.cfg.SlowFor {
		// A source that has sent nothing for SlowFor is no better than a full standby well
		// ahead: visited, that one redirects to relays with free slots, which this viewer
		// may not know. Without this, a viewer whose relay stalled while every other source
		// it knew was full stayed on it for good (its keep-alives hold the session).
		best, _ = s.freshest(u.id, true)
		ahead = best != nil && best.Length > mine+s.cfg.SlowLag
	}
	if ahead && u.delivered && now.Sub(u.lastGrow) >= s.cfg.SlowFor {
		return "it stalled", s.slowRetry(u, mine, now), false
	}
	if ahead && now.Sub(u.started) > switchGrace {
		if u.slowSince.IsZero() {
			u.slowSince = now
		} else if now.Sub(u.slowSince) >= s.cfg.SlowFor {
			return "it is slow", s.slowRetry(u, mine, now), false
		}
	} else {
		u.slowSince = time.Time{}
	}
	return "", 0, false
}

// slowRetry is when a source replaced as slow is tried again, and whether its Have claims are
// still believed meanwhile. A relay that delivered nothing at all while its own Have claimed
// well more than this viewer holds (mine) is either lying or starved: an honest relay whose
// link or processor is loaded looks the same from here for a while. So its claims are
// disbelieved on evidence only:
//   - its own session said it holds no more than this viewer (its status contradicts its
//     Have): a lie, not believed for overclaimHold;
//   - it did the same on visits in a row (strikes): not believed for slowRetry, doubled per
//     strike up to overclaimHold.
//
// Otherwise one relay claiming a length it does not have would have every good source judged
// slow against it, the viewer switching to it and back again and again; and one honest relay
// slow to start under load (a new source has 2.5 s to deliver) would be shut out for minutes.
// A relay that delivered, however slowly, is only replaced, and its strikes are cleared.
func (s *Swarm) slowRetry(u *upstream, mine uint64, now time.Time) time.Duration {
	if u.id == s.cfg.Seller.ID {
		return slowRetry
	}
	h, ok := s.haves.get(u.id)
	claimed := ok && h.Length > mine+s.cfg.SlowLag
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cands[u.id]
	if c == nil {
		return slowRetry
	}
	if u.delivered || !claimed {
		c.strikes = 0
		return slowRetry
	}
	hold, why := time.Duration(0), ""
	if st := u.status.Load(); st != nil && st.Fork == h.Fork && st.Length <= mine {
		hold, why = overclaimHold, "its own session said it holds less"
	} else if c.strikes++; c.strikes >= 2 {
		hold, why = min(slowRetry<<min(c.strikes-1, maxStrikeShift), overclaimHold), "it sent nothing again"
	}
	if hold == 0 {
		return slowRetry
	}
	c.overclaimed = now.Add(hold)
	s.log.Info("a source claimed more of the stream than it sent; its claims are ignored for a while",
		"source", u.id, "claimed", h.Length, "held", mine, "why", why, "for", hold)
	return hold
}

// freshest is the linked standby (not except) that holds the most of our fork and relays;
// with full, standbys without free slots count too.
func (s *Swarm) freshest(except peer.ID, full bool) (*Have, peer.ID) {
	f := s.Feed()
	fork, length := f.Head().Fork, f.Length()
	var best *Have
	var id peer.ID
	for p, h := range s.haves.all() {
		// A standby that is full would only redirect us: it is no reason to leave a source
		// that sends (judge counts one when the source sends nothing).
		if p == except || !h.Relay || (h.Free == 0 && !full) || h.Depth >= maxDepth || (length > 0 && h.Fork != fork) || !s.usable(p) {
			continue
		}
		if best == nil || h.Length > best.Length {
			hh := h.Have
			best, id = &hh, p
		}
	}
	return best, id
}

// usable: a candidate we would take data from (known, not banned, its claims believed, not
// one of our viewers).
func (s *Swarm) usable(p peer.ID) bool {
	s.mu.Lock()
	c, banned, srv := s.cands[p], s.banned[p], s.srv
	overclaimed := c != nil && time.Now().Before(c.overclaimed)
	s.mu.Unlock()
	if c == nil || !banned.IsZero() || overclaimed {
		return false
	}
	return srv == nil || !slices.Contains(srv.Seller().Viewers(), p)
}

// pick chooses the best candidate to receive the stream from (standby: the best to watch).
// Order: not likely one of our own viewers' viewers (depth above ours when we last had a
// source), fresh (within SlowLag of the freshest), free slots, depth, latency.
func (s *Swarm) pick(now time.Time) *cand { return s.ranked(now, 1).first() }

type candList []*cand

func (l candList) first() *cand {
	if len(l) == 0 {
		return nil
	}
	return l[0]
}

// ranked lists usable candidates best first, at most n (n ≤ 0: all).
func (s *Swarm) ranked(now time.Time, n int) candList {
	f := s.Feed()
	fork, length := f.Head().Fork, f.Length()
	hv := s.haves.all()
	self := s.cfg.Node.Host().ID()
	s.mu.Lock()
	var downs []peer.ID
	if s.srv != nil {
		downs = s.srv.Seller().Viewers()
	}
	// A Have's length sets what counts as fresh only from a peer we would take data from
	// (usable: a known candidate, not banned, its claims believed, not one of our viewers)
	// and whose Have the ranking below would accept. Anyone may open a have link to us (a
	// banned peer coming back, our own viewers): one claim of a million blocks more from
	// such a link made every candidate look stale, so the ranking fell back on depth and
	// free slots and could take a stale source over the fresh one.
	best := length
	for p, h := range hv {
		c := s.cands[p]
		if c == nil || p == self || !s.banned[p].IsZero() || now.Before(c.overclaimed) || slices.Contains(downs, p) ||
			(length > 0 && h.Fork != fork) || h.Depth >= maxDepth || !h.Relay {
			continue
		}
		best = max(best, h.Length)
	}
	active := peer.ID("")
	if s.active != nil {
		active = s.active.id
	}
	lastGood := s.lastGood
	type scored struct {
		c                        *cand
		risk, fresh, free, depth int
		rtt                      time.Duration
	}
	var list []scored
	ps := s.cfg.Node.Host().Peerstore()
	for id, c := range s.cands {
		if id == active || id == self || now.Before(c.retryAt) || slices.Contains(downs, id) {
			continue
		}
		sc := scored{c: c, fresh: 1, free: 1, depth: 50}
		if c.seller {
			sc.depth = 0
		}
		if h, ok := hv[id]; ok {
			if (length > 0 && h.Fork != fork) || h.Depth >= maxDepth || (h.Depth == NoDepth && !c.seller) || !h.Relay {
				continue
			}
			sc.depth = int(h.Depth)
			sc.fresh = 0
			if h.Length+s.cfg.SlowLag < best {
				sc.fresh = 2
			}
			sc.free = 2
			if h.Free > 0 {
				sc.free = 0
			}
			if lastGood != NoDepth && int(h.Depth) > int(lastGood) {
				sc.risk = 1
			}
		}
		sc.rtt = ps.LatencyEWMA(id)
		if sc.rtt == 0 {
			sc.rtt = time.Second
		}
		list = append(list, sc)
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b scored) int {
		return cmp.Or(cmp.Compare(a.risk, b.risk), cmp.Compare(a.fresh, b.fresh), cmp.Compare(a.free, b.free),
			cmp.Compare(a.depth, b.depth), cmp.Compare(a.rtt, b.rtt))
	})
	out := make(candList, 0, len(list))
	for _, sc := range list {
		if n > 0 && len(out) == n {
			break
		}
		out = append(out, sc.c)
	}
	return out
}

// onBlock is every source's OnBlock: a verified block wakes this relay's viewers and goes to
// the owner's OnBlock.
func (s *Swarm) onBlock(i uint64, data []byte) {
	s.mu.Lock()
	f := s.feed
	s.mu.Unlock()
	f.arrived()
	if s.cfg.OnBlock != nil {
		s.cfg.OnBlock(i, data)
	}
}

// startActive starts receiving the stream from c.
func (s *Swarm) startActive(ctx context.Context, c *cand, now time.Time) {
	u := &upstream{id: c.info.ID, done: make(chan struct{}), started: now, lastUp: now}
	vc := replicate.ViewerConfig{Dialer: s.cfg.Node, Seller: c.info, Feed: s.Feed(), Live: true, Logger: s.cfg.Logger,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		OnBlock: s.onBlock,
		OnStatus: func(st wire.Status) {
			u.status.Store(&st)
			if st.Flags&wire.StatusHasSyncPoint != 0 {
				s.mu.Lock()
				f := s.feed
				s.mu.Unlock()
				f.sp.Store(st.SyncPoint + 1)
			}
			if s.cfg.OnStatus != nil {
				s.cfg.OnStatus(st)
			}
		},
		OnAccess: func(a wire.Access) {
			if a.State == wire.Refused {
				u.refused.Store(true)
				s.poke()
				return
			}
			if s.cfg.OnAccess != nil {
				s.cfg.OnAccess(a)
			}
		},
		OnApp:     func(msg []byte) { s.onApp(u, msg) },
		OnInvalid: func(error) { u.invalid.Store(true); s.poke() },
	}
	vc.OnFork = func(fork uint64) (replicate.Feed, error) {
		if s.cfg.OnFork == nil {
			return nil, fmt.Errorf("swarm: %w (fork %d)", replicate.ErrForked, fork)
		}
		nf, err := s.cfg.OnFork(fork)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.feed = newRelayFeed(nf)
		s.restart = true
		s.mu.Unlock()
		s.poke()
		return nf, nil
	}
	v, err := replicate.NewViewer(vc)
	if err != nil {
		s.log.Warn("cannot start a source", "source", c.info.ID, "err", err)
		return
	}
	u.v = v
	actx, cancel := context.WithCancel(ctx)
	u.cancel = cancel
	s.mu.Lock()
	s.active = u
	close(s.activeC)
	s.activeC = make(chan struct{})
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(u.done)
		u.err = v.Run(actx)
		s.poke()
	}()
	if !s.haves.linked(c.info.ID) {
		s.link(ctx, c)
	}
}

// stopActive ends the source in use and waits for it.
func (s *Swarm) stopActive() {
	s.mu.Lock()
	u := s.active
	s.active = nil
	if u != nil {
		close(s.activeC)
		s.activeC = make(chan struct{})
	}
	s.mu.Unlock()
	if u == nil {
		return
	}
	u.cancel()
	<-u.done
}

func (s *Swarm) onApp(u *upstream, msg []byte) {
	if swarmwire.IsRedirect(msg) {
		peers, err := swarmwire.DecodeRedirect(msg)
		if err != nil {
			s.log.Debug("unreadable redirect", "from", u.id, "err", err)
			return
		}
		s.learn(peers)
		s.poke()
		return
	}
	if s.cfg.OnApp != nil {
		s.cfg.OnApp(msg)
	}
}

// Forward passes an app message on to this relay's own viewers, and to each viewer that
// joins later (the newest message passed is kept for them). App messages are not signed:
// the caller passes on only what it checked against the feed, never a source's word as it
// came, so one lying relay cannot mislead every viewer downstream of it.
func (s *Swarm) Forward(msg []byte) {
	s.mu.Lock()
	s.fwd = append([]byte(nil), msg...)
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		for _, p := range srv.Seller().Viewers() {
			_ = srv.Seller().Send(p, msg) // best effort: a full control queue drops it
		}
	}
}

// learn adds sources named by a redirect or found on the DHT.
func (s *Swarm) learn(peers []peer.AddrInfo) {
	ps := s.cfg.Node.Host().Peerstore()
	self := s.cfg.Node.Host().ID()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range peers {
		if p.ID == "" || p.ID == self || !s.banned[p.ID].IsZero() {
			continue
		}
		if len(p.Addrs) > 0 {
			ps.AddAddrs(p.ID, p.Addrs, peerstore.RecentlyConnectedAddrTTL)
		}
		if c := s.cands[p.ID]; c != nil {
			if len(p.Addrs) > 0 {
				c.info.Addrs = p.Addrs
			}
			continue
		}
		if len(s.cands) >= maxCandidates {
			s.forgetOneLocked()
		}
		s.cands[p.ID] = &cand{info: p, added: now}
	}
}

// forgetOneLocked drops the candidate least worth keeping: not the seller, not in use, not
// linked; the one waiting longest to be retried, else the oldest.
func (s *Swarm) forgetOneLocked() {
	var worst *cand
	for _, c := range s.cands {
		if c.seller || (s.active != nil && c.info.ID == s.active.id) || s.haves.linked(c.info.ID) {
			continue
		}
		if worst == nil || c.retryAt.After(worst.retryAt) || (c.retryAt.Equal(worst.retryAt) && c.added.Before(worst.added)) {
			worst = c
		}
	}
	if worst != nil {
		delete(s.cands, worst.info.ID)
	}
}

// banLocked drops a source that sent data failing verification, for good, and reports
// whether it did (the caller then closes its links and connections, outside s.mu).
func (s *Swarm) banLocked(p peer.ID, now time.Time) bool {
	if p == s.cfg.Seller.ID {
		// The seller signs the feed: data from it that fails verification is a fault to
		// retry later, not a relay to drop.
		if c := s.cands[p]; c != nil {
			c.retryAt = now.Add(slowRetry)
		}
		return false
	}
	if len(s.banned) >= maxBanned {
		var oldest peer.ID
		var at time.Time
		for q, t := range s.banned {
			if oldest == "" || t.Before(at) {
				oldest, at = q, t
			}
		}
		delete(s.banned, oldest)
	}
	s.banned[p] = now
	delete(s.cands, p)
	s.nbanned.Add(1)
	s.log.Warn("dropped a source that sent data failing verification", "source", p)
	return true
}

// Banned reports whether p was dropped for sending data that failed verification.
func (s *Swarm) Banned(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.banned[p].IsZero()
}

// standbys keeps have links to the source in use and the best MaxUpstreams-1 others (a
// standby that fell out of the best is kept for minStandbyLink), and closes the rest.
func (s *Swarm) standbys(ctx context.Context, now time.Time) {
	s.mu.Lock()
	var active *cand
	if s.active != nil {
		active = s.cands[s.active.id]
	}
	retry := active != nil && !now.Before(active.retryAt)
	s.mu.Unlock()
	if retry && !s.haves.linked(active.info.ID) {
		// The link to the source in use broke (a dropped connection): open it again, when its
		// backoff allows (else every step dialled a source that went away, a thousand times a
		// second, and each failure lengthened the wait before it was tried again).
		s.link(ctx, active)
	}
	// The best usable candidates are linked, up to MaxUpstreams-1 standbys. A standby that
	// fell out of the best keeps its link for minStandbyLink after it opened (unless it is no
	// longer usable), and holds its place meanwhile: rankings move with every Have, and
	// without that a viewer among stale relays dropped and opened links several times a
	// second (candidates not yet heard from rank above known stale ones), for no better
	// standby.
	room := s.cfg.MaxUpstreams - 1
	usable := s.ranked(now, 0)
	rank := make(map[peer.ID]int, len(usable))
	for i, c := range usable {
		rank[c.info.ID] = i
	}
	held := 0
	links := s.haves.outbound()
	s.mu.Lock()
	for id, c := range s.cands {
		if _, ok := links[id]; !ok && c.linking {
			links[id] = now // being opened: it holds a place too
		}
	}
	s.mu.Unlock()
	for p, opened := range links {
		if active != nil && p == active.info.ID {
			continue
		}
		i, ok := rank[p]
		if ok && (i < room || now.Sub(opened) < minStandbyLink) {
			held++
			continue
		}
		s.haves.drop(p)
	}
	for _, c := range usable[:min(room, len(usable))] {
		if held >= room {
			break
		}
		if _, ok := links[c.info.ID]; !ok {
			s.link(ctx, c)
			held++
		}
	}
}

// link opens a have link to c in the background (one attempt at a time).
func (s *Swarm) link(ctx context.Context, c *cand) {
	s.mu.Lock()
	if c.linking {
		s.mu.Unlock()
		return
	}
	c.linking = true
	info := c.info
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := s.cfg.Node.Connect(lctx, info)
		if err == nil {
			err = s.haves.open(lctx, info.ID)
		}
		s.mu.Lock()
		c.linking = false
		if err != nil && ctx.Err() == nil {
			c.fails++
			c.retryAt = time.Now().Add(unreachableRetry(c.fails, c.seller))
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.Debug("cannot link with a source", "source", info.ID, "err", err)
		}
		s.poke()
	}()
}

// updateDepth sets our depth from the source in use and tells linked peers when it changed.
func (s *Swarm) updateDepth() {
	s.mu.Lock()
	u := s.active
	s.mu.Unlock()
	d := uint8(NoDepth)
	if u != nil && u.v.Connected() && !u.refused.Load() {
		if u.id == s.cfg.Seller.ID {
			d = 1
		} else if h, ok := s.haves.get(u.id); ok && h.Depth < maxDepth {
			d = h.Depth + 1
		}
	}
	s.mu.Lock()
	changed := d != s.depth
	s.depth = d
	if d != NoDepth {
		s.lastGood = d
	}
	s.mu.Unlock()
	if changed {
		s.haves.poke()
	}
}
