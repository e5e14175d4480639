//go:build linux

package invoice

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
	"github.com/filecoin-project/go-clock"
)

// flakyLN is a fakeLN whose AddInvoice fails while fail is set.
type flakyLN struct {
	*fakeLN
	fail atomic.Bool
	hang atomic.Bool // answers nothing until the caller gives up
}

func (f *flakyLN) AddInvoice(ctx context.Context, msat uint64, memo string, expiry time.Duration) (string, string, error) {
	if f.fail.Load() {
		return "", "", errors.New("LND is down")
	}
	if f.hang.Load() {
		<-ctx.Done()
		return "", "", ctx.Err()
	}
	return f.fakeLN.AddInvoice(ctx, msat, memo, expiry)
}

// supersedeRig is a seller on one data directory that can be closed and opened again, with a
// fake Lightning node and, with node set, an on-chain watcher polling a fake bitcoin node.
type supersedeRig struct {
	t    *testing.T
	dir  string
	clk  *clock.Mock
	ln   *flakyLN
	node *fakeNode // nil: no on-chain invoices
	cfg  func(*Config)

	s    *Seller
	l    *ledger.Ledger
	stop func()
}

func newSupersedeRig(t *testing.T, node *fakeNode, cfg func(*Config)) *supersedeRig {
	r := &supersedeRig{t: t, dir: t.TempDir(), clk: mockClock(), ln: &flakyLN{fakeLN: &fakeLN{settled: map[string]Settled{}}},
		node: node, cfg: cfg}
	r.open()
	t.Cleanup(r.close)
	return r
}

func (r *supersedeRig) open() {
	t := r.t
	l, err := ledger.Open(filepath.Join(r.dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(r.dir, "invoices"), Lightning: r.ln, Clock: r.clk,
		RatePerSec: 1000, Burst: 1000, Log: quiet}
	var s *Seller
	var srv *httptest.Server
	if r.node != nil {
		srv = httptest.NewServer(r.node)
		p, err := onchain.NewPoller(onchain.WatchConfig{Node: onchain.NodeConfig{Host: strings.TrimPrefix(srv.URL, "http://")},
			Net: btcdtest.Net, OnEvent: func(e onchain.Event) { s.OnChainEvent(e) }, Interval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg.OnChain = &OnChain{Key: accountKey(t), Watcher: p, ProvisionalCapSats: 10_000}
	}
	if r.cfg != nil {
		r.cfg(&cfg)
	}
	if s, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	r.s, r.l = s, l
	r.stop = func() {
		cancel()
		<-done
		if srv != nil {
			srv.Close()
		}
		s.Close()
		l.Close()
	}
}

func (r *supersedeRig) close() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

func (r *supersedeRig) restart() { r.close(); r.open() }

func (r *supersedeRig) ask(viewer string, m invoicemsg.Method, minutes uint32) invoicemsg.Answer {
	r.t.Helper()
	return r.s.Handle(context.Background(), viewer, invoicemsg.Request{Stream: streamID, Method: m, Minutes: minutes})
}

func (r *supersedeRig) invoice(id string) Invoice {
	r.t.Helper()
	inv, ok := r.s.Invoice(id)
	if !ok {
		r.t.Fatalf("no invoice %s", id)
	}
	return inv
}

// supersedes is the ID of the invoice inv superseded, as its stored record says ("" for none).
func supersedes(inv Invoice) string {
	b, _ := json.Marshal(inv)
	var m map[string]any
	json.Unmarshal(b, &m)
	id, _ := m["supersedes"].(string)
	return id
}

// Regression test for a viewer's report; the defect was: a viewer who compares amounts (the
// window's "Another amount", the command line's "buy N") reaches the per-viewer cap of unpaid
// invoices and is then refused every invoice for the invoice expiry, even right after their paid
// time ran out, while the invoices that count against them are no longer shown anywhere.
func TestViewerComparingAmountsIsNeverLockedOut(t *testing.T) {
	for _, m := range []invoicemsg.Method{invoicemsg.OnChain, invoicemsg.Lightning, invoicemsg.Any} {
		t.Run(m.String(), func(t *testing.T) {
			r := newSupersedeRig(t, newFakeNode(10), nil)
			per := r.s.cfg.PerViewer
			addrs := map[string]bool{}
			for i, minutes := range []uint32{10, 50, 150, 10, 50} { // PerViewer+2 in a row
				a := r.ask("viewer", m, minutes)
				if a.Code != invoicemsg.OK {
					t.Fatalf("request %d of %d (PerViewer %d): %v %q", i+1, per+2, per, a.Code, a.Error)
				}
				if a.Address != "" {
					addrs[a.Address] = true
				}
				r.clk.Add(20 * time.Second)
			}
			st := r.s.Status()
			if m != invoicemsg.Lightning && (len(addrs) != per || st.OutstandingAddresses != per || st.UnusedAddresses != int64(per)) {
				t.Fatalf("%d addresses for one viewer, status %+v; want %d", len(addrs), st, per)
			}
			if m != invoicemsg.OnChain && st.UnpaidLN != per+2 {
				t.Fatalf("superseded Lightning invoices stay open and count: %d unpaid, want %d", st.UnpaidLN, per+2)
			}
		})
	}
}

// A superseded Lightning invoice stays payable: paying it is credited, at what was paid.
func TestSupersededLightningInvoiceIsCredited(t *testing.T) {
	r := newSupersedeRig(t, nil, nil)
	var ids []string
	for _, minutes := range []uint32{1, 5, 15, 2} {
		a := r.ask("viewer", invoicemsg.Lightning, minutes)
		if a.Code != invoicemsg.OK {
			t.Fatalf("%d minutes: %v %q", minutes, a.Code, a.Error)
		}
		ids = append(ids, a.ID)
		r.clk.Add(30 * time.Second)
	}
	first, newest := r.invoice(ids[0]), r.invoice(ids[3])
	if got := supersedes(newest); got != first.ID {
		t.Fatalf("the 4th invoice supersedes %q, want the oldest %q", got, first.ID)
	}
	st := Settled{Hash: first.Hash, AmtPaidMsat: first.Sats * 1000, SettleIndex: 1}
	if err := r.s.LightningSettled(st); err != nil {
		t.Fatal(err)
	}
	k := ledger.Key{Stream: streamID, Viewer: "viewer"}
	if got := r.l.Remaining(k); got != time.Minute {
		t.Fatalf("paid the superseded 1-minute invoice: %v of access", got)
	}
	if cs := r.l.Credits(k); len(cs) != 1 || !strings.Contains(cs[0].Note, "paid in full") {
		t.Fatalf("credits %+v", cs)
	}
	if inv := r.invoice(ids[0]); !inv.Paid {
		t.Fatal("the superseded invoice is not marked paid")
	}
	// Paid after the restart too (found by the start-up lookups).
	second := r.invoice(ids[1])
	r.ln.mu.Lock()
	r.ln.settled[second.Hash] = Settled{Hash: second.Hash, AmtPaidMsat: second.Sats * 1000, SettleIndex: 2}
	r.ln.mu.Unlock()
	r.restart()
	waitFor(t, "the second invoice credited", func() bool { return r.l.Remaining(k) == 6*time.Minute })
}

// On-chain, a request at the per-viewer cap takes over the superseded invoice's address: no
// address more counts toward the gap limit, a payment of the superseded invoice's amount to it is
// credited for that amount's time, and the store maps the address to the newest invoice after a
// restart, also when the clock has not moved between the requests and when a compacted store
// lists the invoices in another order.
func TestSupersededAddressIsReused(t *testing.T) {
	for _, step := range []time.Duration{30 * time.Second, 0} {
		t.Run(step.String(), func(t *testing.T) {
			n := newFakeNode(10)
			r := newSupersedeRig(t, n, func(c *Config) { c.Lightning = nil; c.OnChain.GapLimit = 3 })
			var ans []invoicemsg.Answer
			for _, minutes := range []uint32{10, 20, 30} {
				a := r.ask("viewer", invoicemsg.OnChain, minutes)
				if a.Code != invoicemsg.OK {
					t.Fatalf("%d minutes: %v %q", minutes, a.Code, a.Error)
				}
				ans = append(ans, a)
				r.clk.Add(step)
			}
			// The gap limit (3) is reached: a fresh address would be refused.
			a4 := r.ask("viewer", invoicemsg.OnChain, 15)
			if a4.Code != invoicemsg.OK {
				t.Fatalf("4th request: %v %q", a4.Code, a4.Error)
			}
			inv4 := r.invoice(a4.ID)
			old := r.invoice(supersedes(inv4))
			if step > 0 && old.ID != ans[0].ID {
				t.Fatalf("superseded %s, want the oldest %s", old.ID, ans[0].ID)
			}
			if a4.Address != old.Address || inv4.Index != old.Index {
				t.Fatalf("4th invoice at %s (index %d), the superseded one's address is %s (index %d)",
					a4.Address, inv4.Index, old.Address, old.Index)
			}
			if st := r.s.Status(); st.OutstandingAddresses != 3 || st.UnusedAddresses != 3 {
				t.Fatalf("status %+v: the reused address counted again", st)
			}
			if a := r.ask("other", invoicemsg.OnChain, 10); a.Code != invoicemsg.Unavailable {
				t.Fatalf("another viewer past the gap limit: %+v", a)
			}

			newest := func() {
				t.Helper()
				r.s.mu.Lock()
				got := r.s.byAddress[old.Address]
				waiting := r.s.waiting[old.Address]
				r.s.mu.Unlock()
				if got == nil || got.ID != inv4.ID || waiting != got {
					t.Fatalf("the address maps to %+v (waiting %+v), want the newest invoice %s", got, waiting, inv4.ID)
				}
			}
			newest()
			r.restart()
			newest()
			// A compacted store lists the invoices in no particular order: newest first here, the
			// superseded one last.
			r.close()
			var all []*Invoice
			for _, inv := range r.s.invoices {
				all = append(all, inv)
			}
			sort.SliceStable(all, func(i, j int) bool { return all[j].ID == old.ID && all[i].ID != old.ID })
			sort.SliceStable(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
			if err := rewriteStore(filepath.Join(r.dir, "invoices"), all, r.s.next); err != nil {
				t.Fatal(err)
			}
			r.open()
			newest()
			// The superseded invoice still does not count after the restarts: the next request
			// supersedes another one and takes over its address, not a fresh one.
			a5 := r.ask("viewer", invoicemsg.OnChain, 10)
			if a5.Code != invoicemsg.OK {
				t.Fatalf("5th request after restarts (does the superseded invoice count again?): %v %q", a5.Code, a5.Error)
			}
			inv5 := r.invoice(a5.ID)
			if s5 := supersedes(inv5); s5 == "" || s5 == old.ID || s5 == inv4.ID || a5.Address == old.Address {
				t.Fatalf("5th request after restarts: %+v (supersedes %s)", a5, s5)
			}

			// The viewer pays the amount of the superseded invoice (shown first) to its address.
			addr, _ := onchain.ParseAddress(old.Address, btcdtest.Net)
			tx := payTo(t, addr, int64(old.Sats), 77)
			n.mu.Lock()
			n.mempool[tx.TxHash()] = tx
			n.mu.Unlock()
			k := ledger.Key{Stream: streamID, Viewer: "viewer"}
			want := time.Duration(old.Sats/perMinute.Sats) * time.Minute
			waitFor(t, "provisional credit", func() bool { return r.l.Remaining(k) == want })
			n.extend(11, 11, 0, []*wire.MsgTx{tx})
			waitFor(t, "settled credit", func() bool {
				cs := r.l.Credits(k)
				return len(cs) == 1 && cs[0].State == ledger.Settled
			})
			cs := r.l.Credits(k)
			if r.l.Remaining(k) != want || cs[0].Msat != old.Sats*1000 || !strings.Contains(cs[0].Note, "paid in full") {
				t.Fatalf("paid %d sats (%v) to the reused address: %v of access, credits %+v", old.Sats, want, r.l.Remaining(k), cs)
			}
			if inv := r.invoice(inv4.ID); !inv.Paid || !inv.Used {
				t.Fatalf("the address's newest invoice is not marked paid and used: %+v", inv)
			}
			if st := r.s.Status(); st.OutstandingAddresses != 2 || st.UnusedAddresses != int64(2-old.Index) {
				t.Fatalf("status after the payment %+v", st)
			}
		})
	}
}

// Superseding never gets past the global caps: unpaid Lightning invoices, the gap limit and the
// creation rate still refuse, for one viewer asking again and again as for many viewers.
func TestSupersedingKeepsGlobalCaps(t *testing.T) {
	t.Run("MaxOutstandingLN", func(t *testing.T) {
		r := newSupersedeRig(t, nil, func(c *Config) { c.MaxOutstandingLN = 4 })
		for i := 0; i < 4; i++ {
			if a := r.ask("viewer", invoicemsg.Lightning, 1); a.Code != invoicemsg.OK {
				t.Fatalf("request %d: %v %q", i+1, a.Code, a.Error)
			}
		}
		for _, v := range []string{"viewer", "other"} {
			if a := r.ask(v, invoicemsg.Lightning, 1); a.Code != invoicemsg.RateLimited || !strings.Contains(a.Error, "Lightning") {
				t.Fatalf("%s past MaxOutstandingLN: %+v", v, a)
			}
		}
		r.clk.Add(16 * time.Minute) // expired: no longer outstanding
		if a := r.ask("other", invoicemsg.Lightning, 1); a.Code != invoicemsg.OK {
			t.Fatalf("after expiry: %+v", a)
		}
	})
	t.Run("GapLimit", func(t *testing.T) {
		r := newSupersedeRig(t, newFakeNode(10), func(c *Config) { c.Lightning = nil; c.OnChain.GapLimit = 4 })
		ok := 0
		for i := 0; i < 8; i++ { // many peer IDs
			if a := r.ask(string(rune('a'+i)), invoicemsg.OnChain, 10); a.Code == invoicemsg.OK {
				ok++
			} else if a.Code != invoicemsg.Unavailable {
				t.Fatalf("%+v", a)
			}
		}
		if ok != 4 || r.s.Status().OutstandingAddresses != 4 {
			t.Fatalf("%d on-chain invoices for 8 viewers under a gap limit of 4 (status %+v)", ok, r.s.Status())
		}
		// A Lightning request at the cap supersedes an on-chain invoice without taking its
		// address; an on-chain one after it takes that address over rather than a fresh one.
		r2 := newSupersedeRig(t, newFakeNode(10), func(c *Config) { c.OnChain.GapLimit = 3 })
		for i := 0; i < 3; i++ {
			if a := r2.ask("viewer", invoicemsg.OnChain, 10); a.Code != invoicemsg.OK {
				t.Fatal(a.Error)
			}
			r2.clk.Add(time.Second)
		}
		for i, m := range []invoicemsg.Method{invoicemsg.Lightning, invoicemsg.OnChain, invoicemsg.Lightning, invoicemsg.OnChain, invoicemsg.OnChain} {
			if a := r2.ask("viewer", m, 10); a.Code != invoicemsg.OK {
				t.Fatalf("request %d (%v): %v %q", i+4, m, a.Code, a.Error)
			}
			r2.clk.Add(time.Second)
		}
		if st := r2.s.Status(); st.UnusedAddresses != 3 || st.OutstandingAddresses != 3 {
			t.Fatalf("one viewer went past their 3 addresses: %+v", st)
		}
	})
	t.Run("Rate", func(t *testing.T) {
		r := newSupersedeRig(t, nil, func(c *Config) { c.Burst = 5; c.RatePerSec = 0.01 })
		ok := 0
		for i := 0; i < 10; i++ {
			switch a := r.ask("viewer", invoicemsg.Lightning, 1); a.Code {
			case invoicemsg.OK:
				ok++
			case invoicemsg.RateLimited:
				if !strings.Contains(a.Error, "too many invoices") {
					t.Fatalf("%+v", a)
				}
			default:
				t.Fatalf("%+v", a)
			}
		}
		if ok != 5 {
			t.Fatalf("%d invoices for one viewer within a burst of 5", ok)
		}
	})
}

// A request at the cap that fails (here its Lightning half) supersedes nothing: the invoice it
// was to supersede still counts, and the next request supersedes that one.
func TestFailedRequestSupersedesNothing(t *testing.T) {
	r := newSupersedeRig(t, nil, nil)
	var ids []string
	for i := 0; i < 3; i++ {
		a := r.ask("viewer", invoicemsg.Lightning, 1)
		if a.Code != invoicemsg.OK {
			t.Fatal(a.Error)
		}
		ids = append(ids, a.ID)
		r.clk.Add(time.Second)
	}
	r.ln.fail.Store(true)
	if a := r.ask("viewer", invoicemsg.Lightning, 1); a.Code != invoicemsg.Unavailable {
		t.Fatalf("%+v", a)
	}
	r.ln.fail.Store(false)
	for _, want := range ids[:2] {
		r.clk.Add(time.Second)
		a := r.ask("viewer", invoicemsg.Lightning, 1)
		if a.Code != invoicemsg.OK {
			t.Fatalf("%+v", a)
		}
		if got := supersedes(r.invoice(a.ID)); got != want {
			t.Fatalf("supersedes %q, want %q", got, want)
		}
	}
}

// A Lightning node that does not answer is said to the viewer (with the on-chain way out)
// before the viewer stops waiting for an answer, and the next request is not held behind it.
func TestLightningNodeNotAnsweringIsSaidInTime(t *testing.T) {
	old := lightningAnswerTimeout
	lightningAnswerTimeout = 200 * time.Millisecond
	t.Cleanup(func() { lightningAnswerTimeout = old })
	r := newSupersedeRig(t, nil, nil)
	r.ln.hang.Store(true)
	done := make(chan invoicemsg.Answer, 1)
	go func() { done <- r.ask("viewer", invoicemsg.Lightning, 1) }()
	select {
	case a := <-done:
		if a.Code != invoicemsg.Unavailable || !strings.Contains(a.Error, "pay on-chain") {
			t.Fatalf("a node that does not answer: %+v", a)
		}
	case <-time.After(20 * time.Second): // only a request without a bound waits this long
		t.Fatal("the request waited for the node without a bound")
	}
	r.ln.hang.Store(false)
	if a := r.ask("viewer", invoicemsg.Lightning, 1); a.Code != invoicemsg.OK {
		t.Fatalf("once the node answers: %+v", a)
	}
}
