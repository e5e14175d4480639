package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/human"

	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/internal/endmsg"
	"github.com/dazaarvision/dazaar-vision/app/internal/headermsg"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/swarm"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// BroadcasterConfig is everything "Go live" needs.
type BroadcasterConfig struct {
	Data    DataDir
	Secrets SecretStore
	// Resume is the ID (feed key, hex) of one of my streams to continue under the same card;
	// empty starts a new stream.
	Resume      string
	Name        string
	Description string
	Preset      broadcast.Preset
	// Video and Audio are the devices to capture; either may be nil (audio-only and
	// video-only streams), not both.
	Video, Audio *capture.Device
	// Price is the stream's price; the zero Price (price.Free) makes it free.
	Price     price.Price
	Lightning *LightningSetup
	OnChain   *OnChainSetup
	Network   NetworkConfig
	// UplinkKbps is the broadcaster's upload speed in kbit/s (measured or set by the user;
	// 0: unknown). A free stream serves as many viewers directly as 80 % of it carries at the
	// preset's bit rate (swarm.DirectLimit; unknown: swarm.DefaultOriginViewers) and sends the
	// rest to viewers that relay. Paid streams serve every viewer directly.
	UplinkKbps int64
	// DirectViewers, when above 0, is that bound for a free stream, whatever UplinkKbps says.
	DirectViewers int
	// Preview, when set, receives the stream's pictures as viewers get them, decoded from
	// the feed as it is appended (the live view's local preview; no sound).
	Preview playback.FrameSink
	// Clock is the one clock of the stream's seller and its paid-time gate (nil: the system
	// clock); tests inject a mock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// ViewerFigures is one connected viewer as the broadcaster sees it.
type ViewerFigures struct {
	Peer      string
	Bytes     uint64        // replication bytes sent to it
	Blocks    uint64        // blocks delivered
	Remaining time.Duration // paid time left (0 for free streams)
	Paying    bool
}

// BroadcastFigures is the live view's numbers.
type BroadcastFigures struct {
	Live bool
	// Since is when the broadcast went live; Until when it stopped (zero while live).
	Since, Until         time.Time
	Viewers, Paying      int
	EarnedMsat           uint64 // settled
	ProvisionalMsat      uint64 // unconfirmed on-chain payments counted towards access
	Awaiting             int    // payments seen that count only once confirmed (not in the sums)
	BytesUp              uint64 // to all viewers
	PerViewer            []ViewerFigures
	FPS                  float64 // encoder frames a second, over the last interval
	VideoKbps, AudioKbps float64
	DroppedFrames        int64
	Blocks, FeedBytes    uint64
	EventsDropped        int64
	// DirectLimit and Redirected: a free stream's bound on direct viewers and the viewers
	// sent to relays because it was reached (0 for paid streams).
	DirectLimit int
	Redirected  uint64
}

// Sale is one payment in the seller's list.
type Sale struct {
	Viewer string
	ID     string // ln:<hash> or btc:<txid>:<vout>
	Method string // "Lightning" or "on-chain"
	Msat   uint64
	Millis uint64 // media time it bought
	State  ledger.State
	Note   string
	At     time.Time // when the payment was first seen
}

// Earned says what the stream earned: settled sats, unconfirmed ones counted towards access,
// and payments seen that count once confirmed ("1200 sats (+300 unconfirmed), 1 payment
// waiting for its confirmation").
func (f BroadcastFigures) Earned() string {
	s := fmt.Sprintf("%d sats", f.EarnedMsat/1000)
	if f.ProvisionalMsat > 0 {
		s += fmt.Sprintf(" (+%d unconfirmed)", f.ProvisionalMsat/1000)
	}
	switch {
	case f.Awaiting == 1:
		s += ", 1 payment waiting for its confirmation"
	case f.Awaiting > 1:
		s += fmt.Sprintf(", %d payments waiting for their confirmation", f.Awaiting)
	}
	return s
}

// AwaitingConfirmation says the payment was seen and is worth nothing until confirmed in a
// block (a stream that lets nobody watch before a confirmation credits it 0 meanwhile).
func (s Sale) AwaitingConfirmation() bool { return s.State == ledger.Provisional && s.Msat == 0 }

// farewellWait bounds how long Stop waits for its viewers to be told the stream ended.
const farewellWait = time.Second

// Broadcaster is a live stream's session. Create with NewBroadcaster, then Start and Stop.
type Broadcaster struct {
	cfg    BroadcasterConfig
	log    *slog.Logger
	ev     *events
	id     string // feed key hex: the stream ID in invoices and the ledger
	record StreamRecord

	feed   *feed.Feed
	node   *p2p.Node
	seller *replicate.Seller
	server *swarm.Server // a free stream's: bounds the direct viewers and redirects the rest (seller is its Seller)
	wallet *wallet
	gate   *ledgerGate
	pipe   *broadcast.Broadcaster
	card   card.Card

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
	errMu  sync.Mutex
	err    error
	header uint64 // index of this run's stream header

	msMu     sync.Mutex
	ms       [4096]struct{ index, ms uint64 } // media time of recent blocks, by index mod 4096
	lastSync uint64                           // 1 + the index of the newest block playback can start at
	preview  *readerSource                    // the local preview's source (set in Start before capture runs)

	figMu    sync.Mutex
	figures  BroadcastFigures
	lastStat broadcast.Stats
	lastAt   time.Time
	stopOnce sync.Once
	// wentLive is set once Start has made the stream's card and saved its record: a new
	// stream that never went live leaves nothing behind in the list of streams (Stop).
	wentLive atomic.Bool
}

// NewBroadcaster checks cfg.
func NewBroadcaster(cfg BroadcasterConfig) (*Broadcaster, error) {
	if cfg.Data.Root == "" {
		return nil, errors.New("no data directory")
	}
	if cfg.Secrets == nil {
		return nil, errors.New("no secret store")
	}
	if cfg.Video == nil && cfg.Audio == nil {
		return nil, errors.New("pick a camera or screen, a microphone, or both")
	}
	if cfg.Preset.Name == "" {
		cfg.Preset = broadcast.Medium
	}
	// A description typed on Windows has \r\n line ends; the card refuses control characters.
	cfg.Name, cfg.Description = streamText(cfg.Name, cfg.Description)
	// Before the camera, the feed and the network are opened: text the card refuses would
	// otherwise fail going live only once all of them were.
	if err := CheckStreamText(cfg.Name, cfg.Description); err != nil {
		return nil, err
	}
	if len(cfg.Description) > block.MaxDescription {
		return nil, fmt.Errorf("the description is %d bytes; at most %d fit", len(cfg.Description), block.MaxDescription)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Broadcaster{cfg: cfg, log: cfg.Logger, ev: newEvents(), done: make(chan struct{})}, nil
}

// Events reports what happens (bounded; see events).
func (b *Broadcaster) Events() <-chan Event { return b.ev.ch }

// Done is closed once the session has stopped (Stop, or a failure); Err then says why.
func (b *Broadcaster) Done() <-chan struct{} { return b.done }

// Err is the failure that ended the session, if any.
func (b *Broadcaster) Err() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.err
}

// ID is the stream's ID (its feed key in hex).
func (b *Broadcaster) ID() string { return b.id }

// Card is what viewers paste (valid once Start returned).
func (b *Broadcaster) Card() card.Card { return b.card }

func (b *Broadcaster) fail(err error) {
	b.errMu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.errMu.Unlock()
	b.ev.emit(Event{Kind: EventError, Text: err.Error()})
	go b.Stop()
}

// openFeed creates a new stream's feed (its signing seed into the secret store first) or opens
// one of mine to resume.
func (b *Broadcaster) openFeed() error {
	opts := feed.Options{Durability: feed.ForkOnPowerLoss, Logger: b.log}
	if b.cfg.Resume != "" {
		rec, err := b.cfg.Data.loadStream(b.cfg.Resume)
		if err != nil {
			return err
		}
		key, err := hex.DecodeString(rec.ID)
		if err != nil || len(key) != 32 {
			return fmt.Errorf("the stream record %s is damaged", rec.ID)
		}
		dk := feed.DiscoveryKey([32]byte(key))
		seed, err := b.cfg.Secrets.Get(secrets.FeedSeedName(hex.EncodeToString(dk[:])))
		if err != nil {
			return fmt.Errorf("the signing key of stream %s is not in the secret store (restore your identity backup to resume it): %w", rec.ID, err)
		}
		kp, err := feed.KeyPairFromSeed(seed)
		if err != nil {
			return err
		}
		opts.KeyPair = &kp
		f, err := feed.Open(filepath.Join(b.cfg.Data.streamDir(rec.ID), "feed"), opts)
		if err != nil {
			return plain(b.log, "cannot open the stream's feed", err)
		}
		b.feed, b.record, b.id = f, rec, rec.ID
		if b.cfg.Name == "" {
			b.cfg.Name = rec.Name
		}
		if b.cfg.Description == "" {
			b.cfg.Description = rec.Description
		}
		return nil
	}
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		return err
	}
	pub := [32]byte(kp.Public)
	dk := feed.DiscoveryKey(pub)
	if err := b.cfg.Secrets.Set(secrets.FeedSeedName(hex.EncodeToString(dk[:])), seed); err != nil {
		return fmt.Errorf("cannot keep the stream's signing key in the secret store: %w", err)
	}
	b.id = hex.EncodeToString(pub[:])
	opts.KeyPair = &kp
	f, err := feed.Create(filepath.Join(b.cfg.Data.streamDir(b.id), "feed"), opts)
	if err != nil {
		if ferr := b.forgetSeed(dk); ferr != nil {
			b.log.Warn("cannot remove the signing key of a stream never made", "err", ferr)
		}
		return plain(b.log, "cannot make the stream's feed", err)
	}
	b.feed = f
	b.record = StreamRecord{ID: b.id, Created: time.Now()}
	return nil
}

// forgetSeed removes the signing seed of a new stream that never went live from the secret
// store (when the store can delete).
func (b *Broadcaster) forgetSeed(dk [32]byte) error {
	d, ok := b.cfg.Secrets.(interface{ Delete(name string) error })
	if !ok {
		return nil
	}
	if err := d.Delete(secrets.FeedSeedName(hex.EncodeToString(dk[:]))); err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("cannot remove the signing key of the stream that did not go live: %w", err)
	}
	return nil
}

// Start goes live: it opens the feed, the network node, the wallet (for a paid stream), the
// replication seller and the capture pipeline, and returns once viewers can connect (the card
// is ready). The session runs until Stop or ctx ends.
func (b *Broadcaster) Start(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	defer func() {
		if err != nil {
			b.Stop()
		}
	}()
	var resumed StreamRecord
	if b.cfg.Resume != "" {
		rec, err := b.cfg.Data.loadStream(b.cfg.Resume)
		if err != nil {
			return err
		}
		resumed = rec
		if old, perr := price.Parse(rec.Price); rec.Price != "" && perr == nil && !samePrice(old, b.cfg.Price) {
			return fmt.Errorf("a resumed stream keeps its price (%s): viewers hold cards with it, and their "+
				"invoices would not match another; go live as a new stream to sell at %s", old, b.cfg.Price)
		}
	}
	if !b.cfg.Price.IsFree() {
		// Before anything is made or shown: a card must never be shared for a stream that
		// cannot sell.
		if err := checkPayments(ctx, b.cfg.Secrets, b.cfg.Lightning, b.cfg.OnChain); err != nil {
			return err
		}
	}
	network := ""
	if !b.cfg.Price.IsFree() {
		// Before the feed and the camera: a data directory's wallet has one owner at a time,
		// and a stream refused for that leaves nothing behind (no feed, no signing key, no
		// entry in the list of streams). The stream's ID is asked for once requests come,
		// after openFeed set it.
		w, net, err := openWallet(b.cfg.Data, b.cfg.Secrets, func() string { return b.id }, b.cfg.Price, b.cfg.Lightning, b.cfg.OnChain, b.log)
		if err != nil {
			return err
		}
		b.wallet, network = w, net
		if err := keepsCardTerms(resumed.Card, network, b.cfg.Lightning != nil, b.cfg.OnChain != nil); err != nil {
			return err
		}
	}
	if err := b.openFeed(); err != nil {
		return err
	}
	var video, audio *capture.Device = b.cfg.Video, b.cfg.Audio
	var vs *capture.VideoSource
	var as *capture.AudioSource
	p := b.cfg.Preset
	if video != nil {
		if vs, err = capture.OpenVideo(*video, capture.VideoWant{Width: p.Width, Height: p.Height, FrameRate: float64(p.FrameRate)}); err != nil {
			return fmt.Errorf("cannot open the camera %q: %w", video.Label, err)
		}
	}
	if audio != nil {
		if as, err = capture.OpenAudio(*audio, capture.AudioWant{SampleRate: 48000, Channels: 1}); err != nil {
			if vs != nil {
				vs.Close()
			}
			return fmt.Errorf("cannot open the microphone %q: %w", audio.Label, err)
		}
	}
	sink := &feedSink{f: b.feed, offset: b.feed.Length(), onAppend: b.appended, lastEnd: -1}
	pipe, err := broadcast.New(broadcast.Config{Preset: p, Video: vs, Audio: as, Description: b.cfg.Description, Sink: sink, Logger: b.log})
	if err != nil {
		if vs != nil {
			vs.Close()
		}
		if as != nil {
			as.Close()
		}
		return err
	}
	b.pipe = pipe
	capturing := false
	defer func() {
		if err != nil && !capturing { // the pipeline closes its sources when it runs; it never did
			if vs != nil {
				vs.Close()
			}
			if as != nil {
				as.Close()
			}
		}
	}()

	nc := b.cfg.Network
	if b.cfg.Resume != "" && len(nc.Listen) == 0 {
		// Listen where the card says, so viewers holding it reconnect without a lookup.
		if old, err := card.Parse(b.record.Card); err == nil {
			nc.Listen = old.Addrs
		}
	}
	if b.node, err = startNode(ctx, b.cfg.Secrets, nc, b.log); err != nil && len(b.cfg.Network.Listen) == 0 && b.cfg.Resume != "" {
		b.log.Warn("cannot listen at the card's addresses again; viewers will look the stream up", "err", err)
		b.node, err = startNode(ctx, b.cfg.Secrets, b.cfg.Network, b.log)
	}
	if err != nil {
		return err
	}
	var gate replicate.Gate = replicate.FreeGate{}
	var methods []card.Method
	if !b.cfg.Price.IsFree() {
		w := b.wallet
		if b.cfg.Lightning != nil {
			methods = append(methods, card.Lightning)
		}
		if b.cfg.OnChain != nil {
			methods = append(methods, card.OnChain)
		}
		b.gate = &ledgerGate{stream: b.id, ledger: w.ledger, clock: b.cfg.Clock, millis: b.blockMillis, joinWindow: b.joinWindow, log: b.log}
		gate = b.gate
	}
	requests := make(chan appRequest, 64)
	onApp := func(from peer.ID, msg []byte) {
		// Bounded: a viewer flooding requests finds the queue full and its request is
		// dropped (it asks again); the read loop never waits on the wallet.
		select {
		case requests <- appRequest{from, msg}:
		default:
			b.log.Debug("invoice request dropped: the desk is busy", "viewer", from)
		}
	}
	if b.cfg.Price.IsFree() {
		// Free: at most what the uplink carries directly; the rest watch through relays.
		direct := b.cfg.DirectViewers
		if direct <= 0 {
			direct = swarm.DirectLimit(b.cfg.UplinkKbps*1000, int64(p.VideoBitRate+p.AudioBitRate))
		}
		b.server, err = swarm.Serve(swarm.ServeConfig{Host: b.node.Host(), Feed: b.feed, Origin: true, MaxViewers: direct,
			Seller: replicate.SellerConfig{OnApp: onApp}, Logger: b.log})
		if err == nil {
			b.seller = b.server.Seller()
			b.log.Info("serving a free stream", "direct viewers", direct)
		}
	} else {
		b.seller, err = replicate.NewSeller(replicate.SellerConfig{Host: b.node.Host(), Feed: b.feed, Gate: gate, Clock: b.cfg.Clock, Logger: b.log, OnApp: onApp})
	}
	if err != nil {
		return err
	}
	if b.gate != nil {
		b.gate.recheck = b.seller.Recheck
	}
	b.card = card.Card{Name: b.cfg.Name, Description: b.cfg.Description, Feed: b.feed.Key(), Seller: b.node.ID().String(),
		Addrs: card.FitAddrs(addrStrings(b.node.AddrInfo().Addrs)), Price: b.cfg.Price, Methods: methods, Network: network}
	if err := b.card.Validate(); err != nil {
		return fmt.Errorf("the stream's card is not valid: %w", err)
	}
	b.record.Name, b.record.Description, b.record.Preset = b.cfg.Name, b.cfg.Description, p.Name
	b.record.Card, b.record.LastLive, b.record.Price = b.card.String(), time.Now(), b.cfg.Price.String()
	if err := b.cfg.Data.saveStream(b.record); err != nil {
		return err
	}

	b.figMu.Lock()
	b.figures.Live, b.figures.Since, b.lastAt = true, time.Now(), time.Now()
	b.figMu.Unlock()
	if b.cfg.Preview != nil && b.cfg.Video != nil {
		if err := b.startPreview(ctx, sink.offset); err != nil {
			return err
		}
	}
	b.wentLive.Store(true)
	b.run(ctx, "capture", func(ctx context.Context) error { return pipe.Run(ctx) })
	capturing = true
	b.run(ctx, "figures", b.figuresLoop)
	b.run(ctx, "stream record", b.saveRecordLoop)
	b.header = sink.offset
	b.run(ctx, "viewers", b.watchViewers)
	if b.wallet != nil {
		b.run(ctx, "invoice desk", b.wallet.desk.Run)
		b.run(ctx, "ledger", func(ctx context.Context) error { b.wallet.ledger.Run(ctx, time.Second); return nil })
		b.run(ctx, "invoice requests", func(ctx context.Context) error { return b.serveRequests(ctx, requests) })
	}
	if b.cfg.Resume != "" && b.record.Card != "" {
		b.log.Info("resumed", "blocks before", sink.offset)
	}
	b.log.Info("live", "stream", b.id, "peer", b.node.ID(), "price", b.cfg.Price.String())
	return nil
}

// keepsCardTerms refuses payment settings that would break a resumed stream's card (cardText;
// "" for a new stream): viewers hold cards that name its network and ways to pay, and a card
// saying Lightning for a stream that now takes only on-chain payments cannot be paid with.
// Adding a way to pay is fine: the old cards still work.
func keepsCardTerms(cardText, network string, lightning, onChain bool) error {
	if cardText == "" {
		return nil
	}
	old, err := card.Parse(cardText)
	if err != nil || old.Price.IsFree() {
		return nil // the price check speaks for a free stream made paid
	}
	if old.Network != "" && old.Network != network {
		return fmt.Errorf("a resumed stream keeps its bitcoin network (%s): viewers hold cards that name it; "+
			"give payment settings on %s, or go live as a new stream", old.Network, old.Network)
	}
	for _, m := range old.Methods {
		name := map[card.Method]string{card.Lightning: "Lightning", card.OnChain: "on-chain"}[m]
		if m == card.Lightning && !lightning || m == card.OnChain && !onChain {
			return fmt.Errorf("a resumed stream keeps its ways to pay: viewers hold cards that offer %s payments; "+
				"give the %s settings again (adding a way is fine), or go live as a new stream", name, name)
		}
	}
	return nil
}

// samePrice says whether two prices charge the same per millisecond ("60 sats per hour" and
// "1 sat per minute" do).
func samePrice(a, b price.Price) bool {
	if a.IsFree() || b.IsFree() {
		return a.IsFree() == b.IsFree()
	}
	ah, al := bits.Mul64(a.Sats, b.PeriodMillis())
	bh, bl := bits.Mul64(b.Sats, a.PeriodMillis())
	return ah == bh && al == bl
}

// run starts one of the session's goroutines; an error from it ends the session.
func (b *Broadcaster) run(ctx context.Context, what string, fn func(context.Context) error) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			b.fail(stopped(b.log, what, err))
		}
	}()
}

type appRequest struct {
	from peer.ID
	msg  []byte
}

// serveRequests answers viewers' invoice requests one at a time.
func (b *Broadcaster) serveRequests(ctx context.Context, in <-chan appRequest) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-in:
			var req invoicemsg.Request
			var ans invoicemsg.Answer
			if err := req.UnmarshalBinary(r.msg); err != nil {
				ans = invoicemsg.Answer{Code: invoicemsg.BadRequest, Error: "The request could not be read; update Dazaar Vision."}
			} else {
				ans = b.wallet.desk.Handle(ctx, r.from.String(), req)
			}
			if ans.Code == invoicemsg.Unavailable {
				// The broadcaster can act on it (a node down, addresses used up): say it here,
				// not only in the log. The desk's words are the viewer's.
				b.ev.emit(Event{Kind: EventError, Viewer: r.from.String(), Text: "A viewer could not be given an invoice; they were told: " + ans.Error})
			}
			out, err := ans.MarshalBinary()
			if err != nil {
				b.log.Warn("cannot encode an invoice answer", "err", err)
				continue
			}
			if err := b.seller.Send(r.from, out); err != nil {
				b.log.Debug("cannot send an invoice answer", "viewer", r.from, "err", err)
			}
		}
	}
}

// watchViewers follows who is connected: a new viewer is told where this run's stream header
// is (a resumed stream has one per run), and for a paid stream the seller is told at once when
// a connected viewer's paid time changed (a payment credited or revoked), so blocks flow again
// within a check, not at the next deadline.
func (b *Broadcaster) watchViewers(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	// What each viewer was last checked with: paid time, and payments seen but unconfirmed
	// (which may grant nothing yet, but change what the viewer is told).
	type paidState struct {
		granted uint64
		pending int
	}
	granted := map[peer.ID]paidState{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		seen := map[peer.ID]bool{}
		for _, p := range b.seller.Viewers() {
			seen[p] = true
			if _, ok := granted[p]; !ok { // every new viewer, also of a stream never resumed (0)
				if err := b.seller.Send(p, headermsg.Encode(b.header)); err != nil {
					b.log.Debug("cannot tell a viewer where the stream header is", "viewer", p, "err", err)
				}
			}
			if b.wallet == nil {
				if _, ok := granted[p]; !ok {
					b.ev.emit(Event{Kind: EventViewer, Viewer: p.String(), Text: "viewer connected"})
				}
				granted[p] = paidState{}
				continue
			}
			bal := b.wallet.ledger.Balance(ledger.Key{Stream: b.id, Viewer: p.String()})
			now := paidState{bal.GrantedMillis, bal.Pending}
			if prev, ok := granted[p]; ok && now != prev {
				if now.granted > prev.granted {
					b.ev.emit(Event{Kind: EventPayment, Viewer: p.String(), Text: fmt.Sprintf("payment: %s more", human.Duration(time.Duration(now.granted-prev.granted)*time.Millisecond))})
				} else if now.pending > prev.pending {
					b.ev.emit(Event{Kind: EventPayment, Viewer: p.String(), Text: "payment seen, waiting for its confirmation"})
				}
				b.seller.Recheck(p)
			} else if !ok {
				b.ev.emit(Event{Kind: EventViewer, Viewer: p.String(), Text: "viewer connected"})
			}
			granted[p] = now
		}
		for p := range granted {
			if !seen[p] {
				delete(granted, p)
				b.ev.emit(Event{Kind: EventViewer, Viewer: p.String(), Text: "viewer left"})
			}
		}
	}
}

// appended remembers each new block's media time for billing.
func (b *Broadcaster) appended(index uint64, ms uint64, sync bool) {
	b.msMu.Lock()
	b.ms[index%uint64(len(b.ms))] = struct{ index, ms uint64 }{index + 1, ms}
	if sync {
		b.lastSync = index + 1
	}
	b.msMu.Unlock()
	if b.preview != nil {
		b.preview.arrived()
	}
}

// joinWindow is the blocks a viewer joining now needs before the live edge: from the newest
// sync block to the feed's length.
func (b *Broadcaster) joinWindow() (from, to uint64) {
	b.msMu.Lock()
	from = b.lastSync
	b.msMu.Unlock()
	if from == 0 {
		return 0, 0
	}
	return from - 1, b.feed.Length()
}

// blockMillis is the media time of block index: remembered for recent blocks, read from the
// feed for older ones (a viewer catching up).
func (b *Broadcaster) blockMillis(index uint64) uint64 {
	b.msMu.Lock()
	e := b.ms[index%uint64(len(b.ms))]
	b.msMu.Unlock()
	if e.index == index+1 {
		return e.ms
	}
	data, err := b.feed.Read(index)
	if err != nil {
		return 0
	}
	m, err := block.DecodeMedia(data)
	if err != nil {
		return 0 // a header: no media time
	}
	prevEnd := time.Duration(-1)
	if index > 0 {
		if prev, err := b.feed.Read(index - 1); err == nil {
			if pm, err := block.DecodeMedia(prev); err == nil {
				_, prevEnd, _ = mediaEnd(pm)
			}
		}
	}
	return mediaMillis(m, prevEnd)
}

// recordEvery is how often a live broadcaster saves stream.json (blocks, bytes, last live), so
// that a process killed while live leaves figures no older than this.
var recordEvery = 10 * time.Second

// saveRecordLoop saves the stream's record every recordEvery while live (Stop saves the last).
// A failed save is logged: the feed, not the record, holds the stream.
func (b *Broadcaster) saveRecordLoop(ctx context.Context) error {
	t := time.NewTicker(recordEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		h := b.feed.Head()
		b.record.Blocks, b.record.Bytes, b.record.LastLive = h.Length, h.ByteLength, time.Now()
		if err := b.cfg.Data.saveStream(b.record); err != nil {
			b.log.Warn("cannot save the stream's record", "err", err)
		}
	}
}

func (b *Broadcaster) figuresLoop(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		b.updateFigures()
		b.ev.emit(Event{Kind: EventFigures})
	}
}

func (b *Broadcaster) updateFigures() {
	st := b.pipe.Stats()
	now := time.Now()
	var f BroadcastFigures
	b.figMu.Lock()
	f.Live, f.Since = b.figures.Live, b.figures.Since
	if dt := now.Sub(b.lastAt).Seconds(); dt > 0 {
		f.FPS = float64(st.VideoFrames-b.lastStat.VideoFrames) / dt
		f.VideoKbps = float64(st.VideoBytes-b.lastStat.VideoBytes) * 8 / 1000 / dt
		f.AudioKbps = float64(st.AudioBytes-b.lastStat.AudioBytes) * 8 / 1000 / dt
	}
	b.lastStat, b.lastAt = st, now
	b.figMu.Unlock()
	h := b.feed.Head()
	f.Blocks, f.FeedBytes = h.Length, h.ByteLength
	for _, p := range b.seller.Viewers() {
		s := b.seller.Stats(p)
		vf := ViewerFigures{Peer: p.String(), Bytes: s.BytesSent, Blocks: s.Blocks}
		if b.wallet != nil {
			vf.Remaining = b.wallet.ledger.Remaining(ledger.Key{Stream: b.id, Viewer: p.String()})
			vf.Paying = vf.Remaining > 0
		}
		if vf.Paying {
			f.Paying++
		}
		f.BytesUp += s.BytesSent
		f.PerViewer = append(f.PerViewer, vf)
	}
	f.Viewers = len(f.PerViewer)
	if b.server != nil {
		f.DirectLimit, f.Redirected = b.server.MaxViewers(), b.server.TurnedAway()
	}
	if b.wallet != nil {
		for _, a := range b.wallet.ledger.Accounts(b.id) {
			f.EarnedMsat += a.Balance.SettledMsat
			for _, c := range a.Credits {
				if c.State == ledger.Provisional {
					f.ProvisionalMsat += c.Msat
					if c.Msat == 0 {
						f.Awaiting++
					}
				}
			}
		}
	}
	f.EventsDropped = b.ev.dropped.Load()
	b.figMu.Lock()
	b.figures = f
	b.figMu.Unlock()
}

// Snapshot is the newest figures.
func (b *Broadcaster) Snapshot() BroadcastFigures {
	b.figMu.Lock()
	defer b.figMu.Unlock()
	f := b.figures
	f.PerViewer = append([]ViewerFigures(nil), f.PerViewer...)
	return f
}

// Sales lists the stream's payments from the ledger.
func (b *Broadcaster) Sales() []Sale {
	if b.wallet == nil {
		return nil
	}
	var out []Sale
	for _, a := range b.wallet.ledger.Accounts(b.id) {
		for _, c := range a.Credits {
			m := "on-chain"
			if len(c.ID) > 3 && c.ID[:3] == "ln:" {
				m = "Lightning"
			}
			out = append(out, Sale{Viewer: a.Key.Viewer, ID: c.ID, Method: m, Msat: c.Msat, Millis: c.Millis, State: c.State, Note: c.Note, At: c.At})
		}
	}
	// Oldest first.
	slices.SortFunc(out, func(a, b Sale) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Stop ends the broadcast: capture stops, viewers are disconnected, everything is closed and
// every goroutine waited for. What was appended is kept; the stream can be resumed.
func (b *Broadcaster) Stop() error {
	b.stopOnce.Do(func() {
		if b.cancel != nil {
			b.cancel()
		}
		b.wg.Wait()
		// Capture has ended and its last blocks were pushed: the viewers are told the stream
		// ended (else they see the broadcaster go away, and say it will be back), briefly.
		if b.seller != nil { // (a free stream's is its server's)
			fctx, cancel := context.WithTimeout(context.Background(), farewellWait)
			if err := b.seller.Farewell(fctx, endmsg.Encode()); err != nil {
				b.log.Info("not every viewer was told the stream ended", "err", err)
			}
			cancel()
		}
		var errs []error
		if b.server != nil {
			errs = append(errs, b.server.Close()) // closes its seller
		} else if b.seller != nil {
			errs = append(errs, b.seller.Close())
		}
		if b.node != nil {
			errs = append(errs, b.node.Close())
		}
		if b.wallet != nil {
			errs = append(errs, b.wallet.desk.Close(), b.wallet.ledger.Close())
		}
		var final feed.Head
		if b.feed != nil {
			// Capture has ended (wg.Wait): the head is the stream's final state.
			final = b.feed.Head()
			b.record.Blocks, b.record.Bytes = final.Length, final.ByteLength
			if !b.record.LastLive.IsZero() {
				b.record.LastLive = time.Now()
			}
			live := b.wentLive.Load() || b.cfg.Resume != "" // a resumed stream's record is there already
			if b.record.ID != "" && live {
				errs = append(errs, b.cfg.Data.saveStream(b.record))
			}
			dk := b.feed.DiscoveryKey()
			errs = append(errs, b.feed.Close())
			if b.record.ID != "" && !live {
				// A new stream that failed to go live (the camera busy, the network refused):
				// nothing of it was shared, and a record without its name, card and price
				// would be listed under my streams and resume as a free stream. Its signing
				// key goes too: no card names its feed.
				errs = append(errs, b.cfg.Data.removeStream(b.record.ID), b.forgetSeed(dk))
			}
		}
		b.figMu.Lock()
		// The figures loop last ran up to a second before the last block: the stop figures
		// are the feed's final ones.
		b.figures.Live, b.figures.Blocks, b.figures.FeedBytes = false, final.Length, final.ByteLength
		if !b.figures.Since.IsZero() {
			b.figures.Until = time.Now()
		}
		b.figMu.Unlock()
		if err := errors.Join(errs...); err != nil {
			b.log.Warn("stopping the broadcast", "err", err)
		}
		b.ev.emit(Event{Kind: EventStopped})
		close(b.done)
	})
	return b.Err()
}
