//go:build linux

package invoice

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
	"github.com/filecoin-project/go-clock"
)

// mockClock is a fake clock set to the real time.
func mockClock() *clock.Mock {
	c := clock.NewMock()
	c.Set(time.Now())
	return c
}

func accountKey(t testing.TB) *onchain.AccountKey {
	seed := sha256.Sum256([]byte("dazaar-vision invoice test seed; never use with real coins"))
	m, _ := hdkeychain.NewMaster(seed[:], btcdtest.Net)
	k := m
	for _, i := range []uint32{84, 1, 0} {
		k, _ = k.Derive(hdkeychain.HardenedKeyStart + i)
	}
	pub, _ := k.Neuter()
	pub, _ = pub.CloneWithVersion([]byte{0x04, 0x5f, 0x1c, 0xf6}) // vpub
	ak, err := onchain.ParseAccountKey(pub.String(), btcdtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	return ak
}

const streamID = "3f2a9c0d5e7b1a46c8d2e0f9b3a7c5d1e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4"

var perMinute = price.Price{Sats: 100, Interval: 1, Unit: price.Minute}

type fixture struct {
	t      *testing.T
	node   *btcdtest.Node
	dir    string
	clock  *clock.Mock
	key    *onchain.AccountKey
	ledger *ledger.Ledger
	seller *Seller
	stop   func()
	cfg    func(*Config)
}

func newFixture(t *testing.T, node *btcdtest.Node, dir string, cfg func(*Config)) *fixture {
	f := &fixture{t: t, node: node, dir: dir, clock: mockClock(), key: accountKey(t), cfg: cfg}
	f.start()
	return f
}

func (f *fixture) start() {
	t := f.t
	l, err := ledger.Open(filepath.Join(f.dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var s *Seller
	w, err := onchain.NewWebsocket(onchain.WatchConfig{
		Node: onchain.NodeConfig{Host: f.node.RPCAddr, User: f.node.User(), Pass: f.node.Pass()},
		Net:  btcdtest.Net, OnEvent: func(e onchain.Event) { s.OnChainEvent(e) }, StartHeight: ResumeHeight(l, btcdtest.Net),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		PriceOf: func(stream string) (price.Price, bool) {
			if stream == "free" {
				return price.Free, true
			}
			return perMinute, stream == streamID
		},
		Ledger: l, StorePath: filepath.Join(f.dir, "invoices"),
		OnChain: &OnChain{Key: f.key, Watcher: w, ProvisionalCapSats: 1500},
		Clock:   f.clock,
	}
	if f.cfg != nil {
		f.cfg(&cfg)
	}
	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	f.ledger, f.seller = l, s
	f.stop = func() {
		cancel()
		<-done
		s.Close()
		l.Close()
	}
	t.Cleanup(func() {
		if f.stop != nil {
			f.stop()
		}
	})
}

func (f *fixture) restart() {
	f.stop()
	f.stop = nil
	f.start()
}

func (f *fixture) ask(viewer string, req invoicemsg.Request) invoicemsg.Answer {
	f.t.Helper()
	a := f.seller.Handle(context.Background(), viewer, req)
	// What goes on the wire must survive the trip.
	if b, err := a.MarshalBinary(); err != nil {
		f.t.Fatalf("answer does not encode: %v (%+v)", err, a)
	} else {
		var back invoicemsg.Answer
		if err := back.UnmarshalBinary(b); err != nil || back != a {
			f.t.Fatalf("answer round trip: %v", err)
		}
	}
	return a
}

func (f *fixture) invoice(viewer string, minutes uint32) (invoicemsg.Answer, btcutil.Address) {
	f.t.Helper()
	a := f.ask(viewer, invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: minutes})
	if a.Code != invoicemsg.OK {
		f.t.Fatalf("refused: %s", a.Error)
	}
	addr, err := onchain.ParseAddress(a.Address, btcdtest.Net)
	if err != nil {
		f.t.Fatal(err)
	}
	return a, addr
}

// waitAccess waits until viewer has want of access and no provisional credit if settled is set.
func (f *fixture) waitAccess(viewer string, want time.Duration, settled bool) ledger.Balance {
	f.t.Helper()
	k := ledger.Key{Stream: streamID, Viewer: viewer}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b := f.ledger.Balance(k)
		if b.Remaining() == want && (!settled || b.ProvisionalMillis == 0) {
			return b
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("viewer %s: balance %+v (remaining %v), want %v settled=%v; credits %+v", viewer, b, b.Remaining(), want, settled, f.ledger.Credits(k))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOnChainPaymentsBecomeAccess(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{})
	f := newFixture(t, node, t.TempDir(), nil)

	// 10 minutes at 100 sats a minute.
	a, addr := f.invoice("alice", 10)
	if a.Sats != 1000 || a.Millis != 600_000 || a.Network != "simnet" {
		t.Fatalf("answer %+v", a)
	}
	u, err := onchain.ParseURI(a.URI, btcdtest.Net)
	if err != nil || u.Address != a.Address || u.Sats != 1000 || u.Label == "" || u.Message == "" {
		t.Fatalf("URI %q: %+v %v", a.URI, u, err)
	}
	// The viewer checks the answer before showing it; tampered answers are refused.
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	exp := Expect{Request: req, Viewer: "alice", Price: perMinute, Network: "simnet", Now: f.clock.Now()}
	if err := Check(exp, a); err != nil {
		t.Fatalf("good answer refused: %v", err)
	}
	for name, mod := range map[string]func(*invoicemsg.Answer){
		"amount":  func(x *invoicemsg.Answer) { x.Sats = 2000 },
		"network": func(x *invoicemsg.Answer) { x.Network = "mainnet" },
		"stream":  func(x *invoicemsg.Answer) { x.Stream = "other" },
		"uri":     func(x *invoicemsg.Answer) { x.URI = strings.Replace(x.URI, "amount=0.00001", "amount=0.0001", 1) },
		"expired": func(x *invoicemsg.Answer) { x.ExpiresAt = f.clock.Now().Add(-time.Minute).Unix() },
		// The viewer is shown, and keeps as bought, the time the answer names.
		"more time": func(x *invoicemsg.Answer) { x.Millis *= 10 },
		"less time": func(x *invoicemsg.Answer) { x.Millis-- },
		// BIP321 lets a URI carry more ways to pay; a wallet could take one nobody checked.
		"uri with bc=":        func(x *invoicemsg.Answer) { x.URI += "&bc=" + x.Address },
		"uri with lightning=": func(x *invoicemsg.Answer) { x.URI += "&lightning=lnsb1xyz" },
		"uri with lno=":       func(x *invoicemsg.Answer) { x.URI += "&lno=lno1xyz" },
	} {
		bad := a
		mod(&bad)
		if err := Check(exp, bad); err == nil {
			t.Errorf("tampered %s accepted", name)
		}
	}
	node.Pay(addr, 1000)
	f.waitAccess("alice", 10*time.Minute, false) // provisional, under the 1 500-sat cap
	node.Generate(1)
	f.waitAccess("alice", 10*time.Minute, true)

	// Underpayment: less sats, less time. Overpayment: more. Above the provisional cap, only
	// the cap counts until the payment confirms.
	_, addr2 := f.invoice("alice", 10)
	node.Pay(addr2, 500)
	f.waitAccess("alice", 15*time.Minute, false)
	_, addr3 := f.invoice("bob", 10)
	node.Pay(addr3, 3000)
	f.waitAccess("bob", 15*time.Minute, false) // capped at 1 500 sats unconfirmed
	node.Generate(1)
	f.waitAccess("alice", 15*time.Minute, true)
	f.waitAccess("bob", 30*time.Minute, true)
	notes := ""
	for _, c := range f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "alice"}) {
		notes += c.Note + "\n"
	}
	for _, c := range f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "bob"}) {
		notes += c.Note + "\n"
	}
	for _, want := range []string{"paid in full", "underpaid: 500 of 1000 sats", "overpaid: 3000 sats"} {
		if !strings.Contains(notes, want) {
			t.Errorf("no %q in notes:\n%s", want, notes)
		}
	}

	// Burning access is per viewer and by media time.
	left, _ := f.ledger.Consume(ledger.Key{Stream: streamID, Viewer: "alice"}, 60_000)
	if left != 14*time.Minute || f.ledger.Remaining(ledger.Key{Stream: streamID, Viewer: "bob"}) != 30*time.Minute {
		t.Fatalf("consume: %v", left)
	}

	// A payment after expiry, within the monitoring window, still goes to the viewer it was
	// issued to, and says so.
	_, addr4 := f.invoice("carol", 10)
	f.clock.Add(20 * time.Minute)
	node.Pay(addr4, 1000)
	node.Generate(1)
	f.waitAccess("carol", 10*time.Minute, true)
	cs := f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "carol"})
	if len(cs) != 1 || !strings.Contains(cs[0].Note, "after the invoice expired") {
		t.Fatalf("late payment credit %+v", cs)
	}

	// Restart: nothing is lost and nothing is credited twice; a payment made while the seller
	// was down is found.
	_, addr5 := f.invoice("dave", 10)
	f.stop()
	f.stop = nil
	node.Pay(addr5, 1000)
	node.Generate(12) // more than the watcher's default look-back: found from the saved height
	f.start()
	f.waitAccess("dave", 10*time.Minute, true)

	// btcd restarts under a running seller: payments after it are still seen.
	_, addr6 := f.invoice("erin", 10)
	node.Restart()
	node.Pay(addr6, 1000)
	f.waitAccess("erin", 10*time.Minute, false)
	node.Generate(1)
	f.waitAccess("erin", 10*time.Minute, true)
	f.waitAccess("alice", 14*time.Minute, true)
	f.waitAccess("bob", 30*time.Minute, true)
	if n := len(f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "alice"})); n != 2 {
		t.Fatalf("alice has %d credits", n)
	}
}

func TestReplacedPaymentIsRevoked(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{})
	f := newFixture(t, node, t.TempDir(), nil)
	_, addr := f.invoice("mallory", 10)
	coin := node.NextCoin()
	pay := btcdtest.BuildTx(t, coin, 1000, btcdtest.Output{Address: addr, Sats: 1000})
	if _, err := node.Send(pay); err != nil {
		t.Fatal(err)
	}
	f.waitAccess("mallory", 10*time.Minute, false)
	f.ledger.Consume(ledger.Key{Stream: streamID, Viewer: "mallory"}, 30_000) // watched 30 s
	repl := btcdtest.BuildTx(t, coin, 5000, btcdtest.Output{Address: btcdtest.MinerAddress(), Sats: 10_000})
	if _, err := node.Send(repl); err != nil {
		t.Fatal(err)
	}
	// Revoked as soon as the replacement takes the payment's place in the mempool, before any
	// block: what the payment spends is in btcd's filter, so the replacement wakes the watcher.
	b := f.waitAccess("mallory", -30*time.Second, true)
	cs := f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "mallory"})
	if len(cs) != 1 || cs[0].State != ledger.Revoked || !strings.Contains(cs[0].Note, "replaced") {
		t.Fatalf("credits %+v balance %+v", cs, b)
	}
	// The replacement confirmed: still revoked, once.
	node.Generate(1)
	for h := node.Height(); f.seller.cfg.OnChain.Watcher.Height() < h; {
		time.Sleep(5 * time.Millisecond)
	}
	if cs := f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "mallory"}); len(cs) != 1 || cs[0].State != ledger.Revoked {
		t.Fatalf("after the replacement confirmed: credits %+v", cs)
	}
	if f.ledger.Remaining(ledger.Key{Stream: streamID, Viewer: "mallory"}) != 0 {
		t.Fatal("access after revocation")
	}
}

func TestLimits(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{})
	f := newFixture(t, node, t.TempDir(), func(c *Config) {
		c.OnChain.GapLimit = 5
		c.Burst = 8
		c.RatePerSec = 1
	})
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	seen := map[string]bool{}
	// Per viewer: 3 unpaid invoices count; a 4th supersedes one and takes over its address.
	for i := 0; i < 3; i++ {
		a := f.ask("v1", req)
		if a.Code != invoicemsg.OK || seen[a.Address] {
			t.Fatalf("invoice %d: %+v", i, a)
		}
		seen[a.Address] = true
	}
	if a := f.ask("v1", req); a.Code != invoicemsg.OK || !seen[a.Address] || f.seller.byAddress[a.Address].ID != a.ID {
		t.Fatalf("4th invoice for one viewer: %+v", a)
	}
	// Gap limit: 5 addresses awaiting payment at most.
	for i := 0; i < 2; i++ {
		if a := f.ask("v2", req); a.Code != invoicemsg.OK || seen[a.Address] {
			t.Fatalf("%+v", a)
		} else {
			seen[a.Address] = true
		}
	}
	if a := f.ask("v3", req); a.Code != invoicemsg.Unavailable || !strings.Contains(a.Error, "addresses") {
		t.Fatalf("past the gap limit: %+v", a)
	}
	if st := f.seller.Status(); st.UnusedAddresses != 5 || st.OutstandingAddresses != 5 || st.GapLimit != 5 ||
		!strings.Contains(st.GapAdvice, "raise the gap limit") {
		t.Fatalf("status %+v", st)
	}
	// A settled payment to the newest address frees its place (and ends the unused run).
	last := ""
	for a := range seen {
		inv := f.seller.byAddress[a]
		if inv.Index == 4 {
			last = a
		}
	}
	addr, _ := onchain.ParseAddress(last, btcdtest.Net)
	node.Pay(addr, 1000)
	f.waitAccess(f.seller.byAddress[last].Viewer, 10*time.Minute, false)
	if st := f.seller.Status(); st.OutstandingAddresses != 4 {
		t.Fatalf("an address paid in the mempool is used, not outstanding: %+v", st)
	}
	node.Generate(1)
	f.waitAccess(f.seller.byAddress[last].Viewer, 10*time.Minute, true)
	if st := f.seller.Status(); st.UnusedAddresses != 0 || st.OutstandingAddresses != 4 || !strings.Contains(st.GapAdvice, "4 of the 5") {
		t.Fatalf("status after payment %+v", st)
	}
	if a := f.ask("v4", req); a.Code != invoicemsg.OK || seen[a.Address] {
		t.Fatalf("after a payment: %+v", a)
	} else {
		seen[a.Address] = true
	}
	if a := f.ask("v5", req); a.Code != invoicemsg.Unavailable {
		t.Fatalf("past the gap limit again: %+v", a)
	}
	// A viewer whose invoice expired unpaid gets its address again, without a fresh one.
	f.clock.Add(16 * time.Minute)
	if a := f.ask("v2", req); a.Code != invoicemsg.OK || !seen[a.Address] || f.seller.byAddress[a.Address].Viewer != "v2" {
		t.Fatalf("expired address not handed back to its viewer: %+v", a)
	}
	if a := f.ask("v5", req); a.Code != invoicemsg.Unavailable {
		t.Fatalf("expired, still monitored addresses count against the gap limit: %+v", a)
	}
	// Once out of their monitoring window they no longer do.
	f.clock.Add(25 * time.Hour)
	ok := 0
	for i := 0; i < 5; i++ {
		if a := f.ask("w"+string(rune('a'+i)), req); a.Code == invoicemsg.OK {
			if seen[a.Address] {
				t.Fatal("address handed out twice")
			}
			seen[a.Address] = true
			ok++
		} else {
			t.Fatalf("%+v", a)
		}
	}
	if ok != 5 {
		t.Fatalf("%d invoices after the monitoring window, want 5", ok)
	}
	// Bad requests get plain refusals.
	for _, c := range []struct {
		viewer string
		req    invoicemsg.Request
		code   invoicemsg.Code
		text   string
	}{
		{"", req, invoicemsg.BadRequest, "unauthenticated"},
		{"v9", invoicemsg.Request{Stream: "other", Method: invoicemsg.OnChain, Sats: 5000}, invoicemsg.Refused, "does not sell"},
		{"v9", invoicemsg.Request{Stream: "free", Method: invoicemsg.OnChain, Sats: 5000}, invoicemsg.Refused, "free"},
		{"v9", invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Sats: 10}, invoicemsg.Refused, "start at 1000"},
		{"v9", invoicemsg.Request{Stream: streamID, Method: invoicemsg.Lightning, Sats: 5000}, invoicemsg.Unavailable, "on-chain payments only"},
	} {
		if a := f.ask(c.viewer, c.req); a.Code != c.code || !strings.Contains(a.Error, c.text) {
			t.Errorf("%+v: %+v", c.req, a)
		}
	}
	// After a restart, addresses continue where they stopped: none is handed out again.
	f.clock.Add(25 * time.Hour)
	f.restart()
	a := f.ask("y", req)
	if a.Code != invoicemsg.OK || seen[a.Address] {
		t.Fatalf("after restart: %+v (reused=%v)", a, seen[a.Address])
	}
}

// A confirmed payment whose block a longer competing chain replaces, with the payer's coin spent
// elsewhere on that chain: the credit goes from settled to revoked. A payment in the same block
// that the other chain does not conflict with goes back to provisional, then settles again.
func TestReorgRevokesDoubleSpentPayment(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{Listen: true})
	other := btcdtest.Start(t, btcdtest.Options{Listen: true})
	other.Connect(node)
	other.WaitHeight(node.Height())
	other.Stop()
	f := newFixture(t, node, t.TempDir(), nil)

	_, addrE := f.invoice("eve", 10)
	_, addrH := f.invoice("honest", 10)
	coin := node.NextCoin()
	pay := btcdtest.BuildTx(t, coin, 1000, btcdtest.Output{Address: addrE, Sats: 1000})
	if _, err := node.Send(pay); err != nil {
		t.Fatal(err)
	}
	node.Pay(addrH, 1000)
	node.Generate(1)
	f.waitAccess("eve", 10*time.Minute, true)
	f.waitAccess("honest", 10*time.Minute, true)
	f.ledger.Consume(ledger.Key{Stream: streamID, Viewer: "eve"}, 120_000) // two minutes watched

	other.Restart()
	theft := btcdtest.BuildTx(t, coin, 3000, btcdtest.Output{Address: btcdtest.MinerAddress(), Sats: 10_000})
	if _, err := other.Send(theft); err != nil {
		t.Fatal(err)
	}
	other.Generate(3)
	node.Connect(other)
	node.WaitHeight(other.Height())

	f.waitAccess("eve", -2*time.Minute, true)
	cs := f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "eve"})
	if len(cs) != 1 || cs[0].State != ledger.Revoked || !strings.Contains(cs[0].Note, "revoked") {
		t.Fatalf("eve's credit %+v", cs)
	}
	// The honest payment is valid on the new chain: unconfirmed again, then settled by a block.
	hk := ledger.Key{Stream: streamID, Viewer: "honest"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cs := f.ledger.Credits(hk)
		if len(cs) == 1 && cs[0].State == ledger.Provisional && strings.Contains(cs[0].Note, "reorganisation") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("honest credit not provisional after the reorg: %+v", cs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.waitAccess("honest", 10*time.Minute, false)
	node.Generate(1)
	f.waitAccess("honest", 10*time.Minute, true)
}

// Many concurrent requests from one viewer still hold at most PerViewer addresses (requests
// beyond the cap supersede and take addresses over, or are refused while the ones filling it are
// being answered), and no address is handed out to two viewers.
func TestConcurrentRequestsRespectCaps(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{})
	f := newFixture(t, node, t.TempDir(), func(c *Config) { c.Burst = 1000; c.RatePerSec = 1000 })
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	var mu sync.Mutex
	ok := map[string]int{}
	addrs := map[string]string{} // address → viewer
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			viewer := fmt.Sprint("v", i%4)
			a := f.seller.Handle(context.Background(), viewer, req)
			mu.Lock()
			defer mu.Unlock()
			if a.Code == invoicemsg.OK {
				ok[viewer]++
				if v, seen := addrs[a.Address]; seen && v != viewer {
					t.Errorf("address %s handed out to %s and %s", a.Address, v, viewer)
				}
				addrs[a.Address] = viewer
			} else if a.Code != invoicemsg.RateLimited {
				t.Errorf("%+v", a)
			}
		}(i)
	}
	wg.Wait()
	per := map[string]int{}
	for _, v := range addrs {
		per[v]++
	}
	for v, n := range per {
		if n > 3 || ok[v] < 3 {
			t.Errorf("%s got %d invoices and %d addresses", v, ok[v], n)
		}
	}
	if len(addrs) != 12 {
		t.Errorf("%d invoices in all, want 12 (4 viewers × 3)", len(addrs))
	}
}

// The invoice file forgets unpaid invoices whose monitoring window has ended, keeps the address
// counter, and never hands out an old address again.
func TestInvoiceStoreCompaction(t *testing.T) {
	dir := t.TempDir()
	clk := mockClock()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := func() *Seller {
		w, err := onchain.NewPoller(onchain.WatchConfig{Node: onchain.NodeConfig{Host: "127.0.0.1:1"}, Net: btcdtest.Net,
			OnEvent: func(onchain.Event) {}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
			StorePath: filepath.Join(dir, "invoices"), OnChain: &OnChain{Key: accountKey(t), Watcher: w, GapLimit: 1000},
			RatePerSec: 1e6, Burst: 1e6, Clock: clk, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Sats: 1000}
	for i := 0; i < 300; i++ {
		if a := s.Handle(context.Background(), fmt.Sprint("v", i), req); a.Code != invoicemsg.OK {
			t.Fatal(a.Error)
		}
	}
	s.Close()
	before := fileSize(t, filepath.Join(dir, "invoices"))
	clk.Add(25 * time.Hour) // past expiry and the 24 h monitoring window
	s = open()
	after := fileSize(t, filepath.Join(dir, "invoices"))
	if len(s.invoices) != 0 || after > before/10 {
		t.Fatalf("not compacted: %d invoices, %d -> %d bytes", len(s.invoices), before, after)
	}
	a := s.Handle(context.Background(), "new", req)
	if inv, _ := s.Invoice(a.ID); inv.Index != 300 {
		t.Fatalf("address index after compaction %d, want 300", inv.Index)
	}
	s.Close()
}

func fileSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// A payment credited provisionally, then replaced while the seller was not running: the next run
// revokes the credit. Another, confirmed while the seller was down, settles.
func TestProvisionalCreditsJudgedAfterRestart(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{})
	f := newFixture(t, node, t.TempDir(), nil)
	_, addrM := f.invoice("mallory", 10)
	_, addrH := f.invoice("honest", 10)
	coin := node.NextCoin()
	pay := btcdtest.BuildTx(t, coin, 1000, btcdtest.Output{Address: addrM, Sats: 1000})
	if _, err := node.Send(pay); err != nil {
		t.Fatal(err)
	}
	node.Pay(addrH, 1000)
	f.waitAccess("mallory", 10*time.Minute, false)
	f.waitAccess("honest", 10*time.Minute, false)
	f.stop()
	f.stop = nil

	repl := btcdtest.BuildTx(t, coin, 5000, btcdtest.Output{Address: btcdtest.MinerAddress(), Sats: 10_000})
	if _, err := node.Send(repl); err != nil {
		t.Fatal(err)
	}
	node.Generate(1)
	f.start()
	f.waitAccess("mallory", 0, true)
	if cs := f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "mallory"}); len(cs) != 1 || cs[0].State != ledger.Revoked {
		t.Fatalf("mallory's credit %+v", cs)
	}
	f.waitAccess("honest", 10*time.Minute, true)
}

// A settled payment whose block is reorganised away, its coin double-spent, while the seller
// is not running: the next run revokes it. A settled payment in a deeper block is untouched.
func TestReorgWhileDownRevokes(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{Listen: true})
	f := newFixture(t, node, t.TempDir(), nil)
	_, addrOld := f.invoice("early", 10)
	node.Pay(addrOld, 1000)
	node.Generate(1)
	f.waitAccess("early", 10*time.Minute, true)
	node.Generate(10) // "early" is now deep

	other := btcdtest.Start(t, btcdtest.Options{Listen: true})
	other.Connect(node)
	other.WaitHeight(node.Height())
	other.Stop()

	_, addr := f.invoice("eve", 10)
	coin := node.NextCoin()
	pay := btcdtest.BuildTx(t, coin, 1000, btcdtest.Output{Address: addr, Sats: 1000})
	if _, err := node.Send(pay); err != nil {
		t.Fatal(err)
	}
	node.Generate(1)
	f.waitAccess("eve", 10*time.Minute, true)
	time.Sleep(50 * time.Millisecond)
	f.stop()
	f.stop = nil

	other.Restart()
	theft := btcdtest.BuildTx(t, coin, 3000, btcdtest.Output{Address: btcdtest.MinerAddress(), Sats: 10_000})
	if _, err := other.Send(theft); err != nil {
		t.Fatal(err)
	}
	other.Generate(3)
	node.Connect(other)
	node.WaitHeight(other.Height())

	f.start()
	f.waitAccess("eve", 0, true)
	cs := f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "eve"})
	if len(cs) != 1 || cs[0].State != ledger.Revoked ||
		!strings.Contains(cs[0].Note, "while the app was not running") && !strings.Contains(cs[0].Note, "double-spent") {
		t.Fatalf("eve's credit %+v", cs)
	}
	time.Sleep(100 * time.Millisecond)
	if cs := f.ledger.Credits(ledger.Key{Stream: streamID, Viewer: "early"}); len(cs) != 1 || cs[0].State != ledger.Settled {
		t.Fatalf("early credit %+v", cs)
	}
}
