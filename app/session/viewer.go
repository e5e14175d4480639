package session

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/human"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/internal/endmsg"
	"github.com/dazaarvision/dazaar-vision/app/internal/headermsg"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/swarm"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
)

// ViewerConfig is everything "Watch" needs.
type ViewerConfig struct {
	Data    DataDir
	Secrets SecretStore
	Card    card.Card
	Network NetworkConfig
	// Frames receives pictures when they are due; nil plays sound only (or nothing, with
	// NoPlayback).
	Frames playback.FrameSink
	// Audio makes a sound output for each player (playback restarts on pause, seek and a
	// resumed stream's new header, and a player closes its output); nil opens the system's
	// device, or a silent clock without one.
	Audio func() playback.AudioOutput
	// NoPlayback only downloads (the command line's -o without a display).
	NoPlayback bool
	// OnDecoded sees every picture as it is decoded (measurements, tests).
	OnDecoded func(pts time.Duration, img *image.RGBA)
	// WatchedQuota bounds the disk space copies of watched streams take together; the least
	// recently watched are removed first when a stream is opened (default DefaultWatchedQuota).
	WatchedQuota int64
	// ReadAhead bounds the blocks fetched ahead of the play position when behind the live
	// edge (default 512, about 17 s at 30 blocks a second), instead of downloading everything.
	ReadAhead uint64
	// UnreachableAfter is how long Start's connection attempts may go unanswered before the
	// viewer is told the broadcaster cannot be reached (default DefaultUnreachableAfter);
	// it keeps trying.
	UnreachableAfter time.Duration
	Logger           *slog.Logger
}

// Invoice is a checked invoice, ready to show.
type Invoice struct {
	ID        string
	Method    invoicemsg.Method
	Sats      uint64
	Media     time.Duration // what it buys
	Expires   time.Time
	URI       string // bitcoin: or lightning: URI (what the QR holds)
	Bolt11    string
	Address   string
	QRPNG     []byte // the URI as a QR code
	Requested time.Time
}

// ViewFigures is the watch view's numbers.
type ViewFigures struct {
	// Connected says a session with the broadcaster (or, for a free stream, a relay) is up.
	Connected bool
	Access    wire.AccessState
	// Reason is why the seller refuses, in its words; while not connected, why not, when
	// something is wrong (the broadcaster cannot be reached, or went away).
	Reason    string
	Remaining time.Duration // paid time left (countdown)
	// Starved is how long no verified block has arrived while paid time is left and the
	// viewer follows the live edge, not paused (0 below StarvedAfter): the broadcaster, or its
	// connection, may be down before the link says so (its keep-alives time out after 30 s).
	// The seller charges for blocks delivered, so the countdown stands still meanwhile (also
	// while a player behind the edge plays blocks it holds).
	Starved       time.Duration
	BytesDown     uint64 // bytes of verified blocks received (the seller's or a relay's)
	Peers         int
	Buffer        time.Duration // sound buffered
	BehindLive    uint64        // blocks between the play position and the seller's newest
	LiveEdge      uint64        // the seller's signed length
	Stored        uint64        // blocks held
	FramesDecoded int64
	FramesShown   int64
	// FramesLate are decoded pictures the player skipped: due before they could be shown
	// (joining at a key frame it decodes the group up to the live edge at once).
	FramesLate int64
	Playing    bool
	Paused     bool
	// PlaybackStopped says why the player stopped on its own (a damaged stream, the sound
	// device lost); "" while it plays, and again once a control starts it anew.
	PlaybackStopped string
	Description     string
	EventsDropped   int64
	// Resumed says the broadcaster resumed this stream after the viewer's start of it: play
	// times and seeks count from the start of the run in force (earlier runs are not played).
	Resumed bool
	// A free stream's relaying (stream/swarm): the sources linked (the one in use and the
	// standbys), the one in use, relay hops from the broadcaster (1: served by it; 0: no
	// source), the viewers this one serves, and the bytes sent to them.
	Upstreams      int
	Source         string
	SourceIsSeller bool
	Depth          int
	Downstreams    int
	RelayedBytes   uint64
}

// upstream is where a viewer's blocks come from: the seller alone (replicate.Viewer, paid
// streams) or the seller and other viewers (swarm.Swarm, free streams).
type upstream interface {
	Run(ctx context.Context) error
	Status() wire.Status
	Connected() bool
	Send(msg []byte) error
	Fetch(ctx context.Context, start, end uint64) error
}

// Viewer is a watch session. Create with NewViewer, then Start and Stop.
type Viewer struct {
	cfg  ViewerConfig
	log  *slog.Logger
	ev   *events
	id   string
	rec  WatchedRecord
	self peer.ID

	node *p2p.Node
	rv   upstream
	sw   *swarm.Swarm // a free stream's (rv is it)
	src  *readerSource
	// received counts the bytes of the verified blocks that arrived (from the seller or a
	// relay): the watch view's "Downloaded", current with every block.
	received atomic.Uint64
	// lastBlock is when the newest verified block arrived (Unix ns; 0: none yet).
	lastBlock atomic.Int64
	feedMu    sync.Mutex
	feed      *feed.Feed
	feeds     []*feed.Feed // every reader opened (forks), closed at Stop

	recMu sync.Mutex // guards rec's changes and saves (Buy and Stop)
	buyMu sync.Mutex // one invoice request at a time
	// unanswered counts requests given up on before their answer came (under buyMu): as many
	// late answers may still arrive, and a Buy passes over that many that do not match it.
	unanswered int
	answers    chan invoicemsg.Answer

	accMu    sync.Mutex
	access   wire.Access
	accessAt time.Time
	// The paid time played since accessAt, for Remaining's countdown (paused time is not
	// charged): played is what was played up to the last pause, playFrom when playing last
	// started again (zero: before accessAt). Both are changed with paused (setPaused).
	played   time.Duration
	playFrom time.Time
	linkDown bool      // the seller was not connected, or no block came, when last looked (Remaining): no counting
	downAt   time.Time // when linkDown was last set

	linkMu sync.Mutex
	link   string // why the link to the broadcaster is down (Snapshot's Reason), "" when fine

	// ctlMu serialises what stops and starts the player (Seek, GoLive, Pause, Resume, a new
	// header, Stop): each stops the old player and waits for it before the next starts.
	ctlMu      sync.Mutex
	playMu     sync.Mutex // guards the fields below while a player runs
	playCancel context.CancelFunc
	player     *playback.Player
	past       playback.Stats // what the players before it decoded, handed over and skipped (under playMu)
	playSrc    *readerSource  // the player's run view of src
	// headerKnown says the seller (or a relay) announced the newest header: src.base is
	// where the newest run starts, not the 0 it starts from.
	headerKnown atomic.Bool
	// ended says the broadcaster said it ended the stream (endmsg), until a block at or past
	// endedAt, its length then, arrives (a resumed stream).
	ended     atomic.Bool
	endedAt   atomic.Uint64
	hdrMu     sync.Mutex
	hdrClaims []uint64      // announced headers not yet checked (a free stream), ascending
	hdrPoke   chan struct{} // a claim was offered (capacity 1)
	fromBase  uint64        // the header a paused player played under
	playWG    sync.WaitGroup
	paused    atomic.Bool
	from      uint64 // where the current player started (0: live)
	// shifted says the current player plays behind the live edge (it started at a seek, Go to
	// start, or after a pause): a paid stream's seller is then not asked to push the live
	// blocks, which would be billed while the player is elsewhere and sit unwatched; the
	// read-ahead fetches what the player reaches, and the seller follows again once that is
	// within one read-ahead window of the edge (readAhead). playGen counts players: a fetch
	// asked for by an older player does not end a newer one's shift.
	shifted  bool
	playGen  uint64
	playing  atomic.Bool
	playErr  atomic.Pointer[string] // why the player stopped on its own (ViewFigures.PlaybackStopped)
	followMu sync.Mutex             // one tellFollow telling the seller at a time
	// dlFrom hands the download (NoPlayback) the block a seek found, counted from the
	// feed's start (capacity 1: a newer seek replaces one not taken yet).
	dlFrom chan uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
	once   sync.Once
	errMu  sync.Mutex
	err    error
}

// NewViewer checks cfg.
func NewViewer(cfg ViewerConfig) (*Viewer, error) {
	if cfg.Data.Root == "" || cfg.Secrets == nil {
		return nil, errors.New("no data directory or secret store")
	}
	if err := cfg.Card.Validate(); err != nil {
		return nil, fmt.Errorf("this card cannot be used: %w", err)
	}
	if cfg.WatchedQuota == 0 {
		cfg.WatchedQuota = DefaultWatchedQuota
	}
	if cfg.ReadAhead == 0 {
		cfg.ReadAhead = 512
	}
	if cfg.UnreachableAfter <= 0 {
		cfg.UnreachableAfter = DefaultUnreachableAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Viewer{cfg: cfg, log: cfg.Logger, ev: newEvents(), answers: make(chan invoicemsg.Answer, 1), done: make(chan struct{}),
		hdrPoke: make(chan struct{}, 1), dlFrom: make(chan uint64, 1)}, nil
}

// Events reports what happens (bounded; see events).
func (v *Viewer) Events() <-chan Event { return v.ev.ch }

// Done is closed once the session stopped.
func (v *Viewer) Done() <-chan struct{} { return v.done }

// Card is the card being watched.
func (v *Viewer) Card() card.Card { return v.cfg.Card }

// Self is this viewer's peer ID (what the seller's ledger knows it by).
func (v *Viewer) Self() string { return v.self.String() }

func (v *Viewer) openReader(dir string) (*feed.Feed, error) {
	key := v.cfg.Card.Feed
	f, err := feed.Open(dir, feed.Options{Logger: v.log})
	if err == nil {
		if f.Key() != key {
			f.Close()
			return nil, fmt.Errorf("the stored copy in %s belongs to another stream", dir)
		}
		return f, nil
	}
	if errors.Is(err, feed.ErrLocked) {
		return nil, err // open in another window or program: said as such
	}
	// None there, or a copy whose meta a crash tore (a reader's meta is not synced):
	// Create makes it afresh, and refuses a readable feed (ErrExists).
	return feed.Create(dir, feed.Options{Key: &key, Logger: v.log})
}

// Start finds the seller and connects; blocks flow once the seller allows (free, or paid).
func (v *Viewer) Start(ctx context.Context) (err error) {
	v.ctx, v.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			v.Stop()
		}
	}()
	c := v.cfg.Card
	if self, err := selfID(v.cfg.Secrets); err == nil && self.String() == c.Seller {
		return ErrOwnStream
	}
	v.id = fmt.Sprintf("%x", c.Feed[:])
	if gone, err := v.cfg.Data.EvictWatched(v.cfg.WatchedQuota, v.id); err != nil {
		v.log.Warn("cannot apply the watched-streams quota", "err", err)
	} else if len(gone) > 0 {
		v.log.Info("removed copies of streams watched long ago to stay within the quota", "streams", len(gone))
	}
	dir := filepath.Join(v.cfg.Data.watchedDir(v.id), "feed")
	f, err := v.openReader(dir)
	if err != nil {
		return plain(v.log, "cannot keep a copy of this stream", err)
	}
	v.feed, v.feeds = f, []*feed.Feed{f}
	rec := v.cfg.Data.loadWatched(v.id, v.log)
	rec.ID, rec.Card, rec.Name, rec.Description, rec.LastWatched = v.id, c.String(), c.Name, c.Description, time.Now()
	v.rec = rec
	if err := v.cfg.Data.saveWatched(rec); err != nil {
		return err
	}
	if v.node, err = startNode(v.ctx, v.cfg.Secrets, v.cfg.Network, v.log); err != nil {
		return err
	}
	v.self = v.node.ID()
	seller, err := peer.Decode(c.Seller)
	if err != nil {
		return fmt.Errorf("the card's seller ID is not valid: %w", err)
	}
	info := peer.AddrInfo{ID: seller}
	for _, s := range c.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			info.Addrs = append(info.Addrs, a)
		}
	}
	v.src = newReaderSource()
	if c.Price.IsFree() {
		// Free streams spread through their viewers: sources are the seller and viewers
		// relaying it (every block verified against the feed key), and this viewer relays
		// what it verified.
		cfg := swarm.Config{Node: v.node, Feed: f, Seller: info, Relay: true, Logger: v.log,
			OnAccess: v.onAccess,
			OnApp:    v.onApp,
			OnBlock:  v.onBlock,
			OnStatus: func(wire.Status) { v.src.arrived() },
			OnFork:   v.onFork,
		}
		if d := v.node.DHT(); d != nil {
			cfg.Routing = d
		}
		if v.sw, err = swarm.New(cfg); err != nil {
			return err
		}
		v.rv = v.sw
	} else {
		rv, err := replicate.NewViewer(replicate.ViewerConfig{
			Dialer: v.node, Seller: info, Feed: f, Live: true, Logger: v.log,
			OnAccess: v.onAccess,
			OnApp:    v.onApp,
			OnBlock:  v.onBlock,
			OnStatus: func(wire.Status) { v.src.arrived() },
			OnFork:   v.onFork,
		})
		if err != nil {
			return err
		}
		v.rv = rv // (not assigned on error: a nil *replicate.Viewer would be a non-nil upstream)
	}
	v.src.feed = v.currentFeed
	v.src.length = func() uint64 { return max(v.rv.Status().Length, v.currentFeed().Length()) }
	v.src.latest = func() (uint64, bool) { return believedSync(v.rv.Status(), v.currentFeed().Length()) }
	fetchC := make(chan fetchWant, 1)
	v.src.fetch = func(_ context.Context, start uint64, header bool) {
		// One wanted position; a newer want replaces an older one (the player moved on).
		v.playMu.Lock()
		w := fetchWant{start: start, header: header, gen: v.playGen}
		v.playMu.Unlock()
		select {
		case fetchC <- w:
		default:
			select {
			case <-fetchC:
			default:
			}
			select {
			case fetchC <- w:
			default:
			}
		}
	}
	v.run("replication", func(ctx context.Context) error { return v.rv.Run(ctx) })
	v.run("read-ahead", func(ctx context.Context) error { return v.readAhead(ctx, fetchC) })
	v.run("link", func(ctx context.Context) error { return v.watchLink(ctx, info) })
	if v.sw != nil {
		v.run("headers", v.checkHeaders)
	}
	if v.cfg.NoPlayback {
		v.run("download", v.download)
	} else {
		v.playNewest(0)
	}
	return nil
}

// download fetches, when nothing plays (NoPlayback: watch -no-play, -o FILE), what a player
// would: the stream header in force (block 0, or the one the seller announced for a resumed
// stream's current run), then every block from the seller's newest sync point on, or from
// where a seek found (watch -no-play -from). Live pushes bring the blocks appended after
// this viewer joined; this fills the rest, so the stored copy is one playable run that grows
// as the blocks come.
func (v *Viewer) download(ctx context.Context) error {
	var base, next uint64
	var want uint64 // the block a seek found, not downloaded from yet (0: none)
	started, pick := false, false
	for {
		ch := v.src.wait()
		select {
		case at := <-v.dlFrom:
			want = at
		default:
		}
		st := v.rv.Status()
		var start, end uint64
		if b := v.src.base.Load(); !started || b != base {
			if st.Length > b { // a new header to play under: start at it
				base, started = b, true
				next, pick = b+1, true
				start, end = b, b+1
			}
		} else if pick && !v.currentFeed().Has(b) {
			start, end = b, b+1 // the header first: its answer upgrades what is verified
		} else {
			if pick {
				// Decided once the header's answer upgraded what is verified, which a claimed
				// sync point is believed against.
				pick = false
				if s, ok := believedSync(st, v.currentFeed().Length()); ok && s > b {
					next = s
				}
			}
			if want > base { // a seek in this run: on from there (a seek in an older one is gone)
				next = want
			}
			want = 0
			f := v.currentFeed()
			for next < st.Length && f.Has(next) {
				next++
			}
			start, end = next, min(st.Length, next+v.cfg.ReadAhead)
		}
		if start < end {
			err := v.rv.Fetch(ctx, start, end)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				v.log.Debug("downloading", "start", start, "end", end, "err", err)
			} else {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case at := <-v.dlFrom:
			want = at
		}
	}
}

// downloadFrom has the download (NoPlayback) fetch on from block index (counted from the
// feed's start), as a seek would have a player play from it.
func (v *Viewer) downloadFrom(index uint64) {
	for {
		select {
		case v.dlFrom <- index:
			return
		default:
		}
		select { // a seek not taken yet: the newer one replaces it
		case <-v.dlFrom:
		default:
		}
	}
}

// believedSync is where a live player starts (or a download from the edge begins): the
// source's sync point when it lies within the length this viewer has verified, else the
// verified edge, where the player waits for the next key frame. A status is not signed: a
// source (a relay above all) claiming blocks or a sync point nobody can prove would
// otherwise hold the player at a block that never comes. A status without a sync point
// plays the run from its start, as before.
func believedSync(st wire.Status, verified uint64) (uint64, bool) {
	switch {
	case st.Flags&wire.StatusHasSyncPoint == 0:
		return 0, st.Length > 0
	case st.SyncPoint < verified:
		return st.SyncPoint, true
	case verified == 0:
		return 0, false
	}
	return verified - 1, true
}

func (v *Viewer) currentFeed() *feed.Feed {
	v.feedMu.Lock()
	defer v.feedMu.Unlock()
	return v.feed
}

func (v *Viewer) run(what string, fn func(context.Context) error) {
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		if err := fn(v.ctx); err != nil && v.ctx.Err() == nil {
			v.errMu.Lock()
			if v.err == nil {
				v.err = fmt.Errorf("%s stopped: %w", what, err)
			}
			v.errMu.Unlock()
			v.ev.emit(Event{Kind: EventError, Text: err.Error()})
		}
	}()
}

// fetchWant is where a player waits for a block the viewer does not hold.
type fetchWant struct {
	start  uint64
	header bool   // block start is the stream header the player plays under
	gen    uint64 // the player that wants it (Viewer.playGen)
}

// readAhead fetches a bounded window ahead of the play position when it is behind the live
// edge (live pushes cover the edge itself).
func (v *Viewer) readAhead(ctx context.Context, want <-chan fetchWant) error {
	told := ^uint64(0) // the start last said not to be available (said once, not per retry)
	for {
		select {
		case <-ctx.Done():
			return nil
		case w := <-want:
			start := w.start
			// The signed length the viewer knows: the seller's statuses, or the upgrades its
			// answers to fetches carried (a shifted player's seller sends no live statuses).
			known := func() uint64 { return max(v.rv.Status().Length, v.currentFeed().Length()) }
			v.playMu.Lock()
			shifted := v.shifted && w.gen == v.playGen
			v.playMu.Unlock()
			was := known()
			end := min(start+v.cfg.ReadAhead, max(was, start+1))
			if shifted && end < start+v.cfg.ReadAhead {
				// The window stops at the length known: ask for one block past it, so that the
				// seller's answer proves its newest length (it waits for that block only at
				// the edge itself, as a following player's fetch does).
				end++
			}
			// Only an answer that reached past the length known carries the seller's newest
			// length: the edge is judged from those.
			shifted = shifted && end > was
			if w.header {
				end = start + 1 // the stream header alone: the media after it is not wanted
			}
			err := v.rv.Fetch(ctx, start, end)
			if err == nil && shifted && !w.header && known() <= end+v.cfg.ReadAhead {
				// The shifted player has reached the edge: follow it again.
				v.playMu.Lock()
				follow := v.shifted && w.gen == v.playGen
				v.shifted = v.shifted && !follow
				v.playMu.Unlock()
				if follow {
					v.tellFollow()
				}
			}
			if err != nil && ctx.Err() == nil {
				v.log.Debug("read-ahead", "start", start, "err", err)
				if errors.Is(err, replicate.ErrNotHeld) && start != told {
					told = start
					v.ev.emit(Event{Kind: EventError, Text: "That part of the stream cannot be fetched now: " + err.Error()})
				}
			}
		}
	}
}

func (v *Viewer) onFork(fork uint64) (replicate.Feed, error) {
	dir := filepath.Join(v.cfg.Data.watchedDir(v.id), fmt.Sprintf("feed-fork%d", fork))
	key := v.cfg.Card.Feed
	f, err := feed.Create(dir, feed.Options{Key: &key, Logger: v.log})
	if err != nil {
		return nil, err
	}
	v.feedMu.Lock()
	v.feed = f
	v.feeds = append(v.feeds, f)
	v.feedMu.Unlock()
	// The new recording's headers may sit below the old one's: the seller announces its
	// newest again on the next session.
	v.src.base.Store(0)
	v.headerKnown.Store(false)
	v.hdrMu.Lock()
	v.hdrClaims = nil // claims about the old recording
	v.hdrMu.Unlock()
	v.ev.emit(Event{Kind: EventError, Text: "The broadcaster's machine lost power and its stream moved on; continuing from the new recording."})
	return f, nil
}

func (v *Viewer) onAccess(a wire.Access) {
	v.accMu.Lock()
	prev := v.access
	v.access, v.accessAt, v.played = a, time.Now(), 0
	v.accMu.Unlock()
	text := ""
	switch a.State {
	case wire.Free:
		text = "Stream is free of charge"
	case wire.Allowed:
		text = fmt.Sprintf("Paid time left: %s", human.Duration(time.Duration(a.RemainingMs)*time.Millisecond))
	default:
		text = a.Reason
	}
	if prev.State != a.State || prev.Reason != a.Reason || a.RemainingMs > prev.RemainingMs+1000 {
		v.ev.emit(Event{Kind: EventAccess, Text: text})
	}
	v.src.arrived()
}

func (v *Viewer) onApp(msg []byte) {
	if endmsg.Is(msg) {
		// Believed from the card's seller only (app messages are not signed, and a relay
		// passes on only header messages): it changes the words once the link drops.
		if v.sw == nil || v.sw.Stats().ActiveIsSeller {
			// Blocks pushed before the word may still arrive; only one past the seller's
			// length now says the stream resumed.
			v.endedAt.Store(max(v.rv.Status().Length, v.currentFeed().Length()))
			v.ended.Store(true)
		}
		return
	}
	if h, ok := headermsg.Decode(msg); ok {
		if v.sw != nil && h > v.src.base.Load() {
			// A free stream's source may be any relaying viewer, and app messages are not
			// signed: the header is checked against the feed before anything moves to it.
			v.offerHeader(h)
			return
		}
		v.acceptHeader(h) // the card's seller itself (a paid stream), or nothing new
		return
	}
	var a invoicemsg.Answer
	if err := a.UnmarshalBinary(msg); err != nil {
		v.log.Debug("unreadable message from the seller", "err", err)
		return
	}
	select {
	case v.answers <- a:
	default: // nobody asked, or an answer is already waiting: a seller cannot queue answers
	}
}

// acceptHeader moves the viewer's newest header to the block at index h: a live player
// joins under it.
func (v *Viewer) acceptHeader(h uint64) {
	defer v.src.arrived() // download fetches it; seeks waiting for the header go on
	old := v.src.base.Load()
	v.src.raise(h) // never back: a relay may hand on an older announcement late
	v.headerKnown.Store(true)
	if v.src.base.Load() != old && !v.cfg.NoPlayback && !v.paused.Load() {
		v.wg.Add(1)
		go func() { // not on the session's read loop: restarting waits for the player
			defer v.wg.Done()
			if v.ctx.Err() == nil {
				v.restartLive()
			}
		}()
	}
}

// maxHeaderClaims bounds the header announcements waiting to be checked. Past it the one
// furthest ahead is dropped: a true announcement is within the signed length, a false one
// can name any index, so a source repeating false ones cannot push the true one out.
const maxHeaderClaims = 8

// offerHeader queues a source's word that block h is the stream's newest header, for
// checkHeaders.
func (v *Viewer) offerHeader(h uint64) {
	v.hdrMu.Lock()
	if i, found := slices.BinarySearch(v.hdrClaims, h); !found {
		v.hdrClaims = slices.Insert(v.hdrClaims, i, h)
		if len(v.hdrClaims) > maxHeaderClaims {
			v.hdrClaims = v.hdrClaims[:maxHeaderClaims]
		}
	}
	v.hdrMu.Unlock()
	select {
	case v.hdrPoke <- struct{}{}:
	default: // a check is already due
	}
}

// checkHeaders, for a free stream, turns header announcements into the viewer's newest header
// once the block they name is held, verified against the feed key, and is a stream header;
// then it passes the announcement on to this viewer's own viewers. A claim the feed refutes
// (no header there) is dropped and logged; one beyond the signed length waits for the stream
// to grow, and is dropped when newer claims crowd it out.
func (v *Viewer) checkHeaders(ctx context.Context) error {
	for {
		wake := v.src.wait()
		v.hdrMu.Lock()
		claims := slices.Clone(v.hdrClaims)
		v.hdrMu.Unlock()
		for _, h := range claims {
			ok, settled := v.checkHeader(ctx, h)
			if !settled {
				continue
			}
			v.hdrMu.Lock()
			v.hdrClaims = slices.DeleteFunc(v.hdrClaims, func(c uint64) bool { return c == h })
			v.hdrMu.Unlock()
			if !ok {
				v.log.Warn("a source named a stream header that the signed stream does not have there; ignored", "block", h)
				continue
			}
			v.acceptHeader(h)
			v.sw.Forward(headermsg.Encode(h))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-v.hdrPoke:
		}
	}
}

// checkHeader says whether block h is a stream header (ok), once that is known (settled):
// the block is held or fetched, or h is not ahead of the newest header already accepted.
func (v *Viewer) checkHeader(ctx context.Context, h uint64) (ok, settled bool) {
	if h <= v.src.base.Load() {
		return true, true // nothing to move to
	}
	f := v.currentFeed()
	if !f.Has(h) {
		if h >= f.Length() {
			return false, false // not in the signed stream yet
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := v.rv.Fetch(fctx, h, h+1)
		cancel()
		if err != nil {
			return false, false // asked again on the next arrival
		}
	}
	b, err := f.Read(h)
	if err != nil {
		return false, false
	}
	return block.KindOf(b) == block.KindHeader, true
}

// Remaining is the paid time left, counting down between the seller's updates while the
// stream plays; it stands still while paused and while the seller is not connected (the
// seller charges neither). The link is looked at here: the countdown stops within one call of
// the link going down (the window asks four times a second, the command line once).
func (v *Viewer) Remaining() time.Duration {
	started := v.rv != nil // (before, there is no link to look at)
	connected := started && v.rv.Connected()
	now := time.Now()
	v.accMu.Lock()
	defer v.accMu.Unlock()
	if started {
		// Blocks are what the seller charges for: while none arrive the countdown stands
		// still, as it does while the link is down.
		v.noteLinkLocked(connected && v.starvedLocked(now, false) == 0, now)
	}
	if v.access.State != wire.Allowed {
		return 0
	}
	return max(0, time.Duration(v.access.RemainingMs)*time.Millisecond-v.playedLocked(time.Now()))
}

// StarvedAfter is how long without a verified block a paid, unpaused viewer waits before
// the countdown stands still and ViewFigures.Starved says so: far above the gap between two
// blocks (a frame, 33 ms at 30 fps; an audio-only stream's blocks are 20 ms of sound).
const StarvedAfter = 1500 * time.Millisecond

// starvedLocked is how long no block has arrived while paid (or free too, when free says so)
// and not paused (0 below StarvedAfter, before the first block as well), with accMu held.
func (v *Viewer) starvedLocked(now time.Time, free bool) time.Duration {
	if !(v.access.State == wire.Allowed || free && v.access.State == wire.Free) || v.paused.Load() {
		return 0
	}
	last := v.lastBlock.Load()
	if last == 0 {
		return StarvedAfter // paid before any block: nothing plays yet, nothing is charged
	}
	if d := now.Sub(time.Unix(0, last)); d >= StarvedAfter {
		return d
	}
	return 0
}

// starved is ViewFigures.Starved: how long no block has arrived since the last one, while
// paid or free and not paused (0 before the first block: "waiting for the first picture" says
// it). A free stream's link, too, says up for a while after a broadcaster's machine dies.
func (v *Viewer) starved() time.Duration {
	if v.lastBlock.Load() == 0 {
		return 0
	}
	v.accMu.Lock()
	defer v.accMu.Unlock()
	return v.starvedLocked(time.Now(), true)
}

// playedLocked is the time played since the seller's last update, with accMu held.
func (v *Viewer) playedLocked(now time.Time) time.Duration {
	if v.paused.Load() || v.linkDown {
		return v.played
	}
	return v.played + now.Sub(latest(v.accessAt, v.playFrom))
}

// setPaused pauses or unpauses the countdown (and says whether it was paused): the time
// played so far is kept at a pause, and counting starts again when playing does.
func (v *Viewer) setPaused(paused bool) (was bool) {
	v.accMu.Lock()
	defer v.accMu.Unlock()
	now := time.Now()
	if paused && !v.paused.Load() {
		v.played = v.playedLocked(now)
	}
	was = v.paused.Swap(paused)
	if !paused && was {
		v.playFrom = now
	}
	return was
}

// noteLinkLocked stops the countdown when the link to the seller goes down and starts it
// again when it is back (the seller's next update then sets it), with accMu held.
func (v *Viewer) noteLinkLocked(connected bool, now time.Time) {
	switch {
	case !connected && !v.linkDown:
		v.played = v.playedLocked(now)
		v.linkDown, v.downAt = true, now
	case connected && v.linkDown:
		v.linkDown = false
		v.playFrom = now
		// Counting starts again from the block that ended a wait for blocks, not from
		// when the countdown was next read.
		if lb := v.lastBlock.Load(); lb != 0 {
			if at := time.Unix(0, lb); at.After(v.downAt) && at.Before(now) {
				v.playFrom = at
			}
		}
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Access is the seller's last decision.
func (v *Viewer) Access() wire.Access {
	v.accMu.Lock()
	defer v.accMu.Unlock()
	return v.access
}

// restartLive restarts a player that follows the live edge, so that it joins under the
// stream's newest header; a player the user moved (a seek, a pause) is left where it is, in
// the run it plays.
func (v *Viewer) restartLive() {
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	v.playMu.Lock()
	live := v.from == 0
	v.playMu.Unlock()
	if live && !v.paused.Load() {
		v.startPlayerLocked(v.src.base.Load(), 0)
	}
}

// startPlayerLocked (re)starts playback under the header at index base, at block from
// counted from it (0: the live edge), with ctlMu held. Nothing starts once the session is
// stopping.
func (v *Viewer) startPlayerLocked(base, from uint64) {
	v.stopPlayerLocked()
	if v.ctx == nil || v.ctx.Err() != nil || v.src == nil || v.cfg.NoPlayback {
		return // (NoPlayback: no player, whatever a control asks; the download goes on)
	}
	v.playMu.Lock()
	defer v.playMu.Unlock()
	ctx, cancel := context.WithCancel(v.ctx)
	src := v.src.at(base)
	p, err := v.newPlayer(src, from)
	if err != nil {
		cancel()
		v.ev.emit(Event{Kind: EventError, Text: err.Error()})
		return
	}
	v.retireLocked()
	v.player, v.playSrc, v.playCancel, v.from = p, src, cancel, from
	v.shifted = from != 0
	v.playGen++
	v.playErr.Store(nil)
	v.playWG.Add(1)
	go func() {
		defer v.playWG.Done()
		for {
			err := p.Run(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				text := playStopped(v.log, err)
				v.playErr.Store(&text)
				v.playing.Store(false)
				v.ev.emit(Event{Kind: EventError, Text: text})
				return
			}
			h := src.crossed.Swap(0)
			if h == 0 {
				return // the stream ended
			}
			// The broadcaster stopped and resumed here: play on under the new header. A player
			// following the live edge goes on live (from the new run's newest key frame, and
			// catching up after a stall, as at the start); a replay the user chose (a seek,
			// Go to start, play after a pause) plays the new run from its start.
			v.src.raise(h - 1)
			src = v.src.at(h - 1)
			next := uint64(1)
			if from == 0 {
				next = 0
			}
			if p, err = v.newPlayer(src, next); err != nil {
				v.ev.emit(Event{Kind: EventError, Text: err.Error()})
				return
			}
			v.playMu.Lock()
			v.retireLocked()
			v.player, v.playSrc = p, src
			v.playMu.Unlock()
		}
	}()
}

// retireLocked adds the player being replaced to the session's totals (playMu held): the
// figures count every picture of the session, not only the current player's (a seek, a
// pause and play, a resumed stream's next run each start a new player).
func (v *Viewer) retireLocked() {
	if v.player == nil {
		return
	}
	st := v.player.Stats()
	v.past.FramesDecoded += st.FramesDecoded
	v.past.FramesShown += st.FramesShown
	v.past.FramesLate += st.FramesLate
}

func (v *Viewer) newPlayer(src *readerSource, from uint64) (*playback.Player, error) {
	frames := v.cfg.Frames
	if frames == nil {
		// No picture to show (the command line without a window): still decode, so that the
		// figures say whether video is arriving intact.
		frames = playback.FrameSinkFunc(func(f *playback.Frame) { f.Release() })
	}
	var once sync.Once
	var out playback.AudioOutput
	if v.cfg.Audio != nil {
		out = v.cfg.Audio()
	}
	return playback.New(playback.Config{Source: src, Frames: frames, Audio: out, FromBlock: from, Logger: v.log,
		OnDecoded: func(pts time.Duration, img *image.RGBA) {
			once.Do(func() {
				if !v.playing.Swap(true) {
					v.ev.emit(Event{Kind: EventPlaying, Text: "playing"})
				}
			})
			if v.cfg.OnDecoded != nil {
				v.cfg.OnDecoded(pts, img)
			}
		}})
}

// stopPlayerLocked stops the player and waits for it, with ctlMu held.
func (v *Viewer) stopPlayerLocked() {
	v.playMu.Lock()
	cancel := v.playCancel
	v.playCancel = nil
	v.playMu.Unlock()
	if cancel != nil {
		cancel()
	}
	v.playWG.Wait()
	v.playing.Store(false)
}

// position is the block the player has reached, counted from the header at index base.
func (v *Viewer) position() (base, pos uint64) {
	v.playMu.Lock()
	defer v.playMu.Unlock()
	if v.player == nil {
		return v.src.base.Load(), 0
	}
	st := v.player.Stats()
	return v.playSrc.base.Load(), st.StartBlock + uint64(st.BlocksRead)
}

// Pause stops playback where it is; Resume goes on from there, in the same run.
func (v *Viewer) Pause() {
	defer v.tellFollow() // after ctlMu is let go (defers run last first)
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	if v.setPaused(true) {
		return
	}
	base, pos := v.position()
	v.stopPlayerLocked()
	v.playMu.Lock()
	if pos > 0 {
		v.fromBase, v.from = base, pos
	} else {
		// The player had not reached a block yet (paused as it started): play on from where
		// it was to start, the live edge (0) or the block asked for, not the run's start.
		v.fromBase = base
	}
	v.playMu.Unlock()
}

// Resume continues after Pause.
func (v *Viewer) Resume() {
	defer v.tellFollow() // after ctlMu is let go
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	if !v.setPaused(false) {
		return
	}
	v.playMu.Lock()
	base, from := v.fromBase, v.from
	v.playMu.Unlock()
	v.startPlayerLocked(base, from)
}

// onBlock is told of each verified block stored, whichever source sent it.
func (v *Viewer) onBlock(i uint64, b []byte) {
	if v.ended.Load() && i >= v.endedAt.Load() {
		v.ended.Store(false) // past the end the broadcaster announced: a resumed stream
	}
	v.received.Add(uint64(len(b)))
	v.lastBlock.Store(time.Now().UnixNano())
	v.src.arrived()
}

// GoLive jumps to the live edge.
func (v *Viewer) GoLive() { v.playNewest(0) }

// GoToStart plays from the beginning of the stream (a resumed stream's current run).
func (v *Viewer) GoToStart() { v.playNewest(1) }

// playNewest unpauses and plays the newest run from block from (0: the live edge).
func (v *Viewer) playNewest(from uint64) {
	defer v.tellFollow() // after ctlMu is let go
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	if v.src == nil {
		return // not started
	}
	v.setPaused(false)
	v.startPlayerLocked(v.src.base.Load(), from)
}

// playAt unpauses and plays from block from (0: the live edge) counted from the header at
// index base.
func (v *Viewer) playAt(base, from uint64) {
	defer v.tellFollow() // after ctlMu is let go
	v.ctlMu.Lock()
	defer v.ctlMu.Unlock()
	v.setPaused(false)
	v.startPlayerLocked(base, from)
}

// tellFollow asks a paid stream's seller to push each new block, or, while paused or playing
// behind the live edge (shifted), not to: paused time is neither sent nor charged, and a
// player behind the edge is sent (and charged for) what it reaches, fetched as it plays on. A
// free stream's viewer keeps following: its own viewers may take the stream from it. Telling the seller is a write to the network, so the controls defer it until they have
// let go of ctlMu (Stop takes ctlMu, and must not wait for a write; Stop's cancel ends a
// write that waits). followMu makes each call send the pause state current when it runs, so
// calls that overtake each other still leave the seller told the last one.
func (v *Viewer) tellFollow() {
	l, ok := v.rv.(interface{ SetLive(bool) })
	if !ok || v.sw != nil {
		return
	}
	v.followMu.Lock()
	defer v.followMu.Unlock()
	v.playMu.Lock()
	shifted := v.shifted
	v.playMu.Unlock()
	l.SetLive(!v.paused.Load() && !shifted)
}

// Snapshot is the newest figures.
func (v *Viewer) Snapshot() ViewFigures {
	var f ViewFigures
	if v.rv == nil {
		return f
	}
	a := v.Access()
	f.Connected, f.Access, f.Reason, f.Remaining = v.rv.Connected(), a.State, a.Reason, v.Remaining()
	v.playMu.Lock()
	shifted := v.shifted // playing held blocks behind the edge: none need to arrive
	v.playMu.Unlock()
	if f.Connected && !shifted {
		f.Starved = v.starved()
	}
	if !f.Connected {
		f.Reason = v.linkText()
	}
	f.BytesDown = v.received.Load()
	if v.node != nil {
		f.Peers = len(v.node.Host().Network().Peers())
	}
	st := v.rv.Status()
	f.LiveEdge = st.Length
	fd := v.currentFeed()
	f.Stored = fd.Stored()
	v.playMu.Lock()
	if v.player != nil {
		ps := v.player.Stats()
		f.FramesDecoded, f.FramesShown, f.FramesLate = v.past.FramesDecoded+ps.FramesDecoded, v.past.FramesShown+ps.FramesShown, v.past.FramesLate+ps.FramesLate
		f.Buffer = ps.AudioBuffered
		if h := v.player.Header(); h != nil {
			f.Description = h.Description
		}
		// The player counts blocks from the header it plays under (the source's base: a
		// resumed stream's current run); the seller's length counts from the feed's start.
		if pos := v.playSrc.base.Load() + ps.StartBlock + uint64(ps.BlocksRead); st.Length > pos {
			f.BehindLive = st.Length - pos
		}
	}
	v.playMu.Unlock()
	f.Playing, f.Paused = v.playing.Load(), v.paused.Load()
	if e := v.playErr.Load(); e != nil {
		f.PlaybackStopped = *e
	}
	f.EventsDropped = v.ev.dropped.Load()
	f.Resumed = v.src != nil && v.src.base.Load() > 0
	if v.sw != nil {
		st := v.sw.Stats()
		f.Upstreams, f.SourceIsSeller = st.Upstreams, st.ActiveIsSeller
		if st.Active != "" {
			f.Source = st.Active.String()
		}
		if st.Depth != swarm.NoDepth {
			f.Depth = int(st.Depth)
		}
		f.Downstreams, f.RelayedBytes = st.Downstreams, st.RelayedBytes
	}
	return f
}

// Stop ends the session and waits for its goroutines; what was downloaded stays stored.
func (v *Viewer) Stop() error {
	v.once.Do(func() {
		// Under ctlMu, so that no control (a button, a new header's restart) starts a
		// player between stopping this one and the end of the session.
		v.ctlMu.Lock()
		if v.cancel != nil {
			v.cancel()
		}
		v.stopPlayerLocked()
		v.ctlMu.Unlock()
		v.wg.Wait()
		var errs []error
		if v.node != nil {
			errs = append(errs, v.node.Close())
		}
		if v.id != "" {
			v.recMu.Lock() // a Buy may still be answered while the session stops
			v.rec.LastWatched = time.Now()
			v.rec.Bytes = uint64(dirSize(v.cfg.Data.watchedDir(v.id))) // what this copy takes on disk
			errs = append(errs, v.cfg.Data.saveWatched(v.rec))
			v.recMu.Unlock()
		}
		v.feedMu.Lock()
		for _, f := range v.feeds {
			errs = append(errs, f.Close())
		}
		v.feedMu.Unlock()
		if err := errors.Join(errs...); err != nil {
			v.log.Warn("stopping the viewer", "err", err)
		}
		v.ev.emit(Event{Kind: EventStopped})
		close(v.done)
	})
	v.errMu.Lock()
	defer v.errMu.Unlock()
	return v.err
}
