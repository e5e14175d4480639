// Package invoice is the seller's invoice desk and the viewer's invoice check. The seller answers
// each viewer's invoice request with an invoice for that viewer alone (a fresh on-chain address
// from the watch-only account key, a Lightning invoice, or both in one BIP21/BIP321 URI), bounds
// how many it hands out, and turns payments it sees into access in the ledger.
package invoice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
	"github.com/filecoin-project/go-clock"
	"golang.org/x/time/rate"
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
	// asked and have not paid on-chain yet, not payers per block. A combined (Any) invoice paid by
	// Lightning leaves its address unused, so it waits (the wallet's gap window does not move)
	// until its monitoring window ends. Show GapLimitHelp where it is set.
	GapLimit uint32
	// MinSats is the smallest on-chain invoice (default DefaultOnChainMinSats; dust is 294).
	MinSats uint64
}

// DefaultOnChainMinSats is the smallest on-chain invoice a seller makes unless told otherwise:
// fees make smaller payments impractical. A viewer's window offers no smaller on-chain buy.
const DefaultOnChainMinSats = 1000

// DefaultGapLimit is the gap limit most wallets use (BIP44): the default OnChain.GapLimit.
const DefaultGapLimit = 20

// GapLimitHelp is the advice to show beside the gap-limit setting.
const GapLimitHelp = "How many bitcoin addresses handed out to viewers may wait for a payment at once. Your wallet " +
	"only looks this many addresses past the last one that received money, so set the same gap limit in your wallet " +
	"(Sparrow: Settings → Gap limit; Electrum: wallet.change_gap_limit(N) in the console) or payments " +
	"beyond it will not show up there. The default, 20, is what most wallets use; raise both together if " +
	"viewers are told that no more bitcoin addresses can be handed out right now. An address stops counting " +
	"once it is paid on-chain (even before the first confirmation), or a day after its invoice expired. " +
	"An invoice offering both bitcoin and Lightning that is paid by Lightning leaves its address unused, " +
	"so that address counts until then too."

// Config configures a Seller.
type Config struct {
	// PriceOf returns a stream's price; ok is false for a stream the seller does not sell.
	PriceOf   func(stream string) (p price.Price, ok bool)
	Ledger    *ledger.Ledger
	StorePath string // the invoice file
	OnChain   *OnChain
	Lightning Lightning

	Expiry time.Duration // default 15 min
	// Monitoring is how long after expiry a late payment is still credited (default 24 h). Time
	// the seller was not watching an invoice's method does not count (switched off, or running
	// without that method): after a restart it is judged against the time up to which the last
	// runs watched that method's back-end for payments (see Run).
	Monitoring time.Duration

	// PerViewer is how many unpaid, unexpired invoices per viewer and stream count as theirs
	// (default 3). It refuses nothing: a request beyond it supersedes the viewer's oldest such
	// invoice, which stays payable (and is credited if paid) but no longer counts, and an on-chain
	// request takes over its address, so one viewer holds at most PerViewer addresses. What
	// the seller can be made to create is bounded by the global caps (RatePerSec and Burst,
	// MaxOutstandingLN, OnChain.GapLimit), which a client making new peer IDs meets too.
	PerViewer        int
	RatePerSec       float64 // global invoice creation rate (default 2/s)
	Burst            int     // default 20
	MaxOutstandingLN int     // unpaid, unexpired Lightning invoices (default 1 000)

	Label string // BIP21 label, default "Dazaar Vision"
	// Clock is the desk's time (expiry, the monitoring window, the rate limit, the height
	// saver's ticker, the time watched up to); nil means the real one. Tests pass clock.NewMock().
	Clock clock.Clock
	Log   *slog.Logger
}

// Seller is the invoice desk. Create with New, then Run.
type Seller struct {
	cfg Config
	log *slog.Logger

	keyID string // the account key's ID ("" without on-chain invoices)

	clock   clock.Clock
	limiter *rate.Limiter // invoice creation, all viewers together

	mu        sync.Mutex
	st        *store
	invoices  map[string]*Invoice // by ID
	byAddress map[string]*Invoice // the newest invoice for each address
	byHash    map[string]*Invoice
	next      map[string]uint32 // next derivation index, per account key ID
	usedUpTo  int64             // highest index of the current key with a settled payment, -1 for none

	// The admission step's indexes, so that a request looks at its own viewer's invoices and
	// at the live ones, never at every invoice issued. Entries out of their window are dropped
	// when met.
	unpaid   map[viewerStream]map[*Invoice]struct{} // unpaid invoices, per viewer and stream
	unpaidLN map[*Invoice]struct{}                  // unpaid Lightning invoices
	waiting  map[string]*Invoice                    // current key's addresses without a settled payment
	// live holds, per address, the payments seen and not revoked (in the mempool or confirmed):
	// an address with one is used in the wallet's eyes and does not wait for payment.
	live map[string]map[string]struct{}

	pendingViewer map[viewerStream]int // invoices being made, per viewer and stream
	pendingLN     int
	pendingChain  int // fresh addresses being made

	// provisional remembers the full amount of each unconfirmed payment seen in this run, so
	// that a revoked one (e.g. replaced by a fee bump) lets the others fill the cap again.
	provisional map[string]provPayment // by credit ID

	// The Lightning node's key (hex), learned from the invoices it signs; the settle index is
	// stored per node. lnRestart asks the subscription to start over when the node changes.
	lnNode    string
	lnRestart chan struct{}

	// watched holds the times up to which the last runs watched each back-end for payments:
	// New and the start-up Lightning lookups judge each invoice's monitoring window against its
	// own method's time, so that time spent switched off (or running without that method) does
	// not use the window up. lnChecked is set once this run's start-up Lightning lookups asked
	// about every invoice; later lookups judge on now.
	watched   watchedTimes
	lnChecked bool
}

// The ledger's meta entries holding the time (RFC 3339, UTC) up to which the seller watched a
// back-end for payments, one per back-end: watchedChainKey per network for on-chain payments
// (the watcher watches every stored address of its network, whichever account key it derives
// from), watchedLNKey per Lightning node. Each is advanced only by runs in which that back-end
// was watched, every watchedEvery.
const (
	watchedPrefix = "invoice.watched_until"
	watchedEvery  = time.Minute
	// watchedUnknownNode stands for the node of Lightning invoices whose signer cannot be read.
	watchedUnknownNode = "unknown"
)

// watchedChainKey names the time up to which the chain of network was watched.
func watchedChainKey(network string) string { return watchedPrefix + ".chain." + network }

// watchedLNKey names the time up to which the Lightning node with key node (hex) was watched: a
// node is on one network, and invoices another node signed are not watched by this one.
func watchedLNKey(node string) string {
	if node == "" {
		node = watchedUnknownNode
	}
	return watchedPrefix + ".ln." + node
}

// chainNetworks are the networks whose addresses the seller may have handed out.
var chainNetworks = []string{"mainnet", "testnet", "signet", "regtest", "simnet"}

// watchedChainKeys names the times that may apply to an address: those of the networks it
// decodes for (testnet and signet share their addresses).
func watchedChainKeys(addr string) []string {
	var keys []string
	for _, n := range chainNetworks {
		net, err := onchain.Network(n)
		if err != nil {
			continue
		}
		if _, err := onchain.ParseAddress(addr, net); err == nil {
			keys = append(keys, watchedChainKey(n))
		}
	}
	return keys
}

// watchedTimes are the times up to which the last runs watched each back-end, as New found them.
type watchedTimes struct {
	saved map[string]time.Time // by meta name; the zero time for one that cannot be read
	// any: some such time is saved, also the single one of older versions (legacyWatchedKey).
	any bool
	now time.Time // New's time: no saved time counts beyond it
}

// legacyWatchedKey is the single time the previous version saved for all back-ends together. A
// run that watched one method (on-chain only, or Lightning only) advanced it, so it does not say
// up to when any given method was watched: it judges no invoice. While it is the only time saved
// for a method, that method's invoices are kept and watched as if their windows were open: keeping
// an invoice costs a line in a file; forgetting one loses a payment made in time. The first run
// that watches the method saves the method's own time.
const legacyWatchedKey = watchedPrefix

// loadWatched reads the saved times. A time ahead of now counts as now.
func loadWatched(l *ledger.Ledger, now time.Time, log *slog.Logger) watchedTimes {
	w := watchedTimes{saved: map[string]time.Time{}, now: now}
	for name, v := range l.MetaPrefixed(watchedPrefix) {
		if name != legacyWatchedKey && !strings.HasPrefix(name, watchedPrefix+".") {
			continue
		}
		w.any = true
		if name == legacyWatchedKey {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			log.Warn("invoice: unreadable time up to which payments were watched; keeping the invoices it judges",
				"name", name, "value", v, "err", err)
			at = time.Time{}
		} else if at.After(now) {
			at = now
		}
		w.saved[name] = at
	}
	return w
}

// at is the time up to which a back-end named by one of keys was watched (the earliest of those
// saved). With none saved: now if no time is saved at all (a first run, or data from before the
// times were saved: judged on the present, as then), else the zero time, before every window's
// end (this method was never watched since the times were saved: its invoices are kept).
func (w watchedTimes) at(keys ...string) time.Time {
	var at time.Time
	found := false
	for _, k := range keys {
		if t, ok := w.saved[k]; ok && (!found || t.Before(at)) {
			at, found = t, true
		}
	}
	switch {
	case found:
		return at
	case w.any:
		return time.Time{}
	}
	return w.now
}

// chainOpen reports whether inv has an address whose monitoring window was open at the time up
// to which the chain was watched: New watches it and resumes its payments. Locked (or in New).
func (s *Seller) chainOpen(inv *Invoice) bool {
	if inv.Address == "" {
		return false
	}
	// No saved time lies beyond New's time: a window open then needs no look at them.
	return s.monitored(inv, s.watched.now) || s.monitored(inv, s.watched.at(watchedChainKeys(inv.Address)...))
}

// lnOpen reports whether inv has a Lightning invoice whose monitoring window was open at the time
// up to which its node was watched: the start-up lookups ask about it. Locked (or in New).
func (s *Seller) lnOpen(inv *Invoice) bool {
	if inv.Hash == "" {
		return false
	}
	return s.monitored(inv, s.watched.now) || s.monitored(inv, s.watched.at(watchedLNKey(s.nodeOf(inv))))
}

// nodeOf is the key (hex) of the Lightning node that signed inv's invoice, "" if it cannot be
// read; read from the BOLT11 string once for invoices stored before it was recorded. Locked (or
// in New).
func (s *Seller) nodeOf(inv *Invoice) string {
	if inv.Node == "" && inv.Bolt11 != "" {
		inv.Node = payee(inv.Bolt11)
	}
	return inv.Node
}

// monitored reports whether a payment to inv is still credited at the time at: before its
// expiry or within the monitoring window after it.
func (s *Seller) monitored(inv *Invoice, at time.Time) bool {
	return !at.After(inv.Expires.Add(s.cfg.Monitoring))
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
			cfg.OnChain.MinSats = DefaultOnChainMinSats
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
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Seller{cfg: cfg, log: cfg.Log, clock: cfg.Clock, limiter: rate.NewLimiter(rate.Limit(cfg.RatePerSec), cfg.Burst),
		pendingViewer: map[viewerStream]int{}, live: map[string]map[string]struct{}{},
		provisional: map[string]provPayment{}, lnRestart: make(chan struct{}, 1)}
	if cfg.OnChain != nil {
		if s.keyID = cfg.OnChain.Key.ID(); s.keyID == "" {
			return nil, errors.New("invoice: the account key has no usable public key")
		}
	}
	load := func() (*store, int, error) {
		s.invoices, s.byAddress, s.byHash, s.next, s.usedUpTo = map[string]*Invoice{}, map[string]*Invoice{}, map[string]*Invoice{}, map[string]uint32{}, -1
		s.unpaid, s.unpaidLN, s.waiting = map[viewerStream]map[*Invoice]struct{}{}, map[*Invoice]struct{}{}, map[string]*Invoice{}
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
		// Superseded invoices no longer count toward their viewer's cap (in whatever order the
		// records came: a compacted store is not in the order of issue).
		for _, inv := range s.invoices {
			if x := s.invoices[inv.Supersedes]; inv.Supersedes != "" && x != nil {
				x.superseded = true
			}
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
			s.lnNode = s.nodeOf(newest)
		}
		return st, n, nil
	}
	st, records, err := load()
	if err != nil {
		return nil, err
	}
	// Unpaid invoices whose monitoring window has ended are forgotten when the file is
	// rewritten; paid ones are kept (they say which viewer an address or hash belongs to). The
	// window is judged against the time up to which the invoice's own method was watched, not
	// the present: a payment made in time may have confirmed (or settled) while the seller was
	// off, or ran without that method, however long. A combined invoice is kept while either
	// method's window is open.
	s.watched = loadWatched(cfg.Ledger, s.clock.Now(), s.log)
	var keep []*Invoice
	for _, inv := range s.invoices {
		if inv.Paid || s.chainOpen(inv) || s.lnOpen(inv) {
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
		foreign := map[*Invoice]bool{} // addresses of another network: this node sees none of their payments
		for _, inv := range s.invoices {
			if inv.Address == "" || !inv.Paid && !s.chainOpen(inv) {
				continue
			}
			a, err := onchain.ParseAddress(inv.Address, cfg.OnChain.Key.Net())
			if err != nil {
				if len(watchedChainKeys(inv.Address)) > 0 {
					// Handed out when the wallet was on another network (the data directory is
					// shared by all of them): neither watched nor resumed here.
					foreign[inv] = true
					s.log.Warn("invoice: not watching an address of another network", "address", inv.Address, "invoice", inv.ID)
					continue
				}
				st.close()
				return nil, fmt.Errorf("invoice: stored address: %w: %w", ErrCorrupt, err)
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
			if inv.Address == "" || !inv.Paid && !s.chainOpen(inv) || foreign[inv] {
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
				s.setLive(inv.Address, c.ID, true) // until the watcher's first scan says otherwise
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
	if old := s.invoices[inv.ID]; old != nil { // a newer record of the same invoice
		s.dropUnpaid(old)
		if s.waiting[old.Address] == old {
			delete(s.waiting, old.Address)
		}
	}
	s.invoices[inv.ID] = inv
	if inv.Address != "" {
		if old := s.byAddress[inv.Address]; old == nil || !old.Created.After(inv.Created) {
			s.byAddress[inv.Address] = inv
			if inv.Key == s.keyID && !inv.Used {
				s.waiting[inv.Address] = inv
			} else {
				delete(s.waiting, inv.Address)
			}
		}
		if inv.Used && inv.Key == s.keyID {
			s.usedUpTo = max(s.usedUpTo, int64(inv.Index))
		}
	}
	if inv.Hash != "" {
		s.byHash[inv.Hash] = inv
	}
	if !inv.Paid {
		k := viewerStream{inv.Viewer, inv.Stream}
		if s.unpaid[k] == nil {
			s.unpaid[k] = map[*Invoice]struct{}{}
		}
		s.unpaid[k][inv] = struct{}{}
		if inv.Hash != "" {
			s.unpaidLN[inv] = struct{}{}
		}
	}
}

// dropUnpaid takes inv out of the indexes of unpaid invoices. Locked.
func (s *Seller) dropUnpaid(inv *Invoice) {
	k := viewerStream{inv.Viewer, inv.Stream}
	if m := s.unpaid[k]; m != nil {
		delete(m, inv)
		if len(m) == 0 {
			delete(s.unpaid, k)
		}
	}
	delete(s.unpaidLN, inv)
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

// Close closes the invoice store (Run must have returned).
func (s *Seller) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.close()
}

// Run follows Lightning payments and the chain until ctx ends. About once a minute, and when it
// ends, it saves in the ledger the time up to which it watched each of its back-ends for payments
// (the chain once its watcher has scanned, Lightning once its start-up lookups are done), so that
// the next New does not count the time the seller was off, or ran without a method, against that
// method's invoices' monitoring windows.
func (s *Seller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); s.saveWatched(ctx) }()
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

// saveWatched saves the time watched up to, for each back-end watched, every watchedEvery and
// when ctx ends.
func (s *Seller) saveWatched(ctx context.Context) {
	save := func() {
		now := s.clock.Now().UTC().Format(time.RFC3339Nano)
		for _, key := range s.watching() {
			err := s.cfg.Ledger.SetMeta(key, now)
			if err != nil && !errors.Is(err, ledger.ErrClosed) {
				s.log.Error("invoice: saving the time payments were watched up to failed", "name", key, "err", err)
			}
		}
	}
	t := s.clock.Ticker(watchedEvery)
	defer t.Stop()
	saveUntilDone(ctx, t.C, save)
}

// watching names the times of the back-ends this run watches for payments: the chain of its
// network once its watcher has reached its node and scanned, the Lightning node once the start-up
// lookups asked about every invoice (the node that signed the newest invoice: the invoice
// macaroon cannot ask LND who it is, so its identity is known from the invoices it signs; a run
// reaching another node while the old node's invoices are open fails to look them up, so it saves
// no Lightning time). Until then a back-end's time the last run saved stays, so
// invoices it kept in their window are kept again if the app stops now; a run without a back-end
// leaves that back-end's time alone.
func (s *Seller) watching() []string {
	var keys []string
	if s.cfg.OnChain != nil && s.cfg.OnChain.Watcher.Height() > 0 {
		keys = append(keys, watchedChainKey(onchain.NetworkName(s.cfg.OnChain.Key.Net())))
	}
	if s.cfg.Lightning != nil {
		s.mu.Lock()
		if s.lnChecked {
			keys = append(keys, watchedLNKey(s.lnNode))
		}
		s.mu.Unlock()
	}
	return keys
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

// Status is what the seller's UI shows about the invoice desk.
type Status struct {
	// UnusedAddresses is the run of addresses handed out after the last one with a settled
	// payment (expired ones included: they stay unused for good).
	UnusedAddresses int64
	// OutstandingAddresses await an on-chain payment (unexpired, or expired but still monitored;
	// combined invoices paid by Lightning included: their address is unused); the desk hands out
	// a fresh address only while they are fewer than GapLimit.
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
	now := s.clock.Now()
	st.UnpaidLN = s.unpaidLNLocked(now)
	if s.cfg.OnChain == nil {
		return st
	}
	st.GapLimit = s.cfg.OnChain.GapLimit
	st.UnusedAddresses = int64(s.next[s.keyID]) - (s.usedUpTo + 1)
	st.OutstandingAddresses = s.outstanding(now)
	if 4*st.OutstandingAddresses >= 3*int(st.GapLimit) {
		st.GapAdvice = fmt.Sprintf("%d of the %d bitcoin addresses that may wait for payment at once are handed "+
			"out and not paid on-chain (an invoice offering both bitcoin and Lightning that was paid by "+
			"Lightning leaves its address unused, so it counts too); at %d, further viewers cannot pay on-chain "+
			"until some addresses are paid or their invoices expired more than %s ago. To allow more, raise the "+
			"gap limit in your wallet and here together. %s",
			st.OutstandingAddresses, st.GapLimit, st.GapLimit, plainHours(s.cfg.Monitoring), GapLimitHelp)
	} else if 4*st.UnusedAddresses >= 3*int64(st.GapLimit) {
		st.GapAdvice = fmt.Sprintf("%d addresses in a row after your last confirmed payment were handed out and "+
			"have no confirmed payment (yet, or were paid by Lightning instead). A wallet restored from its "+
			"seed stops looking after %d unused addresses in a row, so a payment beyond them would not show up "+
			"in it: raise the gap limit in your wallet (Sparrow: Settings → Gap limit; Electrum: "+
			"`wallet.change_gap_limit(N)` in the console; BlueWallet and others: see their settings) to at "+
			"least %d, and the gap limit here to the same number.",
			st.UnusedAddresses, st.GapLimit, st.UnusedAddresses+int64(st.GapLimit))
	}
	return st
}

// plainHours says d in words for the seller: "a day", or a number of hours.
func plainHours(d time.Duration) string {
	if d == 24*time.Hour {
		return "a day"
	}
	return strconv.FormatFloat(d.Hours(), 'f', -1, 64) + " hours"
}
