//go:build linux

package invoice

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/lndtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// lnSeller is a seller with both methods on real nodes.
type lnSeller struct {
	t             *testing.T
	dir           string
	node          *btcdtest.Node
	lnd           *lndtest.Node
	logs          *xtest.SyncBuffer
	ledger        *ledger.Ledger
	seller        *Seller
	client        *lightning.Client
	stop          func()
	onSettledHook func(lightning.Settled)
}

// hooked wraps the LND client to observe settles as the seller handles them.
type hooked struct {
	*lightning.Client
	after func(lightning.Settled)
}

func (h hooked) Run(ctx context.Context, idx uint64, on func(lightning.Settled) error) error {
	return h.RunNotify(ctx, idx, on, nil)
}

func (h hooked) RunNotify(ctx context.Context, idx uint64, on func(lightning.Settled) error, onConnected func(context.Context)) error {
	return h.Client.RunNotify(ctx, idx, func(s lightning.Settled) error {
		err := on(s)
		if err == nil && h.after != nil {
			h.after(s)
		}
		return err
	}, onConnected)
}

func (f *lnSeller) start() {
	t := f.t
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := lightning.Config{Host: f.lnd.REST, Network: "simnet", Macaroon: f.lnd.Macaroon("invoice"),
		TLSCert: f.lnd.TLSCert(), MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Log: log}
	log.Info("connecting to LND", "lnd", cfg) // must not leak the macaroon
	c, err := lightning.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(f.dir, "ledger"), log)
	if err != nil {
		t.Fatal(err)
	}
	var s *Seller
	w, err := onchain.NewWebsocket(onchain.WatchConfig{
		Node: onchain.NodeConfig{Host: f.node.RPCAddr, User: f.node.User(), Pass: f.node.Pass(), CACert: f.node.Cert()},
		Net:  btcdtest.Net, OnEvent: func(e onchain.Event) { s.OnChainEvent(e) }, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err = New(Config{
		PriceOf: func(string) (price.Price, bool) { return perMinute, true },
		Ledger:  l, StorePath: filepath.Join(f.dir, "invoices"),
		OnChain:   &OnChain{Key: accountKey(t), Watcher: w, ProvisionalCapSats: 1000},
		Lightning: hooked{c, f.onSettledHook}, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	f.ledger, f.seller, f.client = l, s, c
	f.stop = func() { cancel(); <-done; s.Close(); l.Close(); f.stop = nil }
}

func (f *lnSeller) waitAccess(viewer string, want time.Duration) {
	f.t.Helper()
	k := ledger.Key{Stream: streamID, Viewer: viewer}
	deadline := time.Now().Add(30 * time.Second)
	for f.ledger.Remaining(k) != want {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s has %v, want %v; credits %+v\n%s", viewer, f.ledger.Remaining(k), want, f.ledger.Credits(k), f.lnd.LogTail()+"\nseller:\n"+f.logs.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *lnSeller) invoice(viewer string, m invoicemsg.Method, minutes uint32) invoicemsg.Answer {
	f.t.Helper()
	req := invoicemsg.Request{Stream: streamID, Method: m, Minutes: minutes}
	a := f.seller.Handle(context.Background(), viewer, req)
	if err := Check(Expect{Request: req, Viewer: viewer, Price: perMinute, Network: "simnet", Now: time.Now()}, a); err != nil {
		f.t.Fatalf("viewer check: %v (%+v)", err, a)
	}
	return a
}

// lightningPair starts btcd, two LND nodes and a 1M-sat channel from alice (viewers' wallet) to
// bob (the seller).
func lightningPair(t testing.TB) (*btcdtest.Node, *lndtest.Node, *lndtest.Node) {
	node := btcdtest.Setup(t, btcdtest.Options{TLS: true})
	alice := lndtest.Start(t, "alice", node)
	bob := lndtest.Start(t, "bob", node)
	alice.WaitReady()
	bob.WaitReady()
	alice.Fund(100_000_000)
	alice.OpenChannel(bob, 1_000_000)
	return node, alice, bob
}

func TestLightningOnRealLND(t *testing.T) {
	node, alice, bob := lightningPair(t)

	// Only an invoice macaroon is accepted.
	for kind, want := range map[string]string{"admin": "admin macaroon", "readonly": "read more of your node"} {
		_, err := lightning.New(lightning.Config{Host: bob.REST, Network: "simnet", Macaroon: bob.Macaroon(kind), TLSCert: bob.TLSCert()})
		if !errors.Is(err, lightning.ErrMacaroon) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s macaroon: %v", kind, err)
		}
	}
	// The invoice macaroon is accepted; an LND on another network than the wallet's is caught at
	// the first invoice.
	wrongNet, err := lightning.New(lightning.Config{Host: bob.REST, Network: "mainnet", Macaroon: bob.Macaroon("invoice"), TLSCert: bob.TLSCert()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := wrongNet.AddInvoice(context.Background(), 1000, "x", time.Minute); err == nil || !strings.Contains(err.Error(), "simnet") {
		t.Errorf("network mismatch not caught: %v", err)
	}
	wrongNet.Close()

	f := &lnSeller{t: t, dir: t.TempDir(), node: node, lnd: bob, logs: &xtest.SyncBuffer{}}
	f.start()
	t.Cleanup(func() {
		if f.stop != nil {
			f.stop()
		}
	})

	// A Lightning invoice, paid.
	a := f.invoice("viewer1", invoicemsg.Lightning, 10)
	if !strings.HasPrefix(a.URI, "lightning:lnsb") {
		t.Fatalf("URI %q", a.URI)
	}
	if err := alice.Pay(a.Bolt11); err != nil {
		t.Fatal(err)
	}
	f.waitAccess("viewer1", 10*time.Minute)

	// A unified invoice: BIP21 with lightning=, paid over Lightning.
	u := f.invoice("viewer2", invoicemsg.Any, 10)
	if !strings.Contains(u.URI, "&lightning=lnsb") || u.Address == "" {
		t.Fatalf("unified URI %q", u.URI)
	}
	if err := alice.Pay(u.Bolt11); err != nil {
		t.Fatal(err)
	}
	f.waitAccess("viewer2", 10*time.Minute)

	// LND restarts in the middle of the subscription: the seller reconnects and keeps crediting.
	bob.Restart()
	b := f.invoice("viewer1", invoicemsg.Lightning, 3)
	if err := alice.Pay(b.Bolt11); err != nil {
		t.Fatal(err)
	}
	f.waitAccess("viewer1", 13*time.Minute)

	// The seller is down while an invoice is paid: after restart it resumes from the stored
	// settle index, credits it once, and never again.
	c := f.invoice("viewer3", invoicemsg.Lightning, 7)
	f.stop()
	if err := alice.Pay(c.Bolt11); err != nil {
		t.Fatal(err)
	}
	f.start()
	f.waitAccess("viewer3", 7*time.Minute)
	f.stop()
	f.start()
	time.Sleep(300 * time.Millisecond) // give a wrong replay the chance to happen
	for v, want := range map[string]time.Duration{"viewer1": 13 * time.Minute, "viewer2": 10 * time.Minute, "viewer3": 7 * time.Minute} {
		if got := f.ledger.Remaining(ledger.Key{Stream: streamID, Viewer: v}); got != want {
			t.Errorf("%s: %v after restarts, want %v", v, got, want)
		}
	}
	if idx, ok := f.ledger.Meta("lnd.settle_index.simnet." + payee(c.Bolt11)); !ok || idx != "4" {
		t.Errorf("settle index %q", idx)
	}

	// A fresh seller (no settle index stored yet) whose invoice is paid while it is down: the
	// subscription has nothing to replay from, so the open invoice is looked up on start.
	g := &lnSeller{t: t, dir: t.TempDir(), node: node, lnd: bob, logs: &xtest.SyncBuffer{}}
	g.start()
	d := g.invoice("viewer4", invoicemsg.Lightning, 4)
	g.stop()
	if err := alice.Pay(d.Bolt11); err != nil {
		t.Fatal(err)
	}
	g.start()
	g.waitAccess("viewer4", 4*time.Minute)
	bobKey := payee(d.Bolt11)
	if err := g.ledger.SetMeta("lnd.settle_index.simnet."+bobKey, "1000"); err != nil {
		t.Fatal(err)
	}
	g.stop()

	// The seller moves to another LND node (alice; bob pays): its settle indexes start again at
	// 1, far below the one stored for bob. The first invoice shows the new node's key, the
	// subscription starts over from the new node's own index, and the payment is credited.
	g.lnd = alice
	g.start()
	e := g.invoice("viewer5", invoicemsg.Lightning, 1)
	if k := payee(e.Bolt11); k == bobKey || k == "" {
		t.Fatalf("alice's invoice payee %q", k)
	}
	time.Sleep(300 * time.Millisecond) // the subscription restarts
	// bob needs more than the channel reserve on his side to pay.
	_, topUp, err := f.client.AddInvoice(context.Background(), 50_000_000, "liquidity for bob", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Pay(topUp); err != nil {
		t.Fatal(err)
	}
	if err := bob.Pay(e.Bolt11); err != nil {
		t.Fatal(err)
	}
	g.waitAccess("viewer5", time.Minute)
	waitUntil(t, "alice's settle index stored", func() bool {
		v, ok := g.ledger.Meta("lnd.settle_index.simnet." + payee(e.Bolt11))
		return ok && v != "0"
	})
	if v, _ := g.ledger.Meta("lnd.settle_index.simnet." + bobKey); v != "1000" {
		t.Errorf("bob's stored index changed to %q", v)
	}
	g.stop()

	// A paid invoice cannot be paid twice; an expired one cannot be paid at all.
	if err := alice.Pay(a.Bolt11); err == nil {
		t.Error("invoice paid twice")
	}
	hash, short, err := f.client.AddInvoice(context.Background(), 5000, Memo(streamID, "late"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := alice.Pay(short); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired invoice: %v (hash %s)", err, hash)
	}

	// The macaroon and certificate never reach the logs or the wallet's files.
	f.stop()
	mac := bob.Macaroon("invoice")
	secrets := [][]byte{mac, []byte(hex.EncodeToString(mac)), certBody(bob.TLSCert())}
	logs := f.logs.String()
	if !strings.Contains(logs, "redacted") {
		t.Errorf("log lacks the redacted config line:\n%s", logs)
	}
	for _, s := range secrets {
		if bytes.Contains([]byte(logs), s) {
			t.Fatal("a secret was logged")
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v %s", f.client, lightning.Config{Macaroon: mac}, lightning.Config{Macaroon: mac}, lightning.Config{Macaroon: mac}), string(s)) {
			t.Fatal("a secret is printable")
		}
	}
	filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds a secret", p)
			}
		}
		return nil
	})
}

func certBody(pem []byte) []byte {
	lines := strings.Split(string(pem), "\n")
	if len(lines) > 3 {
		return []byte(lines[2])
	}
	return pem
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
