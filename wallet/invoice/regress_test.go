//go:build linux

package invoice

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// fakeWatcher is a Watcher that never sees a payment.
type fakeWatcher struct{}

func (fakeWatcher) Watch(...btcutil.Address) error { return nil }
func (fakeWatcher) Run(ctx context.Context) error  { <-ctx.Done(); return ctx.Err() }
func (fakeWatcher) Height() int32                  { return 0 }
func (fakeWatcher) Resume(...onchain.Event)        {}
func (fakeWatcher) FollowDepth(int32)              {}

// Regression test for a reviewer's finding; the defect was: unpaid addresses are never recycled, so once GapLimit of them have been handed out,
// on-chain invoicing is refused for good, even after every one of them expired and left its
// monitoring window and the seller restarted (compaction).
func TestExpiredUnpaidAddressesFreeTheGapLimit(t *testing.T) {
	dir := t.TempDir()
	clk := mockClock()
	open := func() (*Seller, *ledger.Ledger) {
		l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{
			PriceOf: func(string) (price.Price, bool) { return perMinute, true },
			Ledger:  l, StorePath: filepath.Join(dir, "invoices"),
			OnChain: &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}},
			Clock:   clk, Burst: 1000, RatePerSec: 1000,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s, l
	}
	s, l := open()
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	issued := 0
	for v := 0; v < 10; v++ { // 10 throw-away peer IDs, 3 invoices each
		for i := 0; i < 3; i++ {
			if a := s.Handle(context.Background(), "attacker-"+string(rune('a'+v)), req); a.Code == invoicemsg.OK {
				issued++
			}
		}
	}
	t.Logf("attacker got %d addresses", issued)
	s.Close()
	l.Close()
	clk.Add(48 * time.Hour) // all expired, all out of their 24 h monitoring window
	s, l = open()
	defer func() { s.Close(); l.Close() }()
	a := s.Handle(context.Background(), "honest-viewer", req)
	if a.Code != invoicemsg.OK {
		t.Fatalf("two days later an honest viewer still cannot get an on-chain invoice: %v %q", a.Code, a.Error)
	}
}

// fakeLN models LND: a subscription from settle index 0 gets no backlog (lnd
// channeldb.InvoicesSettledSince returns nothing for 0), later ones replay settles after it.
type fakeLN struct {
	mu      sync.Mutex
	settled map[string]Settled
}

func (f *fakeLN) AddInvoice(ctx context.Context, msat uint64, memo string, expiry time.Duration) (string, string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b), "lnsb1fake", nil
}
func (f *fakeLN) Network() string { return "simnet" }
func (f *fakeLN) LookupInvoice(ctx context.Context, h string) (Settled, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.settled[h]
	return s, ok, nil
}
func (f *fakeLN) Run(ctx context.Context, idx uint64, on func(Settled) error) error {
	f.mu.Lock()
	var backlog []Settled
	for _, s := range f.settled {
		if idx > 0 && s.SettleIndex > idx {
			backlog = append(backlog, s)
		}
	}
	f.mu.Unlock()
	for _, s := range backlog {
		on(s)
	}
	<-ctx.Done()
	return ctx.Err()
}

// Regression test for a reviewer's finding; the defect was: a settle whose ledger write fails (crash or I/O error) after the invoice was marked
// paid is never credited when no settle index was stored yet: reconcileLightning skips invoices
// marked Paid, and a subscription from index 0 replays nothing.
func TestLightningCreditRetriedAfterFailedLedgerWrite(t *testing.T) {
	dir := t.TempDir()
	ln := &fakeLN{settled: map[string]Settled{}}
	open := func() (*Seller, *ledger.Ledger) {
		l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{
			PriceOf: func(string) (price.Price, bool) { return perMinute, true },
			Ledger:  l, StorePath: filepath.Join(dir, "invoices"), Lightning: ln,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s, l
	}
	s, l := open()
	a := s.Handle(context.Background(), "viewer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.Lightning, Minutes: 1})
	if a.Code != invoicemsg.OK {
		t.Fatal(a.Error)
	}
	inv, _ := s.Invoice(a.ID)
	st := Settled{Hash: inv.Hash, AmtPaidMsat: 100_000, SettleIndex: 1}
	ln.mu.Lock()
	ln.settled[inv.Hash] = st
	ln.mu.Unlock()
	l.Close() // the ledger write is what fails (crash / disk error) ...
	if err := s.LightningSettled(st); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("want the ledger failure, got %v", err)
	}
	s.Close()
	// ... the app restarts: LND still says the invoice is settled.
	s, l = open()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	defer func() { s.Close(); l.Close() }()
	if got := l.Remaining(ledger.Key{Stream: streamID, Viewer: "viewer"}); got != time.Minute {
		t.Fatalf("paid 100 sats (1 minute), credited %v", got)
	}
}

// Regression test for a reviewer's finding; the defect was: an address counts as used (moving the gap window) as soon as an unconfirmed payment
// is seen, and stays used after that payment is double-spent away. An attacker can so push the
// desk past the wallet's gap limit: addresses 0..2 never get a transaction on chain, yet 3..5
// are handed out, and a restored wallet with gap limit 3 stops before them.
func TestRevokedPaymentDoesNotMoveGapWindow(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{
		PriceOf: func(string) (price.Price, bool) { return perMinute, true },
		Ledger:  l, StorePath: filepath.Join(dir, "invoices"),
		OnChain: &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}, GapLimit: 3, ProvisionalCapSats: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	var last invoicemsg.Answer
	for _, v := range []string{"a", "b", "c"} {
		last = s.Handle(context.Background(), v, req)
	}
	op := wire.OutPoint{Hash: chainhash.Hash{9}, Index: 0}
	s.OnChainEvent(onchain.Event{Kind: onchain.Seen, OutPoint: op, Address: last.Address, Sats: 1000})
	s.OnChainEvent(onchain.Event{Kind: onchain.Gone, OutPoint: op, Address: last.Address, Sats: 1000, Reason: "double-spent"})
	if cs := l.Credits(ledger.Key{Stream: streamID, Viewer: "c"}); len(cs) != 1 || cs[0].State != ledger.Revoked {
		t.Fatalf("credits %+v", cs)
	}
	if a := s.Handle(context.Background(), "d", req); a.Code == invoicemsg.OK {
		t.Fatalf("address %s handed out: no address before it ever had a transaction on chain; gap limit 3 exceeded (status %+v)",
			a.Address, s.Status())
	}
}

func accountKeyN(t testing.TB, acct uint32) *onchain.AccountKey {
	seed := sha256.Sum256([]byte("dazaar-vision invoice test seed; never use with real coins"))
	m, _ := hdkeychain.NewMaster(seed[:], btcdtest.Net)
	k := m
	for _, i := range []uint32{84, 1, acct} {
		k, _ = k.Derive(hdkeychain.HardenedKeyStart + i)
	}
	pub, _ := k.Neuter()
	pub, _ = pub.CloneWithVersion([]byte{0x04, 0x5f, 0x1c, 0xf6})
	ak, err := onchain.ParseAccountKey(pub.String(), btcdtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	return ak
}

// Regression test for a reviewer's finding; the defect was: the invoice store does not record which account key its address counter belongs to.
// After the seller switches to another xpub, derivation continues at the old key's index, so the
// new wallet (gap limit 20) never finds the payments.
func TestNewAccountKeyStartsAtIndexZero(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := func(k *onchain.AccountKey) *Seller {
		s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
			StorePath: filepath.Join(dir, "invoices"), Burst: 1000, PerViewer: 1000,
			OnChain: &OnChain{Key: k, Watcher: fakeWatcher{}, ProvisionalCapSats: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(accountKeyN(t, 0))
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	for i := 0; i < 40; i++ { // forty paid invoices on the old wallet
		a := s.Handle(context.Background(), "v", req)
		s.OnChainEvent(onchain.Event{Kind: onchain.Confirmed, Confirmations: 1, OutPoint: wire.OutPoint{Hash: chainhash.Hash{byte(i)}},
			Address: a.Address, Sats: 1000})
	}
	s.Close()
	s = open(accountKeyN(t, 1)) // the seller moves to a new wallet
	defer s.Close()
	a := s.Handle(context.Background(), "w", req)
	inv, _ := s.Invoice(a.ID)
	if inv.Index >= 20 {
		t.Fatalf("first invoice on the new account key uses index %d; the new wallet (gap 20) will never see it", inv.Index)
	}
}

// The global creation rate: a burst, then RatePerSec.
func TestGlobalRateLimit(t *testing.T) {
	dir := t.TempDir()
	clk := mockClock()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "invoices"), Clock: clk, Burst: 8, RatePerSec: 1,
		OnChain: &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}, GapLimit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	ok := 0
	for i := 0; i < 12; i++ {
		switch a := s.Handle(context.Background(), "v"+strconv.Itoa(i), req); a.Code {
		case invoicemsg.OK:
			ok++
		case invoicemsg.RateLimited:
		default:
			t.Fatalf("%+v", a)
		}
	}
	if ok != 8 {
		t.Fatalf("%d invoices within the burst, want 8", ok)
	}
	clk.Add(2 * time.Second)
	if a := s.Handle(context.Background(), "x", req); a.Code != invoicemsg.OK {
		t.Fatalf("rate limit did not refill: %+v", a)
	}
}

// Unconfirmed credit across all viewers is bounded by ProvisionalTotalCapSats: many peer IDs
// paying with transactions they may double-spend get no more between them.
func TestProvisionalTotalCap(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "invoices"),
		OnChain:   &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}, ProvisionalCapSats: 1000, ProvisionalTotalCapSats: 2500}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	var total time.Duration
	for i, v := range []string{"a", "b", "c", "d"} {
		a := s.Handle(context.Background(), v, req)
		s.OnChainEvent(onchain.Event{Kind: onchain.Seen, OutPoint: wire.OutPoint{Hash: chainhash.Hash{byte(i + 1)}},
			Address: a.Address, Sats: 1000})
		total += l.Remaining(ledger.Key{Stream: streamID, Viewer: v})
	}
	if total != 25*time.Minute {
		t.Fatalf("four unconfirmed 1000-sat payments under a 2500-sat total cap: %v of access", total)
	}
	// A confirmed payment is not bound by it.
	a := s.Handle(context.Background(), "e", req)
	s.OnChainEvent(onchain.Event{Kind: onchain.Confirmed, Confirmations: 1, OutPoint: wire.OutPoint{Hash: chainhash.Hash{9}},
		Address: a.Address, Sats: 1000})
	if got := l.Remaining(ledger.Key{Stream: streamID, Viewer: "e"}); got != 10*time.Minute {
		t.Fatalf("a confirmed payment is not bound by the unconfirmed cap: %v", got)
	}
}

type failingLN struct{ *fakeLN }

func (failingLN) AddInvoice(context.Context, uint64, string, time.Duration) (string, string, error) {
	return "", "", errors.New("LND is down")
}

// A request for both methods that fails on the Lightning side costs no address.
func TestFailedLightningHalfReservesNoAddress(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "invoices"), Burst: 100, PerViewer: 100,
		OnChain:   &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}},
		Lightning: failingLN{&fakeLN{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 30; i++ {
		if a := s.Handle(context.Background(), "v", invoicemsg.Request{Stream: streamID, Method: invoicemsg.Any, Minutes: 10}); a.Code != invoicemsg.Unavailable {
			t.Fatalf("%+v", a)
		}
	}
	if st := s.Status(); st.UnusedAddresses != 0 || st.OutstandingAddresses != 0 {
		t.Fatalf("failed invoices used addresses: %+v", st)
	}
	a := s.Handle(context.Background(), "v", invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10})
	if inv, _ := s.Invoice(a.ID); a.Code != invoicemsg.OK || inv.Index != 0 {
		t.Fatalf("first on-chain invoice after failures: %+v (index %d)", a, inv.Index)
	}
}

// A store written before account keys were recorded: its counter and invoices belong to the key
// whose addresses they hold, and a paid legacy address still counts as used.
func TestLegacyStoreWithoutKeys(t *testing.T) {
	for _, sameKey := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "invoices")
		st, _, err := openStore(path, func(Invoice) {}, func(string, uint32) {})
		if err != nil {
			t.Fatal(err)
		}
		old := accountKeyN(t, 0)
		a, _ := old.Address(4)
		n := uint32(5)
		st.put(storeRecord{NextIndex: &n})
		st.put(storeRecord{Invoice: &Invoice{ID: "x", Stream: streamID, Viewer: "v", Method: invoicemsg.OnChain, Sats: 1000,
			Price: perMinute, Created: time.Now(), Expires: time.Now().Add(time.Minute), Address: a.EncodeAddress(), Index: 4, Paid: true}})
		st.close()
		l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
		if err != nil {
			t.Fatal(err)
		}
		key := old
		if !sameKey {
			key = accountKeyN(t, 1)
		}
		s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l, StorePath: path,
			OnChain: &OnChain{Key: key, Watcher: fakeWatcher{}}})
		if err != nil {
			t.Fatal(err)
		}
		ans := s.Handle(context.Background(), "w", invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10})
		inv, _ := s.Invoice(ans.ID)
		want := map[bool]uint32{true: 5, false: 0}[sameKey]
		if ans.Code != invoicemsg.OK || inv.Index != want {
			t.Errorf("same key %v: first new invoice at index %d, want %d (%+v)", sameKey, inv.Index, want, ans)
		}
		if st := s.Status(); st.UnusedAddresses != 1 || st.OutstandingAddresses != 1 {
			t.Errorf("same key %v: status %+v", sameKey, st)
		}
		s.Close()
		l.Close()
	}
}

// Regression test for a reviewer's finding; the defect was: the gap-limit help and the status
// advice said that viewers who have paid do not count, but a combined invoice paid by Lightning
// leaves its address unused on-chain, so the watching wallet's gap window does not move and the
// address rightly keeps its place until its monitoring window ends.
func TestCombinedInvoicePaidByLightningKeepsGapPlace(t *testing.T) {
	dir := t.TempDir()
	clk := mockClock()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true },
		Ledger: l, StorePath: filepath.Join(dir, "invoices"), Lightning: &fakeLN{settled: map[string]Settled{}},
		OnChain: &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}, GapLimit: 4}, Clock: clk, Burst: 1000, RatePerSec: 1000, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 4; i++ {
		v := "viewer" + strconv.Itoa(i)
		a := s.Handle(context.Background(), v, invoicemsg.Request{Stream: streamID, Method: invoicemsg.Any, Minutes: 10})
		if a.Code != invoicemsg.OK {
			t.Fatalf("%d: %s", i, a.Error)
		}
		inv, _ := s.Invoice(a.ID)
		if err := s.LightningSettled(Settled{Hash: inv.Hash, AmtPaidMsat: a.Sats * 1000, SettleIndex: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		if r := l.Remaining(ledger.Key{Stream: streamID, Viewer: v}); r != 10*time.Minute {
			t.Fatalf("not credited: %v", r)
		}
		if i == 2 { // 3 of 4: the advice shows
			st := s.Status()
			if st.OutstandingAddresses != 3 || st.GapAdvice == "" {
				t.Fatalf("status %+v", st)
			}
			if strings.Contains(st.GapAdvice, "who have not paid") || !strings.Contains(st.GapAdvice, "Lightning") {
				t.Fatalf("the advice does not say that combined invoices paid by Lightning count: %q", st.GapAdvice)
			}
		}
	}
	// The behaviour stays: the addresses are unused, so no fresh one is handed out.
	if a := s.Handle(context.Background(), "newcomer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}); a.Code != invoicemsg.Unavailable {
		t.Fatalf("a fifth address beyond the gap limit of 4: %+v", a)
	}
	if strings.Contains(GapLimitHelp, "Viewers who have paid (even before the first confirmation) do not count.") ||
		!strings.Contains(GapLimitHelp, "Lightning") {
		t.Fatalf("GapLimitHelp does not say that combined invoices paid by Lightning count: %q", GapLimitHelp)
	}
}

// TestOnChainMinimumSaysWhatWorks: an on-chain invoice under the minimum is refused in words
// that name the minimum and a way that works: a seller without Lightning does not suggest it
// (before: "buy more time or pay with Lightning" from a seller on-chain only).
func TestOnChainMinimumSaysWhatWorks(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "invoices"), OnChain: &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		minutes uint32
		code    invoicemsg.Code
	}{{9, invoicemsg.Refused}, {10, invoicemsg.OK}} { // 100 sats a minute: 1 000 at 10
		a := s.Handle(context.Background(), "v", invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: c.minutes})
		if a.Code != c.code {
			t.Fatalf("%d minutes: %+v", c.minutes, a)
		}
		if c.code == invoicemsg.Refused && (!strings.Contains(a.Error, fmt.Sprint(DefaultOnChainMinSats)) || strings.Contains(a.Error, "Lightning")) {
			t.Errorf("%d minutes: %q", c.minutes, a.Error)
		}
	}
}
