//go:build linux

package onchain

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
)

// sink collects watcher events.
type sink struct {
	mu  sync.Mutex
	evs []Event
	ch  chan struct{}
}

func newSink() *sink { return &sink{ch: make(chan struct{}, 1)} }

func (s *sink) on(e Event) {
	s.mu.Lock()
	s.evs = append(s.evs, e)
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// wait returns the first event for txid matching kind (and confs when kind is Confirmed).
func (s *sink) wait(t testing.TB, txid chainhash.Hash, kind EventKind, confs int32) Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		for _, e := range s.evs {
			if e.OutPoint.Hash == txid && e.Kind == kind && (kind != Confirmed || e.Confirmations == confs) {
				s.mu.Unlock()
				return e
			}
		}
		n := len(s.evs)
		s.mu.Unlock()
		select {
		case <-s.ch:
		case <-deadline:
			t.Fatalf("no %v (confs %d) event for %s; %d events: %+v", kind, confs, txid, n, s.events())
		}
	}
}

func (s *sink) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.evs...)
}

type backend struct {
	name string
	new  func(WatchConfig) (Watcher, error)
}

var backends = []backend{
	{"websocket", func(c WatchConfig) (Watcher, error) { c.Interval = 10 * time.Second; return NewWebsocket(c) }},
	{"poller", func(c WatchConfig) (Watcher, error) { c.Interval = 50 * time.Millisecond; return NewPoller(c) }},
}

func nodeConfig(n *btcdtest.Node) NodeConfig {
	return NodeConfig{Host: n.RPCAddr, User: n.User(), Pass: n.Pass(), CACert: n.Cert()}
}

func testKey(t testing.TB) *AccountKey {
	k, err := ParseAccountKey(testAccount(t, btcdtest.Net, []byte{0x04, 0x5f, 0x1c, 0xf6}), btcdtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startWatcher runs a watcher until the test ends.
func startWatcher(t testing.TB, b backend, n *btcdtest.Node, start int32, addrs ...btcutil.Address) (Watcher, *sink, func()) {
	t.Helper()
	s := newSink()
	w, err := b.new(WatchConfig{Node: nodeConfig(n), Net: btcdtest.Net, OnEvent: s.on, StartHeight: start})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Watch(addrs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	// Wait for the first sync so payments made next are new to it.
	deadline := time.Now().Add(10 * time.Second)
	for w.Height() < n.Height() {
		if time.Now().After(deadline) {
			t.Fatal("watcher did not sync")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return w, s, stop
}

func addr(t testing.TB, k *AccountKey, i uint32) btcutil.Address {
	a, err := k.Address(i)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWatcherSeenConfirmedAndWrongNetwork(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			n := btcdtest.Setup(t, btcdtest.Options{})
			k := testKey(t)
			a0, a1 := addr(t, k, 0), addr(t, k, 1)
			w, s, _ := startWatcher(t, b, n, 0, a0)
			tx := n.Pay(a0, 150_000)
			e := s.wait(t, tx.TxHash(), Seen, 0)
			if e.Sats != 150_000 || e.Address != a0.EncodeAddress() || !e.RBF {
				t.Fatalf("seen event %+v", e)
			}
			n.Generate(1)
			s.wait(t, tx.TxHash(), Confirmed, 1)
			n.Generate(1)
			s.wait(t, tx.TxHash(), Confirmed, 2)
			// An address added later: its payment is found too.
			if err := w.Watch(a1); err != nil {
				t.Fatal(err)
			}
			tx2 := n.Pay(a1, 2000)
			s.wait(t, tx2.TxHash(), Seen, 0)
			// Payments to unwatched addresses are not reported.
			other := addr(t, k, 99)
			tx3 := n.Pay(other, 5000)
			n.Generate(1)
			s.wait(t, tx2.TxHash(), Confirmed, 1)
			for _, e := range s.events() {
				if e.OutPoint.Hash == tx3.TxHash() {
					t.Fatalf("unwatched payment reported: %+v", e)
				}
			}
			main, _ := ParseAddress(bip84Addr0, mustNet(t, "mainnet"))
			if err := w.Watch(main); err == nil {
				t.Fatal("mainnet address watched on simnet")
			}
		})
	}
}

func TestWatcherRBFReplacement(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			n := btcdtest.Setup(t, btcdtest.Options{})
			k := testKey(t)
			a0 := addr(t, k, 0)
			_, s, _ := startWatcher(t, b, n, 0, a0)
			coin := n.NextCoin()
			orig := btcdtest.BuildTx(t, coin, 1000, btcdtest.Output{Address: a0, Sats: 50_000})
			if _, err := n.Send(orig); err != nil {
				t.Fatal(err)
			}
			s.wait(t, orig.TxHash(), Seen, 0)
			// The payer double-spends the same coin back to themselves with a higher fee.
			repl := btcdtest.BuildTx(t, coin, 20_000, btcdtest.Output{Address: btcdtest.MinerAddress(), Sats: 10_000})
			if _, err := n.Send(repl); err != nil {
				t.Fatalf("replacement refused: %v", err)
			}
			// No block: the poller's next poll sees the payment gone from the mempool; the
			// websocket is woken by the replacement itself (the payment's inputs are in btcd's
			// filter). With a block mined at once, a look at the mempool from before the
			// replacement could meet the chain from after it and say "double-spent" instead.
			e := s.wait(t, orig.TxHash(), Gone, 0)
			if !strings.Contains(e.Reason, "replaced") {
				t.Fatalf("reason %q", e.Reason)
			}
		})
	}
}

func TestWatcherReorgRemovesPayment(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a := btcdtest.Setup(t, btcdtest.Options{Listen: true})
			other := btcdtest.Start(t, btcdtest.Options{Listen: true})
			other.Connect(a)
			other.WaitHeight(a.Height())
			other.Stop() // now the two chains grow apart

			k := testKey(t)
			a0 := addr(t, k, 0)
			_, s, _ := startWatcher(t, b, a, 0, a0)
			coin := a.NextCoin()
			pay := btcdtest.BuildTx(t, coin, 1000, btcdtest.Output{Address: a0, Sats: 70_000})
			if _, err := a.Send(pay); err != nil {
				t.Fatal(err)
			}
			a.Generate(1)
			s.wait(t, pay.TxHash(), Confirmed, 1)

			// On the other chain the same coin went elsewhere, and that chain is longer.
			other.Restart()
			theft := btcdtest.BuildTx(t, coin, 2000, btcdtest.Output{Address: btcdtest.MinerAddress(), Sats: 10_000})
			if _, err := other.Send(theft); err != nil {
				t.Fatal(err)
			}
			other.Generate(3)
			a.Connect(other)
			a.WaitHeight(other.Height())
			e := s.wait(t, pay.TxHash(), Gone, 0)
			if !strings.Contains(e.Reason, "reorganisation") && !strings.Contains(e.Reason, "double-spent") {
				t.Fatalf("reason %q", e.Reason)
			}
		})
	}
}

func TestWatcherReorgPaymentReturnsToMempool(t *testing.T) {
	b := backends[0]
	a := btcdtest.Setup(t, btcdtest.Options{Listen: true})
	other := btcdtest.Start(t, btcdtest.Options{Listen: true})
	other.Connect(a)
	other.WaitHeight(a.Height())
	other.Stop()
	k := testKey(t)
	a0 := addr(t, k, 0)
	_, s, _ := startWatcher(t, b, a, 0, a0)
	pay := a.Pay(a0, 80_000)
	a.Generate(1)
	s.wait(t, pay.TxHash(), Confirmed, 1)
	other.Restart()
	other.Generate(3)
	a.Connect(other)
	a.WaitHeight(other.Height())
	// The payment's block is gone but the payment is still valid: back to unconfirmed...
	var back Event
	deadline := time.Now().Add(20 * time.Second)
	for back.Kind == 0 {
		for _, e := range s.events() {
			if e.OutPoint.Hash == pay.TxHash() && e.Kind == Seen && strings.Contains(e.Reason, "reorganisation") {
				back = e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no return to mempool: %+v", s.events())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ...and confirmed again by the next block.
	n := len(s.events())
	a.Generate(1)
	deadline = time.Now().Add(20 * time.Second)
	for {
		evs := s.events()
		if len(evs) > n && evs[len(evs)-1].Kind == Confirmed && evs[len(evs)-1].OutPoint.Hash == pay.TxHash() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not confirmed again: %+v", evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatcherSurvivesNodeRestart(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			n := btcdtest.Setup(t, btcdtest.Options{})
			k := testKey(t)
			a0, a1 := addr(t, k, 0), addr(t, k, 1)
			w, s, stop := startWatcher(t, b, n, 0, a0, a1)
			n.Restart()
			tx := n.Pay(a0, 10_000)
			s.wait(t, tx.TxHash(), Seen, 0)
			n.Generate(1)
			s.wait(t, tx.TxHash(), Confirmed, 1)
			// The app stops; meanwhile a payment confirms. The next run, started from the
			// height the last one reached, still finds it.
			h := w.Height()
			stop()
			tx2 := n.Pay(a1, 20_000)
			n.Generate(2)
			_, s2, _ := startWatcher(t, b, n, h+1, a0, a1)
			s2.wait(t, tx2.TxHash(), Confirmed, 2)
		})
	}
}

func mustNet(t testing.TB, name string) *chaincfg.Params {
	p, err := Network(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The poller authenticates with a Bitcoin Core style cookie file, and a wrong password is
// reported in plain words.
func TestPollerCookieAndBadPassword(t *testing.T) {
	n := btcdtest.Setup(t, btcdtest.Options{})
	cookie := filepath.Join(t.TempDir(), ".cookie")
	os.WriteFile(cookie, []byte(n.User()+":"+n.Pass()+"\n"), 0o600)
	c, err := newRPCClient(NodeConfig{Host: n.RPCAddr, CookieFile: cookie})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := c.blockCount(context.Background()); err != nil || h != n.Height() {
		t.Fatalf("cookie auth: %d %v", h, err)
	}
	bad, _ := newRPCClient(NodeConfig{Host: n.RPCAddr, User: n.User(), Pass: "wrong"})
	if _, err := bad.blockCount(context.Background()); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("wrong password: %v", err)
	}
	c.hc.CloseIdleConnections()
	bad.hc.CloseIdleConnections()
}

// TestWebsocketOneWakeUpPerBlock: btcd announces each block twice (filteredblockconnected and
// the deprecated blockconnected); the watcher handles only the first, so a block wakes it once.
// Before, every block woke it twice and cost a second sync.
func TestWebsocketOneWakeUpPerBlock(t *testing.T) {
	n := btcdtest.Setup(t, btcdtest.Options{})
	addr, _ := testKey(t).Address(0)
	w, _, _ := startWatcher(t, backends[0], n, 0, addr)
	ws := w.(*Websocket)
	// Let the connection's own wake-ups pass.
	for settled := time.Now(); time.Since(settled) < 300*time.Millisecond; {
		before := ws.pokes.Load()
		time.Sleep(50 * time.Millisecond)
		if ws.pokes.Load() != before {
			settled = time.Now()
		}
	}
	before := ws.pokes.Load()
	const blocks = 5
	for i := 0; i < blocks; i++ {
		n.Generate(1)
	}
	target := n.Height()
	deadline := time.Now().Add(20 * time.Second)
	for w.Height() < target || ws.pokes.Load()-before < blocks {
		if time.Now().After(deadline) {
			t.Fatalf("watcher at %d of %d, %d wake-ups", w.Height(), target, ws.pokes.Load()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A second announcement of a block would follow at once; give it time to show.
	time.Sleep(500 * time.Millisecond)
	if got := ws.pokes.Load() - before; got != blocks {
		t.Fatalf("%d blocks woke the watcher %d times", blocks, got)
	}
}
