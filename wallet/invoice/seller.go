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
	// ProvisionalTotalCapSats bounds the unconfirmed credit all viewers together can hold
	// (0: no bound beyond ProvisionalCapSats per viewer). Peer IDs cost nothing, so a seller
	// who gives unconfirmed credit should set it: it is what a double-spender can take at once.
	ProvisionalTotalCapSats uint64
	// GapLimit bounds the addresses waiting for payment at once (default DefaultGapLimit, the
	// BIP44 standard): at most this many handed-out addresses have no payment yet, so the
	// seller's wallet, which looks this many addresses past the last used one, sees every
	// payment. An address paid in the mempool no longer waits, so the bound limits viewers who
	// asked and have not paid yet, not payers per block. Show GapLimitHelp where it is set.
	GapLimit uint32
	// MinSats is the smallest on-chain invoice (default 1 000; dust is 294).
	MinSats uint64
}

// DefaultGapLimit is the gap limit most wallets use (BIP44): the default OnChain.GapLimit.
const DefaultGapLimit = 20

// GapLimitHelp is the advice to show beside the gap-limit setting.
const GapLimitHelp = "How many viewers may hold an unpaid bitcoin address at once. Your wallet only looks this " +
	"many addresses past the last one that received money, so set the same gap limit in your wallet " +
	"(Sparrow: Settings → Gap limit; Electrum: wallet.change_gap_limit(N) in the console) or payments " +
	"beyond it will not show up there. The default, 20, is what most wallets use; raise both together if " +
	"viewers are told that no more bitcoin addresses can be handed out right now. Viewers who have paid " +
	"(even before the first confirmation) do not count."

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

	keyID string // the account key's ID ("" without on-chain invoices)

	mu        sync.Mutex
	st        *store
	invoices  map[string]*Invoice // by ID
	byAddress map[string]*Invoice // the newest invoice for each address
	byHash    map[string]*Invoice
	next      map[string]uint32 // next derivation index, per account key ID
	usedUpTo  int64             // highest index of the current key with a settled payment, -1 for none
	tokens    float64
	lastFill  time.Time

	pendingViewer map[string]int // invoices being made, per viewer and stream
	pendingLN     int
	pendingChain  int // fresh addresses being made

	// provisional remembers the full amount of each unconfirmed payment seen in this run, so
	// that a revoked one (e.g. replaced by a fee bump) lets the others fill the cap again.
	provisional map[string]provPayment // by credit ID

	// The Lightning node's key (hex), learned from the invoices it signs; the settle index is
	// stored per node. lnRestart asks the subscription to start over when the node changes.
	lnNode    string
	lnRestart chan struct{}
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
			cfg.OnChain.GapLimit = DefaultGapLimit
		}
		if cfg.OnChain.MinSats == 0 {
			cfg.OnChain.MinSats = 1000
		}
		// The watcher must follow each payment at least until it settles.
		cfg.OnChain.Watcher.FollowDepth(cfg.OnChain.MinConf)
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
	s := &Seller{cfg: cfg, log: cfg.Log, pendingViewer: map[string]int{}, tokens: float64(cfg.Burst), lastFill: cfg.Now(),
		provisional: map[string]provPayment{}, lnRestart: make(chan struct{}, 1)}
	if cfg.OnChain != nil {
		if s.keyID = cfg.OnChain.Key.ID(); s.keyID == "" {
			return nil, errors.New("invoice: the account key has no usable public key")
		}
	}
	load := func() (*store, int, error) {
		s.invoices, s.byAddress, s.byHash, s.next, s.usedUpTo = map[string]*Invoice{}, map[string]*Invoice{}, map[string]*Invoice{}, map[string]uint32{}, -1
		legacyMine := false
		st, n, err := openStore(cfg.StorePath, func(inv Invoice) {
			if inv.Address != "" && inv.Key == "" {
				// Written before account keys were recorded, when any payment counted as use.
				inv.Used = inv.Paid
				inv.Key = "legacy"
				if cfg.OnChain != nil {
					if a, err := cfg.OnChain.Key.Address(inv.Index); err == nil && a.EncodeAddress() == inv.Address {
						inv.Key, legacyMine = s.keyID, true
					}
				}
			}
			s.index(&inv)
		}, func(key string, n uint32) { s.next[key] = max(s.next[key], n) })
		if err != nil {
			return nil, 0, err
		}
		// A counter from before keys were recorded belongs to the current key unless its
		// invoices show otherwise (when unsure, a higher index is safe; reusing one is not).
		if n, ok := s.next[""]; ok {
			delete(s.next, "")
			if legacyMine || s.keyID != "" && !s.anyLegacy() {
				s.next[s.keyID] = max(s.next[s.keyID], n)
			} else {
				s.next["legacy"] = max(s.next["legacy"], n)
			}
		}
		// The Lightning node is the one that signed the newest invoice.
		var newest *Invoice
		for _, inv := range s.invoices {
			if inv.Hash != "" && (newest == nil || inv.Created.After(newest.Created)) {
				newest = inv
			}
		}
		if newest != nil {
			s.lnNode = payee(newest.Bolt11)
		}
		return st, n, nil
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
		if err := rewriteStore(cfg.StorePath, keep, s.next); err != nil {
			return nil, fmt.Errorf("invoice: compacting %s: %w", cfg.StorePath, err)
		}
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
			// Also unpaid ones in their monitoring window: a credit may have been written
			// just before a crash kept the invoice from being marked paid.
			if inv.Address == "" || !inv.Paid && now.After(inv.Expires.Add(cfg.Monitoring)) {
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
		if old := s.byAddress[inv.Address]; old == nil || !old.Created.After(inv.Created) {
			s.byAddress[inv.Address] = inv
		}
		if inv.Used && inv.Key == s.keyID {
			s.usedUpTo = max(s.usedUpTo, int64(inv.Index))
		}
	}
	if inv.Hash != "" {
		s.byHash[inv.Hash] = inv
	}
}

// anyLegacy reports whether an invoice from before keys were recorded names an address of
// another key. Locked.
func (s *Seller) anyLegacy() bool {
	for _, inv := range s.invoices {
		if inv.Key == "legacy" {
			return true
		}
	}
	return false
}

// payee is the node key (hex) that signed a BOLT11 invoice, or "" if it cannot be read.
func payee(bolt11 string) string {
	inv, err := lightning.DecodeBolt11(bolt11)
	if err != nil || len(inv.Payee) == 0 {
		return ""
	}
	return hex.EncodeToString(inv.Payee)
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
		go func() { defer wg.Done(); errs <- s.runLightning(ctx) }()
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

// saveHeights records how far the watcher has scanned, every 2 s (a write only when a block
// came) and when ctx ends.
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
	t := time.NewTicker(2 * time.Second)
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

// ConnectNotifier is implemented by Lightning backends that can report each (re)connection of
// their subscription (wallet/lightning's client does).
type ConnectNotifier interface {
	RunNotify(ctx context.Context, settleIndex uint64, onSettled func(Settled) error, onConnected func(context.Context)) error
}

// runLightning follows settles until ctx ends, starting over when the node changes.
func (s *Seller) runLightning(ctx context.Context) error {
	for {
		s.mu.Lock()
		node := s.lnNode
		s.mu.Unlock()
		idx := uint64(0)
		if node != "" {
			if v, ok := s.cfg.Ledger.Meta(s.settleKey(node)); ok {
				idx, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		sub, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			onSettled := func(st Settled) error {
				n := node
				if n == "" { // learned since from an invoice the same node signed
					s.mu.Lock()
					n = s.lnNode
					s.mu.Unlock()
				}
				return s.lightningSettled(n, st)
			}
			if n, ok := s.cfg.Lightning.(ConnectNotifier); ok {
				// LND replays nothing for a subscription from index 0, so while no index is
				// stored, settles are looked for by asking about each open invoice after every
				// (re)connection: one may have settled while the subscription was down.
				// The first connection always looks (a settle older than the stored index,
				// or one whose credit failed, is not replayed either).
				first := true
				done <- n.RunNotify(sub, idx, onSettled, func(ctx context.Context) {
					if _, ok := s.cfg.Ledger.Meta(s.settleKey(node)); first || !ok || node == "" {
						if s.reconcileLightning(ctx) {
							first = false
						}
					}
				})
				return
			}
			s.reconcileLightning(sub)
			done <- s.cfg.Lightning.Run(sub, idx, onSettled)
		}()
		select {
		case err := <-done:
			cancel()
			return err
		case <-s.lnRestart:
			cancel()
			<-done
			s.log.Info("invoice: the Lightning node changed; following its settles from its own index")
		}
	}
}

// settleKey names the stored settle index of a node: indexes of different nodes (after a
// migration or a restore) have nothing to do with each other.
func (s *Seller) settleKey(node string) string {
	return "lnd.settle_index." + s.cfg.Lightning.Network() + "." + node
}

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
	// An address of this viewer's whose invoice expired unpaid is handed out again rather
	// than a fresh one (a late payment to it still goes to the same viewer and stream).
	var reuse *Invoice
	if wantChain {
		for _, inv := range s.byAddress {
			if inv.Key == s.keyID && inv.Viewer == viewer && inv.Stream == req.Stream && !inv.Paid && now.After(inv.Expires) &&
				!now.After(inv.Expires.Add(s.cfg.Monitoring)) && (reuse == nil || inv.Index < reuse.Index) {
				reuse = inv
			}
		}
		if reuse == nil {
			if out := s.outstanding(now) + s.pendingChain; out >= int(s.cfg.OnChain.GapLimit) {
				s.mu.Unlock()
				s.log.Warn("invoice: on-chain invoice refused: as many addresses as the wallet's gap limit are waiting for "+
					"payment. Raise the gap limit in your wallet (e.g. Electrum, Sparrow: wallet settings) and in Dazaar "+
					"Vision's settings together to allow more at once",
					"gap_limit", s.cfg.OnChain.GapLimit, "outstanding_addresses", out)
				return refuse(invoicemsg.Unavailable, "the seller cannot hand out more bitcoin addresses right now; try Lightning or again later")
			}
		}
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
	fresh := wantChain && reuse == nil
	if fresh {
		s.pendingChain++
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
		if fresh {
			s.pendingChain--
		}
	}
	defer func() {
		s.mu.Lock()
		release()
		s.mu.Unlock()
	}()
	s.mu.Unlock()

	idb := make([]byte, 16)
	rand.Read(idb)
	inv := &Invoice{ID: hex.EncodeToString(idb), Stream: req.Stream, Viewer: viewer, Method: req.Method, Sats: sats,
		Price: p, Created: now, Expires: now.Add(s.cfg.Expiry)}
	if wantLN {
		hash, bolt11, err := s.cfg.Lightning.AddInvoice(ctx, sats*1000, Memo(req.Stream, viewer), s.cfg.Expiry)
		if err != nil {
			s.log.Error("invoice: Lightning node refused an invoice", "err", err)
			return refuse(invoicemsg.Unavailable, "the seller's Lightning node is not answering; try again later or pay on-chain")
		}
		inv.Hash, inv.Bolt11 = hash, bolt11
		if k := payee(bolt11); k != "" {
			s.mu.Lock()
			old := s.lnNode
			s.lnNode = k
			s.mu.Unlock()
			if old != "" && old != k {
				s.log.Warn("invoice: the Lightning node is not the one that signed earlier invoices", "was", old, "now", k)
				select {
				case s.lnRestart <- struct{}{}:
				default:
				}
			}
		}
	}
	var addr btcutil.Address
	if wantChain {
		inv.Key = s.keyID
		if reuse != nil {
			inv.Index = reuse.Index
		} else {
			// Reserve the address index durably before anyone sees it (and only once the
			// Lightning half, if any, exists: a failure there costs no address).
			s.mu.Lock()
			next := s.next[s.keyID] + 1
			if err := s.st.put(storeRecord{NextIndex: &next, Key: s.keyID}); err != nil {
				s.mu.Unlock()
				s.log.Error("invoice: saving invoice failed", "err", err)
				return refuse(invoicemsg.Unavailable, "the seller could not save the invoice")
			}
			inv.Index = next - 1
			s.next[s.keyID] = next
			s.mu.Unlock()
		}
		a, err := s.cfg.OnChain.Key.Address(inv.Index)
		if err != nil {
			return refuse(invoicemsg.Unavailable, "the seller could not derive an address: %v", err)
		}
		addr, inv.Address = a, a.EncodeAddress()
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

// outstanding counts the current key's addresses that await a payment and may still get one
// credited (unexpired, or within the monitoring window). An address with a payment seen in the
// mempool is used, not outstanding: a wallet that watches the account key sees the payment and
// moves its gap window past it, so it holds no place among the GapLimit. Locked.
func (s *Seller) outstanding(now time.Time) int {
	n := 0
	for _, inv := range s.byAddress {
		if inv.Key == s.keyID && !inv.Used && !inv.Paid && !now.After(inv.Expires.Add(s.cfg.Monitoring)) {
			n++
		}
	}
	return n
}

// markPaid records that a payment was seen for inv; used also that one settled, which moves
// the wallet's gap window. Locked.
func (s *Seller) markPaid(inv *Invoice, used bool) error {
	used = used && inv.Address != ""
	if inv.Paid && (inv.Used || !used) {
		return nil
	}
	c := *inv
	c.Paid, c.Used = true, c.Used || used
	if err := s.st.put(storeRecord{Invoice: &c}); err != nil {
		return err
	}
	inv.Paid, inv.Used = c.Paid, c.Used
	if inv.Used && inv.Key == s.keyID {
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
		delete(s.provisional, id)
		old, ok := s.cfg.Ledger.Credit(key, id)
		if !ok {
			return nil
		}
		c.Msat, c.Millis, c.State = old.Msat, old.Millis, ledger.Revoked
		c.Note = "revoked: " + e.Reason
	case e.Kind == onchain.Confirmed && e.Confirmations >= s.cfg.OnChain.MinConf:
		delete(s.provisional, id)
		c.Msat = paid * 1000
		c.Millis = inv.Price.MillisFor(c.Msat)
		c.State = ledger.Settled
		c.Height = e.Height
		c.Note = describe(inv, paid, late)
	default: // in the mempool, or confirmed fewer times than MinConf
		s.provisional[id] = provPayment{sats: paid, address: e.Address}
		c = s.provisionalCredit(inv, key, id, paid, late, e.Reason)
	}
	if old, ok := s.cfg.Ledger.Credit(key, id); ok && old.State == c.State && old.Msat == c.Msat && old.Millis == c.Millis && old.Height == c.Height {
		return nil
	}
	// The credit first: should marking the invoice fail, the credit is still there and the
	// invoice is resumed from the ledger after a restart.
	if _, err := s.cfg.Ledger.SetCredit(key, c); err != nil {
		return err
	}
	s.log.Info("invoice: on-chain payment", "invoice", inv.ID, "viewer", inv.Viewer, "state", c.State.String(),
		"sats", paid, "access", time.Duration(c.Millis)*time.Millisecond, "note", c.Note)
	if c.State != ledger.Revoked {
		if err := s.markPaid(inv, c.State == ledger.Settled); err != nil {
			return err
		}
	}
	if c.State != ledger.Provisional {
		// The cap this payment held is free again: other unconfirmed payments of the same
		// viewer (a fee bump replacing this one, say) may now count in full.
		s.refillProvisional(key, id)
	}
	return nil
}

// provisionalCredit is the credit an unconfirmed payment of paid sats earns: what the viewer's
// cap leaves after their other unconfirmed payments. Locked.
func (s *Seller) provisionalCredit(inv *Invoice, key ledger.Key, id string, paid uint64, late bool, reason string) ledger.Credit {
	capMsat := s.cfg.OnChain.ProvisionalCapSats * 1000
	for _, o := range s.cfg.Ledger.Credits(key) {
		if o.State == ledger.Provisional && o.ID != id {
			capMsat -= min(capMsat, o.Msat)
		}
	}
	if total := s.cfg.OnChain.ProvisionalTotalCapSats * 1000; total > 0 {
		seen := map[ledger.Key]bool{}
		for _, i := range s.byAddress {
			k := ledger.Key{Stream: i.Stream, Viewer: i.Viewer}
			if !i.Paid || seen[k] {
				continue
			}
			seen[k] = true
			for _, o := range s.cfg.Ledger.Credits(k) {
				if o.State == ledger.Provisional && o.ID != id {
					total -= min(total, o.Msat)
				}
			}
		}
		capMsat = min(capMsat, total)
	}
	c := ledger.Credit{ID: id, State: ledger.Provisional, Msat: min(paid*1000, capMsat)}
	c.Millis = inv.Price.MillisFor(c.Msat)
	c.Note = "unconfirmed; provisional until confirmed: " + describe(inv, paid, late)
	if reason != "" {
		c.Note = "unconfirmed again (" + reason + "): " + describe(inv, paid, late)
	}
	return c
}

// refillProvisional raises key's other unconfirmed credits that the cap had cut, now that the
// credit done no longer counts against it. Locked.
func (s *Seller) refillProvisional(key ledger.Key, done string) {
	for _, o := range s.cfg.Ledger.Credits(key) {
		p, ok := s.provisional[o.ID]
		if o.State != ledger.Provisional || o.ID == done || !ok || o.Msat >= p.sats*1000 {
			continue
		}
		inv := s.byAddress[p.address]
		if inv == nil {
			continue
		}
		c := s.provisionalCredit(inv, key, o.ID, p.sats, strings.Contains(o.Note, "after the invoice expired"), "")
		if c.Msat <= o.Msat {
			continue
		}
		c.Note = o.Note
		if _, err := s.cfg.Ledger.SetCredit(key, c); err != nil {
			s.log.Error("invoice: raising an unconfirmed payment's credit failed", "err", err, "credit", o.ID)
			return
		}
	}
}

type provPayment struct {
	sats    uint64
	address string
}

// reconcileLightning looks up every Lightning invoice still within its monitoring window that
// the ledger has no credit for, and credits those LND reports settled; it reports whether it
// asked about them all.
func (s *Seller) reconcileLightning(ctx context.Context) bool {
	s.mu.Lock()
	now := s.cfg.Now()
	var hashes []string
	for _, inv := range s.invoices {
		if inv.Hash == "" || now.After(inv.Expires.Add(s.cfg.Monitoring)) {
			continue
		}
		if inv.Paid { // credited, unless the ledger write failed after all
			if _, ok := s.cfg.Ledger.Credit(ledger.Key{Stream: inv.Stream, Viewer: inv.Viewer}, "ln:"+inv.Hash); ok {
				continue
			}
		}
		hashes = append(hashes, inv.Hash)
	}
	s.mu.Unlock()
	all := true
	for _, h := range hashes {
		st, settled, err := s.cfg.Lightning.LookupInvoice(ctx, h)
		if err != nil {
			s.log.Warn("invoice: could not ask LND about an invoice; the subscription will report it if paid", "err", err)
			return false
		}
		if settled {
			if err := s.credit(st); err != nil {
				s.log.Error("invoice: crediting a Lightning payment failed", "err", err)
				all = false
			}
		}
	}
	return all
}

// LightningSettled credits a settled Lightning invoice and then records the settle index of the
// node, so a restart resumes after it; a repeat is credited once.
func (s *Seller) LightningSettled(st Settled) error {
	s.mu.Lock()
	node := s.lnNode
	s.mu.Unlock()
	return s.lightningSettled(node, st)
}

func (s *Seller) lightningSettled(node string, st Settled) error {
	if err := s.credit(st); err != nil {
		return err
	}
	if node == "" { // not known yet: no index is stored, open invoices are looked up instead
		return nil
	}
	// The index only moves forward (a lookup may credit an older settle).
	key := s.settleKey(node)
	if v, ok := s.cfg.Ledger.Meta(key); ok {
		if cur, _ := strconv.ParseUint(v, 10, 64); cur >= st.SettleIndex {
			return nil
		}
	}
	return s.cfg.Ledger.SetMeta(key, strconv.FormatUint(st.SettleIndex, 10))
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
	s.mu.Unlock()
	// The credit first: an invoice marked paid is never looked up again, so marking it before
	// a ledger write that fails would lose the payment.
	changed, err := s.cfg.Ledger.SetCredit(key, c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	err = s.markPaid(inv, false)
	s.mu.Unlock()
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
	// UnusedAddresses is the run of addresses handed out after the last one with a settled
	// payment (expired ones included: they stay unused for good).
	UnusedAddresses int64
	// OutstandingAddresses await payment (unexpired, or expired but still monitored); the
	// desk hands out a fresh address only while they are fewer than GapLimit.
	OutstandingAddresses int
	GapLimit             uint32 // 0 without on-chain invoices
	UnpaidLN             int    // unexpired, unpaid Lightning invoices
	// GapAdvice is set when the unused run reaches three quarters of the gap limit: it tells
	// the seller how to let their wallet see payments beyond it.
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
	st.UnusedAddresses = int64(s.next[s.keyID]) - (s.usedUpTo + 1)
	st.OutstandingAddresses = s.outstanding(now)
	if 4*st.OutstandingAddresses >= 3*int(st.GapLimit) {
		st.GapAdvice = fmt.Sprintf("%d of the %d bitcoin addresses that may wait for payment at once are handed out "+
			"to viewers who have not paid yet; at %d, further viewers cannot pay on-chain until some pay or their "+
			"invoices expire. To allow more, raise the gap limit in your wallet and here together. %s",
			st.OutstandingAddresses, st.GapLimit, st.GapLimit, GapLimitHelp)
	} else if 4*st.UnusedAddresses >= 3*int64(st.GapLimit) {
		st.GapAdvice = fmt.Sprintf("%d addresses in a row after your last confirmed payment were handed out to "+
			"viewers who have not paid (yet). A wallet restored from its seed stops looking after %d unused addresses "+
			"in a row, so a payment beyond them would not show up in it: raise the gap limit in your wallet "+
			"(Sparrow: Settings → Gap limit; Electrum: `wallet.change_gap_limit(N)` in the console; BlueWallet "+
			"and others: see their settings) to at least %d, and the gap limit here to the same number.",
			st.UnusedAddresses, st.GapLimit, st.UnusedAddresses+int64(st.GapLimit))
	}
	return st
}
