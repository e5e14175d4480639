//go:build linux

package invoice

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

var quiet = slog.New(slog.DiscardHandler)

func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), name+"_p50_ms")
	b.ReportMetric(q(0.99), name+"_p99_ms")
}

// BenchmarkMempoolToCredit: from sendrawtransaction to the provisional credit being in the
// ledger, for each watcher backend (the poller polls every 100 ms).
func BenchmarkMempoolToCredit(b *testing.B) {
	for _, backend := range []string{"websocket", "poller"} {
		b.Run(backend, func(b *testing.B) {
			node := btcdtest.Setup(b, btcdtest.Options{})
			dir := b.TempDir()
			l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			type seen struct {
				hash chainhash.Hash
				at   time.Time
			}
			credited := make(chan seen, 16)
			var s *Seller
			cfg := onchain.WatchConfig{Node: onchain.NodeConfig{Host: node.RPCAddr, User: node.User(), Pass: node.Pass()},
				Net: btcdtest.Net, Log: quiet, OnEvent: func(e onchain.Event) {
					s.OnChainEvent(e)
					if e.Kind == onchain.Seen {
						credited <- seen{e.OutPoint.Hash, time.Now()}
					}
				}}
			var w onchain.Watcher
			if backend == "websocket" {
				w, err = onchain.NewWebsocket(cfg)
			} else {
				cfg.Interval = 100 * time.Millisecond
				w, err = onchain.NewPoller(cfg)
			}
			if err != nil {
				b.Fatal(err)
			}
			s, err = New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
				StorePath: filepath.Join(dir, "inv"), RatePerSec: 1e6, Burst: 1 << 20, Log: quiet,
				OnChain: &OnChain{Key: accountKey(b), Watcher: w, ProvisionalCapSats: 1 << 40}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx) }()
			defer func() { cancel(); <-done }()
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if i%150 == 149 {
					node.Generate(150)
				}
				viewer := fmt.Sprint("viewer", i)
				a := s.Handle(ctx, viewer, invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Sats: 1000})
				addr, err := onchain.ParseAddress(a.Address, btcdtest.Net)
				if err != nil {
					b.Fatalf("%v %+v", err, a)
				}
				tx := btcdtest.BuildTx(b, node.NextCoin(), 1000, btcdtest.Output{Address: addr, Sats: 1000})
				time.Sleep(20 * time.Millisecond) // let the filter update settle
				b.StartTimer()
				t0 := time.Now()
				if _, err := node.Send(tx); err != nil {
					b.Fatal(err)
				}
				sent := time.Since(t0)
				for c := range credited {
					if c.hash == tx.TxHash() {
						lat = append(lat, c.at.Sub(t0))
						break
					}
				}
				if sent > time.Second {
					b.Logf("sendrawtransaction took %v", sent)
				}
				if l.Remaining(ledger.Key{Stream: streamID, Viewer: viewer}) != 10*time.Minute {
					b.Fatal("not credited")
				}
			}
			b.StopTimer()
			report(b, "accept_to_credit", lat)
		})
	}
}

// BenchmarkLightningSettleToCredit: from LND's subscription reporting a settled invoice to the
// ledger holding the credit, and from the payer starting the payment (SendPaymentSync on the
// viewer's LND) to the credit.
func BenchmarkLightningSettleToCredit(b *testing.B) {
	_, alice, bob := lightningPair(b)
	dir := b.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := lightning.New(lightning.Config{Host: bob.REST, Network: "simnet", Macaroon: bob.Macaroon("invoice"), TLSCert: bob.TLSCert(), Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	type done struct {
		hash string
		at   time.Time
		lat  time.Duration
	}
	settled := make(chan done, 16)
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "inv"), RatePerSec: 1e6, Burst: 1 << 20, PerViewer: 1 << 20, Log: quiet,
		Lightning: hooked{c, func(s lightning.Settled) { settled <- done{s.Hash, time.Now(), time.Since(s.SeenAt)} }}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); s.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	var internal, e2e []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := s.Handle(ctx, "viewer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.Lightning, Sats: 100})
		if a.Code != invoicemsg.OK {
			b.Fatal(a.Error)
		}
		inv, _ := lightning.DecodeBolt11(a.Bolt11)
		paying := time.Now()
		if err := alice.Pay(a.Bolt11); err != nil {
			b.Fatal(err)
		}
		for d := range settled {
			if d.hash == inv.PaymentHashHex() {
				internal = append(internal, d.lat)
				e2e = append(e2e, d.at.Sub(paying))
				break
			}
		}
	}
	b.StopTimer()
	report(b, "settled_to_credit", internal)
	report(b, "pay_to_credit", e2e)
}
