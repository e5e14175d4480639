//go:build linux

package invoice

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
	"github.com/filecoin-project/go-clock"
)

// methodRuns opens sellers on one data directory, each run with the back-ends it is given, as
// the app does when a stream is started with on-chain or Lightning ticked (or another paid stream
// of the same data directory is started).
type methodRuns struct {
	t   *testing.T
	dir string
	clk *clock.Mock
}

func (r methodRuns) open(w *hbWatcher, ln Lightning) (*Seller, *ledger.Ledger) {
	r.t.Helper()
	l, err := ledger.Open(filepath.Join(r.dir, "ledger"), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true },
		Ledger: l, StorePath: filepath.Join(r.dir, "invoices"), Lightning: ln,
		Clock: r.clk, RatePerSec: 1e6, Burst: 1e6, MaxOutstandingLN: 1e6, Log: quiet}
	if w != nil {
		cfg.OnChain = &OnChain{Key: accountKey(r.t), Watcher: w, GapLimit: 1000}
	}
	s, err := New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return s, l
}

// issue hands out n invoices of method to n viewers named prefix0, prefix1, ….
func issue(t *testing.T, s *Seller, method invoicemsg.Method, prefix string, n int) []invoicemsg.Answer {
	t.Helper()
	var out []invoicemsg.Answer
	for i := 0; i < n; i++ {
		a := s.Handle(context.Background(), fmt.Sprint(prefix, i), invoicemsg.Request{Stream: streamID, Method: method, Minutes: 10})
		if a.Code != invoicemsg.OK {
			t.Fatal(a.Error)
		}
		out = append(out, a)
	}
	return out
}

// runFor runs s (its start-up Lightning lookups done, its watcher scanned) for d of the mock
// clock, then stops it as the app does when it quits.
func runFor(t *testing.T, s *Seller, clk *clock.Mock, d time.Duration) {
	t.Helper()
	runUntil(t, s, func() bool {
		if !s.lnDone() {
			return false
		}
		clk.Add(d)
		return true
	})
}

// lnDone reports whether the start-up Lightning lookups are done (true without Lightning).
func (s *Seller) lnDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Lightning == nil || s.lnChecked
}

// An address handed out by an on-chain run and paid in time while the seller then ran for more
// than the monitoring window with Lightning only is watched again, and its payment credited, by
// the next on-chain run: a run that watched Lightning only says nothing about the chain. Also
// when the invoice file is compacted at that restart.
func TestAddressPaidDuringLightningOnlyRunIsCredited(t *testing.T) {
	r := methodRuns{t: t, dir: t.TempDir(), clk: mockClock()}
	ln := &fakeLN{settled: map[string]Settled{}}

	// The on-chain run hands out the viewer's address.
	s, l := r.open(newHBWatcher(100), nil)
	a := issue(t, s, invoicemsg.OnChain, "viewer", 1)[0]
	runFor(t, s, r.clk, time.Minute)
	s.Close()
	l.Close()

	// Lightning only, for 25 h; the viewer pays the address within its 15 minutes meanwhile.
	// Lightning invoices nobody pays (out of their window, watched to its end, at the restart)
	// make the next run compact the invoice file.
	s, l = r.open(nil, ln)
	issue(t, s, invoicemsg.Lightning, "filler", 300)
	runFor(t, s, r.clk, 25*time.Hour)
	s.Close()
	l.Close()

	// On-chain again (Lightning too, as a combined set-up would).
	w := newHBWatcher(0)
	s, l = r.open(w, ln)
	defer func() { s.Close(); l.Close() }()
	if !w.watched(a.Address) {
		t.Fatal("the address paid during a Lightning-only run is not watched by the next on-chain run")
	}
	s.mu.Lock()
	n := len(s.invoices)
	s.mu.Unlock()
	if n != 1 { // the viewer's: the fillers' window was watched to its end
		t.Fatalf("%d invoices after the restart's compaction, want 1", n)
	}
	s.OnChainEvent(onchain.Event{Kind: onchain.Confirmed, Confirmations: 1, Height: 150, Address: a.Address,
		Sats: int64(a.Sats), OutPoint: wire.OutPoint{Hash: chainhash.Hash{7}, Index: 0}})
	if got := l.Remaining(ledger.Key{Stream: streamID, Viewer: "viewer0"}); got != 10*time.Minute {
		t.Fatalf("viewer has %v of access after paying the address in time, want 10m", got)
	}
}

// The reverse: a Lightning invoice settled while the seller ran on-chain only for more than the
// monitoring window is found by the next Lightning run's start-up lookups, and a replay of its
// settle finds the invoice (it was not compacted away as "not ours").
func TestLightningSettledDuringOnChainOnlyRunIsCredited(t *testing.T) {
	r := methodRuns{t: t, dir: t.TempDir(), clk: mockClock()}
	ln := &fakeLN{settled: map[string]Settled{}}

	s, l := r.open(nil, ln)
	a := issue(t, s, invoicemsg.Lightning, "viewer", 1)[0]
	inv, _ := s.Invoice(a.ID)
	runFor(t, s, r.clk, time.Minute)
	s.Close()
	l.Close()

	// On-chain only, for 25 h; the viewer pays the Lightning invoice in time meanwhile.
	// Addresses nobody pays make the next run compact the invoice file.
	s, l = r.open(newHBWatcher(100), nil)
	issue(t, s, invoicemsg.OnChain, "filler", 300)
	settle := Settled{Hash: inv.Hash, AmtPaidMsat: a.Sats * 1000, SettleIndex: 1}
	ln.mu.Lock()
	ln.settled[inv.Hash] = settle
	ln.mu.Unlock()
	runFor(t, s, r.clk, 25*time.Hour)
	s.Close()
	l.Close()

	s, l = r.open(nil, ln)
	defer func() { s.Close(); l.Close() }()
	if _, ok := s.Invoice(a.ID); !ok {
		t.Fatal("the Lightning invoice settled during an on-chain-only run was compacted away")
	}
	if !s.reconcileLightning(context.Background()) {
		t.Fatal("the start-up lookups did not complete")
	}
	if err := s.LightningSettled(settle); err != nil { // the subscription's replay: credited once
		t.Fatal(err)
	}
	if got := l.Remaining(ledger.Key{Stream: streamID, Viewer: "viewer0"}); got != 10*time.Minute {
		t.Fatalf("viewer has %v of access after paying by Lightning in time, want 10m", got)
	}
}

// A combined invoice (an address and a Lightning invoice) is kept while either method's window
// is open: here Lightning was last watched while it was open, the chain long after.
func TestCombinedInvoiceKeptWhileEitherWindowIsOpen(t *testing.T) {
	r := methodRuns{t: t, dir: t.TempDir(), clk: mockClock()}
	ln := &fakeLN{settled: map[string]Settled{}}

	s, l := r.open(newHBWatcher(100), ln)
	a := issue(t, s, invoicemsg.Any, "viewer", 1)[0]
	inv, _ := s.Invoice(a.ID)
	runFor(t, s, r.clk, time.Minute)
	s.Close()
	l.Close()

	s, l = r.open(newHBWatcher(100), nil) // on-chain only, 25 h; unpaid addresses force a compaction
	issue(t, s, invoicemsg.OnChain, "filler", 300)
	runFor(t, s, r.clk, 25*time.Hour)
	s.Close()
	l.Close()

	ln.mu.Lock()
	ln.settled[inv.Hash] = Settled{Hash: inv.Hash, AmtPaidMsat: a.Sats * 1000, SettleIndex: 1}
	ln.mu.Unlock()
	w := newHBWatcher(0)
	s, l = r.open(w, ln)
	defer func() { s.Close(); l.Close() }()
	if _, ok := s.Invoice(a.ID); !ok {
		t.Fatal("a combined invoice whose Lightning window is open was compacted away")
	}
	if w.watched(a.Address) {
		t.Fatal("the address of a combined invoice is watched although the chain was watched past its window")
	}
	if !s.reconcileLightning(context.Background()) {
		t.Fatal("the start-up lookups did not complete")
	}
	if got := l.Remaining(ledger.Key{Stream: streamID, Viewer: "viewer0"}); got != 10*time.Minute {
		t.Fatalf("viewer has %v of access after paying a combined invoice by Lightning, want 10m", got)
	}
}

// Data saved before the times were kept per back-end holds one time for all of them, which may
// have been advanced by a run that did not watch an invoice's method: it alone compacts nothing
// away and leaves no address unwatched.
func TestOldSingleWatchedTimeCompactsNothing(t *testing.T) {
	r := methodRuns{t: t, dir: t.TempDir(), clk: mockClock()}
	s, l := r.open(newHBWatcher(100), nil)
	fillers := issue(t, s, invoicemsg.OnChain, "filler", 300)
	s.Close()
	r.clk.Add(50 * time.Hour)
	if err := l.SetMeta("invoice.watched_until", r.clk.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	l.Close()

	w := newHBWatcher(0)
	s, l = r.open(w, nil)
	defer func() { s.Close(); l.Close() }()
	s.mu.Lock()
	n := len(s.invoices)
	s.mu.Unlock()
	if n != len(fillers) {
		t.Fatalf("%d invoices kept on the old single time alone, want %d", n, len(fillers))
	}
	if !w.watched(fillers[0].Address) {
		t.Fatal("an address is left unwatched on the old single time alone")
	}
}
