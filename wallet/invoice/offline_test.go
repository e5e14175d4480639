//go:build linux

package invoice

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// hbWatcher is a Watcher that records the addresses it is told to watch and reports a scanned
// height, as a watcher that reached its node does (0: it has not scanned yet).
type hbWatcher struct {
	mu     sync.Mutex
	addrs  map[string]bool
	height atomic.Int32
}

func newHBWatcher(height int32) *hbWatcher {
	w := &hbWatcher{addrs: map[string]bool{}}
	w.height.Store(height)
	return w
}

func (w *hbWatcher) Watch(a ...btcutil.Address) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range a {
		w.addrs[x.EncodeAddress()] = true
	}
	return nil
}

func (w *hbWatcher) watched(a string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addrs[a]
}

func (*hbWatcher) Run(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (w *hbWatcher) Height() int32               { return w.height.Load() }
func (*hbWatcher) Resume(...onchain.Event)       {}
func (*hbWatcher) FollowDepth(int32)             {}

// runUntil runs s until ready reports true, then stops it as the app does when it quits, and
// waits for Run to return.
func runUntil(t *testing.T, s *Seller, ready func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitUntil(t, "the seller to be running", ready)
	cancel()
	if err := <-done; err != nil && err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
}

// An invoice paid in time while the seller was off, confirmed while it stayed off for longer than
// the monitoring window, is credited after the restart: the window is judged against the time up
// to which the last run watched, not against the restart (also when the invoice file is
// compacted at that restart). Without a saved time (a first run, data from an older version) the
// window is judged against the restart, as before.
func TestPaidWhileOfflineLongerThanMonitoring(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fillers int  // invoices issued a day earlier, out of every window at the restart: forces a compaction
		run     bool // the first session ran, so it saved how long it watched
		want    bool // the address is watched and its payment credited after the restart
	}{
		{name: "watched until stop", run: true, want: true},
		{name: "watched until stop, compacted at restart", fillers: 300, run: true, want: true},
		{name: "no saved time", fillers: 300, run: false, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, clk := t.TempDir(), mockClock()
			open := func(w *hbWatcher) (*Seller, *ledger.Ledger) {
				l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
				if err != nil {
					t.Fatal(err)
				}
				s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true },
					Ledger: l, StorePath: filepath.Join(dir, "invoices"),
					OnChain: &OnChain{Key: accountKey(t), Watcher: w, GapLimit: 1000},
					Clock:   clk, RatePerSec: 1e6, Burst: 1e6, Log: quiet})
				if err != nil {
					t.Fatal(err)
				}
				return s, l
			}
			s, l := open(newHBWatcher(100))
			for i := 0; i < tc.fillers; i++ {
				req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Sats: 1000}
				if a := s.Handle(context.Background(), fmt.Sprint("filler", i), req); a.Code != invoicemsg.OK {
					t.Fatal(a.Error)
				}
			}
			if tc.fillers > 0 {
				clk.Add(25 * time.Hour) // the fillers leave their monitoring window
			}
			a := s.Handle(context.Background(), "viewer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10})
			if a.Code != invoicemsg.OK {
				t.Fatal(a.Error)
			}
			if tc.run {
				runUntil(t, s, func() bool { return true })
			}
			s.Close()
			l.Close()

			// The viewer pays within the 15 minutes; the payment confirms while the app is off.
			clk.Add(48 * time.Hour)
			w := newHBWatcher(0)
			s, l = open(w)
			defer func() { s.Close(); l.Close() }()
			if got := w.watched(a.Address); got != tc.want {
				t.Fatalf("address of an invoice paid in time watched after a restart 2 days later: %v, want %v", got, tc.want)
			}
			if tc.fillers > 0 {
				s.mu.Lock()
				n := len(s.invoices)
				s.mu.Unlock()
				if want := map[bool]int{true: 1, false: 0}[tc.want]; n != want {
					t.Fatalf("%d invoices after the restart's compaction, want %d", n, want)
				}
			}
			s.OnChainEvent(onchain.Event{Kind: onchain.Confirmed, Confirmations: 1, Height: 150, Address: a.Address,
				Sats: int64(a.Sats), OutPoint: wire.OutPoint{Hash: chainhash.Hash{9}, Index: 0}})
			want := time.Duration(0)
			if tc.want {
				want = 10 * time.Minute
			}
			if r := l.Remaining(ledger.Key{Stream: streamID, Viewer: "viewer"}); r != want {
				t.Fatalf("viewer has %v of access after the confirmed payment, want %v", r, want)
			}
			// Desk bounds still count on the present: the invoice no longer waits for payment.
			if st := s.Status(); st.OutstandingAddresses != 0 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// startedLN is the fake LND, reporting when the seller subscribes to it: the seller has made its
// start-up lookups by then.
type startedLN struct {
	*fakeLN
	once    sync.Once
	started chan struct{}
}

func (f *startedLN) Run(ctx context.Context, idx uint64, on func(Settled) error) error {
	f.once.Do(func() { close(f.started) })
	return f.fakeLN.Run(ctx, idx, on)
}

// A Lightning invoice settled while the seller was off for longer than the monitoring window is
// found by the start-up lookups and credited.
func TestLightningSettledWhileOfflineLongerThanMonitoring(t *testing.T) {
	dir, clk := t.TempDir(), mockClock()
	ln := &fakeLN{settled: map[string]Settled{}}
	open := func(lnd Lightning) (*Seller, *ledger.Ledger) {
		l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true },
			Ledger: l, StorePath: filepath.Join(dir, "invoices"), Lightning: lnd, Clock: clk, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s, l
	}
	first := &startedLN{fakeLN: ln, started: make(chan struct{})}
	s, l := open(first)
	a := s.Handle(context.Background(), "viewer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.Lightning, Minutes: 10})
	if a.Code != invoicemsg.OK {
		t.Fatal(a.Error)
	}
	inv, _ := s.Invoice(a.ID)
	runUntil(t, s, func() bool {
		select {
		case <-first.started:
			return true
		default:
			return false
		}
	})
	s.Close()
	l.Close()

	// Paid in time; the app stays off for two days.
	ln.mu.Lock()
	ln.settled[inv.Hash] = Settled{Hash: inv.Hash, AmtPaidMsat: a.Sats * 1000, SettleIndex: 1}
	ln.mu.Unlock()
	clk.Add(48 * time.Hour)
	s, l = open(ln)
	defer func() { s.Close(); l.Close() }()
	if !s.reconcileLightning(context.Background()) {
		t.Fatal("the start-up lookups did not complete")
	}
	if r := l.Remaining(ledger.Key{Stream: streamID, Viewer: "viewer"}); r != 10*time.Minute {
		t.Fatalf("a Lightning payment settled while the seller was off 2 days gave %v of access, want 10m", r)
	}
}

// While it runs the seller saves, about once a minute and when it stops, the time up to which
// it watched for payments; not before its watcher has scanned the chain.
func TestWatchedUntilIsSaved(t *testing.T) {
	const key = "invoice.watched_until.chain.simnet" // the on-chain time of the watcher's network
	dir, clk := t.TempDir(), mockClock()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := newHBWatcher(0)
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true },
		Ledger: l, StorePath: filepath.Join(dir, "invoices"), OnChain: &OnChain{Key: accountKey(t), Watcher: w},
		Clock: clk, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	saved := func() time.Time {
		v, ok := l.Meta(key)
		if !ok {
			return time.Time{}
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("saved %q: %v", v, err)
		}
		return at
	}
	// The watcher never reached its node: nothing was watched, nothing is saved.
	runUntil(t, s, func() bool { clk.Add(time.Minute); return true })
	if v, ok := l.Meta(key); ok {
		t.Fatalf("saved %q before the watcher scanned anything", v)
	}
	w.height.Store(100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	start := clk.Now()
	waitUntil(t, "the minute's save", func() bool {
		clk.Add(time.Minute)
		return !saved().IsZero()
	})
	if at := saved(); at.Before(start) || at.After(clk.Now()) {
		t.Fatalf("saved %v, want between %v and %v", at, start, clk.Now())
	}
	clk.Add(10 * time.Second)
	cancel()
	<-done
	if at := saved(); !at.Equal(clk.Now()) {
		t.Fatalf("saved %v when Run ended, want %v", at, clk.Now())
	}
}
