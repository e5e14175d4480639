// Package invoice is the seller's invoice desk and the viewer's invoice check. The seller answers
// each viewer's invoice request with an invoice for that viewer alone (a fresh on-chain address
// from the watch-only account key, a Lightning invoice, or both in one BIP21/BIP321 URI), bounds
// how many it hands out, and turns payments it sees into access in the ledger.
package invoice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// Lightning is the seller's Lightning node as the invoice desk uses it (wallet/lightning's LND
// client implements it).
type Lightning interface {
	// AddInvoice creates an invoice and returns its payment hash (hex) and BOLT11 string.
	AddInvoice(ctx context.Context, msat uint64, memo string, expiry time.Duration) (hash, bolt11 string, err error)
	// Network is the node's chain: mainnet, testnet, signet, regtest or simnet.
	Network() string
	// LookupInvoice reports whether the invoice with this payment hash is settled.
	LookupInvoice(ctx context.Context, hash string) (s Settled, settled bool, err error)
	// Run follows settled invoices after settleIndex until ctx ends, reconnecting as needed,
	// and calls onSettled for each in order; an error from onSettled stops nothing but is
	// retried from the same index on the next connection.
	Run(ctx context.Context, settleIndex uint64, onSettled func(Settled) error) error
}

// Settled is a paid Lightning invoice.
type Settled = lightning.Settled

// OnChain configures on-chain invoices.
type OnChain struct {
	Key     *onchain.AccountKey
	Watcher onchain.Watcher // already configured with OnEvent = Seller.OnChainEvent
	// MinConf is the confirmations that settle a payment (default 1).
	MinConf int32
	// ProvisionalCapSats bounds the unconfirmed credit one viewer can hold for a stream
	// (0 means no unconfirmed credit at all: access starts at MinConf).
	ProvisionalCapSats uint64
	// GapLimit is the wallet's gap limit (default 20, the BIP44 standard). The desk never lets
	// more than this many unused addresses follow the last paid one, so a restore of the
	// seller's wallet finds every payment.
	GapLimit uint32
	// MinSats is the smallest on-chain invoice (default 1 000; dust is 294).
	MinSats uint64
}

// Config configures a Seller.
type Config struct {
	// PriceOf returns a stream's price; ok is false for a stream the seller does not sell.
	PriceOf   func(stream string) (p price.Price, ok bool)
	Ledger    *ledger.Ledger
	StorePath string // the invoice file
	OnChain   *OnChain
	Lightning Lightning

	Expiry     time.Duration // default 15 min
	Monitoring time.Duration // late payments are still credited this long after expiry; default 24 h

	PerViewer        int     // unpaid, unexpired invoices per viewer and stream (default 3)
	RatePerSec       float64 // global invoice creation rate (default 2/s)
	Burst            int     // default 20
	MaxOutstandingLN int     // unpaid, unexpired Lightning invoices (default 1 000)

	Label string // BIP21 label, default "Dazaar Vision"
	Now   func() time.Time
	Log   *slog.Logger
}

// Seller is the invoice desk. Create with New, then Run.
type Seller struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	st        *store
	invoices  map[string]*Invoice // by ID
	byAddress map[string]*Invoice
	byHash    map[string]*Invoice
	nextIndex uint32
	usedUpTo  int64 // highest derivation index that received a payment, -1 for none
	tokens    float64
	lastFill  time.Time

	pendingViewer map[string]int // invoices being made, per viewer and stream
	pendingLN     int
}

// New opens the invoice store and loads what was issued before.
func New(cfg Config) (*Seller, error) {
	if cfg.PriceOf == nil || cfg.Ledger == nil || cfg.StorePath == "" {
		return nil, errors.New("invoice: a seller needs prices, a ledger and a store path")
	}
	if cfg.OnChain == nil && cfg.Lightning == nil {
		return nil, errors.New("invoice: configure on-chain, Lightning, or both")
	}
	if cfg.OnChain != nil {
		if cfg.OnChain.Key == nil || cfg.OnChain.Watcher == nil {
			return nil, errors.New("invoice: on-chain needs an account key and a watcher")
		}
		if cfg.OnChain.MinConf <= 0 {
			cfg.OnChain.MinConf = 1
		}
		if cfg.OnChain.GapLimit == 0 {
			cfg.OnChain.GapLimit = 20
		}
		if cfg.OnChain.MinSats == 0 {
			cfg.OnChain.MinSats = 1000
		}
	}
	if cfg.OnChain != nil && cfg.Lightning != nil {
		if chain, ln := onchain.NetworkName(cfg.OnChain.Key.Net()), cfg.Lightning.Network(); chain != ln {
			return nil, fmt.Errorf("invoice: the on-chain wallet is on %s but the Lightning node on %s", chain, ln)
		}
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 15 * time.Minute
	}
	if cfg.Monitoring <= 0 {
		cfg.Monitoring = 24 * time.Hour
	}
	if cfg.PerViewer <= 0 {
		cfg.PerViewer = 3
	}
	if cfg.RatePerSec <= 0 {
		cfg.RatePerSec = 2
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 20
	}
	if cfg.MaxOutstandingLN <= 0 {
		cfg.MaxOutstandingLN = 1000
	}
	if cfg.Label == "" {
		cfg.Label = "Dazaar Vision"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Seller{cfg: cfg, log: cfg.Log, invoices: map[string]*Invoice{}, byAddress: map[string]*Invoice{},
		byHash: map[string]*Invoice{}, usedUpTo: -1, pendingViewer: map[string]int{}, tokens: float64(cfg.Burst), lastFill: cfg.Now()}
	load := func() (*store, int, error) {
		return openStore(cfg.StorePath, func(inv Invoice) { s.index(&inv) },
			func(n uint32) { s.nextIndex = max(s.nextIndex, n) })
	}
	st, records, err := load()
	if err != nil {
		return nil, err
	}
	// Unpaid invoices whose monitoring window has ended are forgotten when the file is
	// rewritten; paid ones are kept (they say which viewer an address or hash belongs to).
	now := cfg.Now()
	var keep []*Invoice
	for _, inv := range s.invoices {
		if inv.Paid || !now.After(inv.Expires.Add(cfg.Monitoring)) {
			keep = append(keep, inv)
		}
	}
	if records > 2*len(keep)+256 {
		st.close()
		if err := rewriteStore(cfg.StorePath, keep, s.nextIndex); err != nil {
			return nil, fmt.Errorf("invoice: compacting %s: %w", cfg.StorePath, err)
		}
		s.invoices, s.byAddress, s.byHash, s.nextIndex, s.usedUpTo = map[string]*Invoice{}, map[string]*Invoice{}, map[string]*Invoice{}, 0, -1
		if st, _, err = load(); err != nil {
			return nil, err
		}
	}
	s.st = st
	if cfg.OnChain != nil {
		var addrs []btcutil.Address
		for _, inv := range s.invoices {
			if inv.Address == "" || now.After(inv.Expires.Add(cfg.Monitoring)) && !inv.Paid {
				continue
			}
			a, err := onchain.ParseAddress(inv.Address, cfg.OnChain.Key.Net())
			if err != nil {
				st.close()
				return nil, fmt.Errorf("invoice: stored address: %w", err)
			}
			addrs = append(addrs, a)
		}
		if err := cfg.OnChain.Watcher.Watch(addrs...); err != nil {
			st.close()
			return nil, err
		}
		// Payments the last run credited: the watcher confirms, demotes or revokes them on its
		// first scan (those settled deeper than it scans stay as they are).
		var open []onchain.Event
		for _, inv := range s.invoices {
			if inv.Address == "" || !inv.Paid {
				continue
			}
			for _, c := range cfg.Ledger.Credits(ledger.Key{Stream: inv.Stream, Viewer: inv.Viewer}) {
				if c.State == ledger.Revoked || c.State == ledger.Settled && c.Height <= 0 || !strings.HasPrefix(c.ID, "btc:") {
					continue
				}
				txid, vout, ok := strings.Cut(strings.TrimPrefix(c.ID, "btc:"), ":")
				h, err := chainhash.NewHashFromStr(txid)
				n, err2 := strconv.ParseUint(vout, 10, 32)
				if !ok || err != nil || err2 != nil {
					continue
				}
				e := onchain.Event{Kind: onchain.Seen, OutPoint: wire.OutPoint{Hash: *h, Index: uint32(n)}, Address: inv.Address,
					Sats: int64(c.Msat / 1000)}
				if c.State == ledger.Settled {
					e.Kind, e.Height = onchain.Confirmed, c.Height
				}
				open = append(open, e)
			}
		}
		cfg.OnChain.Watcher.Resume(open...)
	}
	return s, nil
}

func (s *Seller) index(inv *Invoice) {
	s.invoices[inv.ID] = inv
	if inv.Address != "" {
		s.byAddress[inv.Address] = inv
		if inv.Paid {
			s.usedUpTo = max(s.usedUpTo, int64(inv.Index))
		}
	}
	if inv.Hash != "" {
		s.byHash[inv.Hash] = inv
	}
}

// Close closes the invoice store (Run must have returned).
func (s *Seller) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.close()
}

// Run follows Lightning payments and the chain until ctx ends.
func (s *Seller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if s.cfg.OnChain != nil {
		wg.Add(2)
		go func() { defer wg.Done(); errs <- s.cfg.OnChain.Watcher.Run(ctx) }()
		go func() { defer wg.Done(); s.saveHeights(ctx) }()
	}
	if s.cfg.Lightning != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := uint64(0)
			if v, ok := s.cfg.Ledger.Meta(s.settleKey()); ok {
				idx, _ = strconv.ParseUint(v, 10, 64)
			}
			// Settles the subscription cannot replay (none stored yet, or older than the stored
			// index) are found by asking about each open invoice.
			s.reconcileLightning(ctx)
			errs <- s.cfg.Lightning.Run(ctx, idx, s.LightningSettled)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return ctx.Err()
}

func heightKey(net *chaincfg.Params) string { return "onchain.height." + onchain.NetworkName(net) }

// ResumeHeight is the block from which a watcher should scan after a restart so that no payment
// confirmed while the app was down is missed: a few blocks (reorg depth) below the highest block
// the last run scanned, or 0 (the watcher's default) on a first run. Pass it as
// WatchConfig.StartHeight.
func ResumeHeight(l *ledger.Ledger, net *chaincfg.Params) int32 {
	v, ok := l.Meta(heightKey(net))
	if !ok {
		return 0
	}
	h, err := strconv.ParseInt(v, 10, 32)
	if err != nil || h <= 0 {
		return 0
	}
	return int32(max(1, h-6))
}

// saveHeights records how far the watcher has scanned, every 10 s and when ctx ends.
func (s *Seller) saveHeights(ctx context.Context) {
	key := heightKey(s.cfg.OnChain.Key.Net())
	save := func() {
		h := s.cfg.OnChain.Watcher.Height()
		if h <= 0 {
			return
		}
		if v, ok := s.cfg.Ledger.Meta(key); ok {
			if cur, _ := strconv.ParseInt(v, 10, 32); int32(cur) >= h {
				return
			}
		}
		if err := s.cfg.Ledger.SetMeta(key, strconv.Itoa(int(h))); err != nil {
			s.log.Error("invoice: saving the scanned block height failed", "err", err)
		}
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			save()
			return
		case <-t.C:
			save()
		}
	}
}

func (s *Seller) settleKey() string { return "lnd.settle_index." + s.cfg.Lightning.Network() }

// take spends a token of the global creation rate limit. Locked.
func (s *Seller) take() bool {
	now := s.cfg.Now()
	s.tokens = min(float64(s.cfg.Burst), s.tokens+now.Sub(s.lastFill).Seconds()*s.cfg.RatePerSec)
	s.lastFill = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func refuse(code invoicemsg.Code, format string, args ...any) invoicemsg.Answer {
	return invoicemsg.Answer{Code: code, Error: fmt.Sprintf(format, args...)}
}

// Memo is the Lightning invoice description binding an invoice to a stream and a viewer, in the
// form the original Dazaar used.
func Memo(stream, viewer string) string { return "dazaar: " + stream + " " + viewer }

// Handle answers viewer's request. viewer must be the peer ID the transport authenticated.
func (s *Seller) Handle(ctx context.Context, viewer string, req invoicemsg.Request) invoicemsg.Answer {
	if viewer == "" || len(viewer) > ledger.MaxIDLen {
		return refuse(invoicemsg.BadRequest, "unauthenticated viewer")
	}
	if err := req.Validate(); err != nil {
		return refuse(invoicemsg.BadRequest, "%v", err)
	}
	p, ok := s.cfg.PriceOf(req.Stream)
	if !ok {
		return refuse(invoicemsg.Refused, "this seller does not sell stream %q", req.Stream)
	}
	if p.IsFree() {
		return refuse(invoicemsg.Refused, "this stream is free; no payment needed")
	}
	sats := req.Sats
	if req.Minutes > 0 {
		var err error
		if sats, err = p.CostSats(time.Duration(req.Minutes) * time.Minute); err != nil {
			return refuse(invoicemsg.BadRequest, "%v", err)
		}
	}
	wantChain := req.Method == invoicemsg.OnChain || req.Method == invoicemsg.Any
	wantLN := req.Method == invoicemsg.Lightning || req.Method == invoicemsg.Any
	if wantChain && s.cfg.OnChain == nil {
		return refuse(invoicemsg.Unavailable, "this seller takes Lightning payments only")
	}
	if wantLN && s.cfg.Lightning == nil {
		return refuse(invoicemsg.Unavailable, "this seller takes on-chain payments only")
	}
	if wantChain && sats < s.cfg.OnChain.MinSats {
		return refuse(invoicemsg.Refused, "on-chain payments start at %d sats (fees make smaller ones impractical); buy more time or pay with Lightning", s.cfg.OnChain.MinSats)
	}

	s.mu.Lock()
	now := s.cfg.Now()
	pkey := viewer + "\x00" + req.Stream
	mine, lnOut := s.pendingViewer[pkey], s.pendingLN
	for _, inv := range s.invoices {
		if inv.Paid || now.After(inv.Expires) {
			continue
		}
		if inv.Viewer == viewer && inv.Stream == req.Stream {
			mine++
		}
		if inv.Hash != "" {
			lnOut++
		}
	}
	if mine >= s.cfg.PerViewer {
		s.mu.Unlock()
		return refuse(invoicemsg.RateLimited, "you already have %d unpaid invoices for this stream; pay one or wait for them to expire", mine)
	}
	if wantLN && lnOut >= s.cfg.MaxOutstandingLN {
		s.mu.Unlock()
		return refuse(invoicemsg.RateLimited, "the seller has too many unpaid Lightning invoices; try again in a few minutes")
	}
	var index uint32
	if wantChain {
		gap := int64(s.nextIndex) - (s.usedUpTo + 1)
		if gap >= int64(s.cfg.OnChain.GapLimit) {
			s.mu.Unlock()
			s.log.Warn("invoice: on-chain invoice refused: the wallet's gap limit would be exceeded. "+
				"Raise the gap limit in your wallet (e.g. Electrum, Sparrow: wallet settings) and in Dazaar Vision's settings together",
				"gap_limit", s.cfg.OnChain.GapLimit, "unused_addresses", gap)
			return refuse(invoicemsg.Unavailable, "the seller cannot hand out more bitcoin addresses right now; try Lightning or again later")
		}
		index = s.nextIndex
	}
	if !s.take() {
		s.mu.Unlock()
		return refuse(invoicemsg.RateLimited, "the seller is creating too many invoices; try again in a few seconds")
	}
	// Count this invoice against the caps while it is being made, so concurrent requests
	// cannot slip past them.
	s.pendingViewer[pkey]++
	if wantLN {
		s.pendingLN++
	}
	released := false
	release := func() { // locked
		if released {
			return
		}
		released = true
		if s.pendingViewer[pkey]--; s.pendingViewer[pkey] == 0 {
			delete(s.pendingViewer, pkey)
		}
		if wantLN {
			s.pendingLN--
		}
	}
	defer func() {
		s.mu.Lock()
		release()
		s.mu.Unlock()
	}()
	// Reserve the address index durably before anyone sees it.
	if wantChain {
		next := index + 1
		if err := s.st.put(storeRecord{NextIndex: &next}); err != nil {
			s.mu.Unlock()
			s.log.Error("invoice: saving invoice failed", "err", err)
			return refuse(invoicemsg.Unavailable, "the seller could not save the invoice")
		}
		s.nextIndex = next
	}
	s.mu.Unlock()

	idb := make([]byte, 16)
	rand.Read(idb)
	inv := &Invoice{ID: hex.EncodeToString(idb), Stream: req.Stream, Viewer: viewer, Method: req.Method, Sats: sats,
		Price: p, Created: now, Expires: now.Add(s.cfg.Expiry), Index: index}
	var addr btcutil.Address
	if wantChain {
		a, err := s.cfg.OnChain.Key.Address(index)
		if err != nil {
			return refuse(invoicemsg.Unavailable, "the seller could not derive an address: %v", err)
		}
		addr, inv.Address = a, a.EncodeAddress()
	}
	if wantLN {
		hash, bolt11, err := s.cfg.Lightning.AddInvoice(ctx, sats*1000, Memo(req.Stream, viewer), s.cfg.Expiry)
		if err != nil {
			s.log.Error("invoice: Lightning node refused an invoice", "err", err)
			return refuse(invoicemsg.Unavailable, "the seller's Lightning node is not answering; try again later or pay on-chain")
		}
		inv.Hash, inv.Bolt11 = hash, bolt11
	}
	s.mu.Lock()
	err := s.st.put(storeRecord{Invoice: inv})
	if err == nil {
		s.index(inv)
		release()
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("invoice: saving invoice failed", "err", err)
		return refuse(invoicemsg.Unavailable, "the seller could not save the invoice")
	}
	if addr != nil {
		if err := s.cfg.OnChain.Watcher.Watch(addr); err != nil {
			return refuse(invoicemsg.Unavailable, "the seller cannot watch the address: %v", err)
		}
	}
	ans := invoicemsg.Answer{ID: inv.ID, Stream: inv.Stream, Method: inv.Method, Sats: sats,
		Millis: p.MillisFor(sats * 1000), ExpiresAt: inv.Expires.Unix(), Address: inv.Address, Bolt11: inv.Bolt11}
	if wantChain {
		ans.Network = onchain.NetworkName(s.cfg.OnChain.Key.Net())
		ans.URI = onchain.PaymentURI{Address: inv.Address, Sats: sats, Label: s.cfg.Label,
			Message:   fmt.Sprintf("%s of stream %s", time.Duration(ans.Millis)*time.Millisecond, short(inv.Stream)),
			Lightning: inv.Bolt11}.String()
	} else {
		ans.Network = s.cfg.Lightning.Network()
		ans.URI = "lightning:" + inv.Bolt11
	}
	s.log.Info("invoice: issued", "id", inv.ID, "stream", inv.Stream, "viewer", viewer, "sats", sats, "method", inv.Method.String())
	return ans
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// Invoice returns an issued invoice by ID.
func (s *Seller) Invoice(id string) (Invoice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invoices[id]
	if !ok {
		return Invoice{}, false
	}
	return *inv, true
}

func (s *Seller) markPaid(inv *Invoice) error {
	if inv.Paid {
		return nil
	}
	c := *inv
	c.Paid = true
	if err := s.st.put(storeRecord{Invoice: &c}); err != nil {
		return err
	}
	inv.Paid = true
	if inv.Address != "" {
		s.usedUpTo = max(s.usedUpTo, int64(inv.Index))
	}
	return nil
}

// describe says in plain words how a payment compares with its invoice.
func describe(inv *Invoice, paidSats uint64, late bool) string {
	var msg string
	switch {
	case paidSats < inv.Sats:
		msg = fmt.Sprintf("underpaid: %d of %d sats, credited as %v of access", paidSats, inv.Sats, inv.Price.DurationFor(paidSats))
	case paidSats > inv.Sats:
		msg = fmt.Sprintf("overpaid: %d sats for a %d-sat invoice, all credited as %v of access", paidSats, inv.Sats, inv.Price.DurationFor(paidSats))
	default:
		msg = fmt.Sprintf("paid in full: %v of access", inv.Price.DurationFor(paidSats))
	}
	if late {
		msg += "; paid after the invoice expired, credited anyway"
	}
	return msg
}

// OnChainEvent turns a watcher event into ledger credit. Pass it as the watcher's OnEvent.
func (s *Seller) OnChainEvent(e onchain.Event) {
	if err := s.onChainEvent(e); err != nil {
		s.log.Error("invoice: crediting an on-chain payment failed; it will be retried on the next event", "err", err,
			"outpoint", e.OutPoint.String())
	}
}

func (s *Seller) onChainEvent(e onchain.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.byAddress[e.Address]
	if inv == nil {
		s.log.Warn("invoice: payment to an address with no invoice", "address", e.Address, "sats", e.Sats)
		return nil
	}
	key := ledger.Key{Stream: inv.Stream, Viewer: inv.Viewer}
	id := "btc:" + e.OutPoint.String()
	paid := uint64(max(e.Sats, 0))
	late := s.cfg.Now().After(inv.Expires)
	if old, ok := s.cfg.Ledger.Credit(key, id); ok {
		late = strings.Contains(old.Note, "after the invoice expired")
	}
	c := ledger.Credit{ID: id}
	switch {
	case e.Kind == onchain.Gone:
		old, ok := s.cfg.Ledger.Credit(key, id)
		if !ok {
			return nil
		}
		c.Msat, c.Millis, c.State = old.Msat, old.Millis, ledger.Revoked
		c.Note = "revoked: " + e.Reason
	case e.Kind == onchain.Confirmed && e.Confirmations >= s.cfg.OnChain.MinConf:
		c.Msat = paid * 1000
		c.Millis = inv.Price.MillisFor(c.Msat)
		c.State = ledger.Settled
		c.Height = e.Height
		c.Note = describe(inv, paid, late)
	default: // in the mempool, or confirmed fewer times than MinConf
		capMsat := s.cfg.OnChain.ProvisionalCapSats * 1000
		for _, o := range s.cfg.Ledger.Credits(key) {
			if o.State == ledger.Provisional && o.ID != id {
				capMsat -= min(capMsat, o.Msat)
			}
		}
		c.Msat = min(paid*1000, capMsat)
		c.Millis = inv.Price.MillisFor(c.Msat)
		c.State = ledger.Provisional
		c.Note = "unconfirmed; provisional until confirmed: " + describe(inv, paid, late)
		if e.Reason != "" {
			c.Note = "unconfirmed again (" + e.Reason + "): " + describe(inv, paid, late)
		}
	}
	if old, ok := s.cfg.Ledger.Credit(key, id); ok && old.State == c.State && old.Msat == c.Msat && old.Millis == c.Millis && old.Height == c.Height {
		return nil
	}
	if c.State != ledger.Revoked {
		if err := s.markPaid(inv); err != nil {
			return err
		}
	}
	if _, err := s.cfg.Ledger.SetCredit(key, c); err != nil {
		return err
	}
	s.log.Info("invoice: on-chain payment", "invoice", inv.ID, "viewer", inv.Viewer, "state", c.State.String(),
		"sats", paid, "access", time.Duration(c.Millis)*time.Millisecond, "note", c.Note)
	return nil
}

// reconcileLightning looks up every unpaid Lightning invoice still within its monitoring window
// and credits those LND reports settled.
func (s *Seller) reconcileLightning(ctx context.Context) {
	s.mu.Lock()
	now := s.cfg.Now()
	var hashes []string
	for _, inv := range s.invoices {
		if inv.Hash != "" && !inv.Paid && !now.After(inv.Expires.Add(s.cfg.Monitoring)) {
			hashes = append(hashes, inv.Hash)
		}
	}
	s.mu.Unlock()
	for _, h := range hashes {
		st, settled, err := s.cfg.Lightning.LookupInvoice(ctx, h)
		if err != nil {
			s.log.Warn("invoice: could not ask LND about an invoice; the subscription will report it if paid", "err", err)
			return
		}
		if settled {
			if err := s.credit(st); err != nil {
				s.log.Error("invoice: crediting a Lightning payment failed", "err", err)
			}
		}
	}
}

// LightningSettled credits a settled Lightning invoice and then records the settle index, so a
// restart resumes after it; a repeat is credited once.
func (s *Seller) LightningSettled(st Settled) error {
	if err := s.credit(st); err != nil {
		return err
	}
	// The index only moves forward (a lookup may credit an older settle).
	if v, ok := s.cfg.Ledger.Meta(s.settleKey()); ok {
		if cur, _ := strconv.ParseUint(v, 10, 64); cur >= st.SettleIndex {
			return nil
		}
	}
	return s.cfg.Ledger.SetMeta(s.settleKey(), strconv.FormatUint(st.SettleIndex, 10))
}

// credit turns a settled Lightning invoice of ours into ledger credit, once.
func (s *Seller) credit(st Settled) error {
	s.mu.Lock()
	inv := s.byHash[st.Hash]
	if inv == nil {
		s.mu.Unlock()
		s.log.Debug("invoice: settled Lightning invoice that is not ours", "hash", st.Hash)
		return nil
	}
	key := ledger.Key{Stream: inv.Stream, Viewer: inv.Viewer}
	paid := st.AmtPaidMsat / 1000
	c := ledger.Credit{ID: "ln:" + st.Hash, Msat: st.AmtPaidMsat, Millis: inv.Price.MillisFor(st.AmtPaidMsat),
		State: ledger.Settled, Note: describe(inv, paid, s.cfg.Now().After(inv.Expires))}
	err := s.markPaid(inv)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	changed, err := s.cfg.Ledger.SetCredit(key, c)
	if err != nil {
		return err
	}
	if changed {
		s.log.Info("invoice: Lightning payment", "invoice", inv.ID, "viewer", inv.Viewer, "msat", st.AmtPaidMsat,
			"access", time.Duration(c.Millis)*time.Millisecond)
	}
	return nil
}

// Status is what the seller's UI shows about the invoice desk.
type Status struct {
	UnusedAddresses int64  // addresses handed out after the last one that was paid
	GapLimit        uint32 // 0 without on-chain invoices
	UnpaidLN        int    // unexpired, unpaid Lightning invoices
	// GapAdvice is set when unused addresses reach three quarters of the gap limit: it tells
	// the seller how to let their wallet see more of them.
	GapAdvice string
}

// Status reports the desk's bounds in use.
func (s *Seller) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Status
	now := s.cfg.Now()
	for _, inv := range s.invoices {
		if inv.Hash != "" && !inv.Paid && !now.After(inv.Expires) {
			st.UnpaidLN++
		}
	}
	if s.cfg.OnChain == nil {
		return st
	}
	st.GapLimit = s.cfg.OnChain.GapLimit
	st.UnusedAddresses = int64(s.nextIndex) - (s.usedUpTo + 1)
	if 4*st.UnusedAddresses >= 3*int64(st.GapLimit) {
		st.GapAdvice = fmt.Sprintf("%d of the %d unused addresses your wallet looks ahead for are handed out to "+
			"viewers who have not paid. A wallet restored from its seed stops looking after %d unused addresses, so "+
			"payments beyond that would not show up in it. To allow more invoices at once, raise the gap limit in your "+
			"wallet (Sparrow: Settings → Gap limit; Electrum: `wallet.change_gap_limit(N)` in the console; BlueWallet "+
			"and others: see their settings), then raise it to the same number here.",
			st.UnusedAddresses, st.GapLimit, st.GapLimit)
	}
	return st
}
