package lightning_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/lndtest"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
)

// TestCheckRealLND asks a real LND what a seller's "Test connection" and a paid stream's start
// ask it. A fresh node, which has made no invoice yet, answers the lookup of an invoice nobody
// made with "there are no existing invoices", not "unable to locate invoice": both prove the
// macaroon was taken (the check refused every new seller's node before). A macaroon LND cannot
// verify is refused in words that say so, and a port where nothing listens is unreachable.
func TestCheckRealLND(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{TLS: true})
	lnd := lndtest.Start(t, "seller", node)
	lnd.WaitReady()
	client := func(host string, mac []byte) *lightning.Client {
		t.Helper()
		c, err := lightning.New(lightning.Config{Host: host, Network: "simnet", Macaroon: mac, TLSCert: lnd.TLSCert()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := client(lnd.REST, lnd.Macaroon("invoice"))
	if err := good.Check(ctx); err != nil {
		t.Fatalf("a fresh LND with its invoice macaroon: %v", err)
	}
	if _, _, err := good.AddInvoice(ctx, 1000, "check", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := good.Check(ctx); err != nil {
		t.Fatalf("an LND that has made an invoice, with its invoice macaroon: %v", err)
	}
	tampered := lnd.Macaroon("invoice")
	tampered[len(tampered)-1] ^= 1 // the signature
	err := client(lnd.REST, tampered).Check(ctx)
	if !errors.Is(err, lightning.ErrRefused) {
		t.Fatalf("a macaroon LND cannot verify: %v, want ErrRefused", err)
	}
	t.Logf("a tampered macaroon: %v", err)
	if err := client("127.0.0.1:"+btcdtest.FreePort(t), lnd.Macaroon("invoice")).Check(ctx); !errors.Is(err, lightning.ErrUnreachable) {
		t.Fatalf("nothing listening: %v, want ErrUnreachable", err)
	}
}
