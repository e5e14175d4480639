package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/wallet/invoice"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/nodetest"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

type refuseAll struct{}

func (refuseAll) Check(context.Context, peer.ID) (replicate.Allowance, error) {
	return replicate.Allowance{Reason: "Not paid yet"}, nil
}
func (refuseAll) Delivered(peer.ID, uint64, int) {}

// TestViewerRefusesMismatchedInvoices: a seller whose invoice does not match what the viewer
// asked for (amount, network, stream, expiry, URI) is caught before anything is shown.
func TestViewerRefusesMismatchedInvoices(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := make([]byte, 32)
	rand.Read(seed)
	kp, _ := feed.KeyPairFromSeed(seed)
	f, err := feed.Create(filepath.Join(t.TempDir(), "feed"), feed.Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	node, err := startNode(ctx, secrets.NewMemory(), loopback, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	key := f.Key()
	stream := fmt.Sprintf("%x", key[:])
	p, _ := price.Parse("600 sats per minute")
	ak, err := onchain.ParseAccountKey(nodetest.AccountKey(t), nodetest.Net)
	if err != nil {
		t.Fatal(err)
	}
	simnetAddr, _ := ak.Address(0)
	good := func() invoicemsg.Answer {
		a := invoicemsg.Answer{ID: "inv1", Stream: stream, Method: invoicemsg.OnChain, Network: "simnet", Sats: 1200, Millis: 120_000,
			ExpiresAt: time.Now().Add(15 * time.Minute).Unix(), Address: simnetAddr.String()}
		a.URI = onchain.PaymentURI{Address: a.Address, Sats: a.Sats}.String()
		return a
	}
	mainnet := func() string {
		// The same key's address, written for mainnet.
		a, err := btcutil.NewAddressWitnessPubKeyHash(simnetAddr.ScriptAddress(), &chaincfg.MainNetParams)
		if err != nil {
			t.Fatal(err)
		}
		return a.EncodeAddress()
	}()
	cases := []struct {
		name  string
		edit  func(a *invoicemsg.Answer)
		words string
	}{
		{"honest", func(*invoicemsg.Answer) {}, ""},
		{"more sats", func(a *invoicemsg.Answer) {
			a.Sats = 12_000
			a.URI = onchain.PaymentURI{Address: a.Address, Sats: a.Sats}.String()
		}, "sats instead of"},
		{"another stream", func(a *invoicemsg.Answer) { a.Stream = strings.Repeat("0", 64) }, "another stream"},
		{"mainnet", func(a *invoicemsg.Answer) {
			a.Network, a.Address = "mainnet", mainnet
			a.URI = onchain.PaymentURI{Address: a.Address, Sats: a.Sats}.String()
		}, "mainnet"},
		{"expired", func(a *invoicemsg.Answer) { a.ExpiresAt = time.Now().Add(-time.Minute).Unix() }, "expired"},
		{"URI to someone else", func(a *invoicemsg.Answer) {
			other, _ := ak.Address(7)
			a.URI = onchain.PaymentURI{Address: other.String(), Sats: a.Sats}.String()
		}, "URI differs"},
	}
	var current func(a *invoicemsg.Answer)
	var s *replicate.Seller
	s, err = replicate.NewSeller(replicate.SellerConfig{Host: node.Host(), Feed: f, Gate: refuseAll{}, Logger: testLog(t),
		OnApp: func(from peer.ID, msg []byte) {
			a := good()
			current(&a)
			b, err := a.MarshalBinary()
			if err != nil {
				t.Errorf("encoding: %v", err)
				return
			}
			go s.Send(from, b)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := card.Card{Name: "hostile", Feed: key, Seller: node.ID().String(), Addrs: addrStrings(node.AddrInfo().Addrs),
		Price: p, Methods: []card.Method{card.OnChain}, Network: "simnet"}
	vd, _ := OpenDataDir(t.TempDir())
	v, err := NewViewer(ViewerConfig{Data: vd, Secrets: secrets.NewMemory(), Card: c, Network: loopback, Logger: testLog(t), Audio: silentAudio, NoPlayback: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	// Asks no seller could answer are said in words before anything is sent.
	for r, words := range map[BuyRequest]string{
		{Minutes: MaxBuyMinutes + 1}:   "at most a week (10080 minutes) can be bought at once",
		{Sats: invoicemsg.MaxSats + 1}: "that is more than all the bitcoin there is",
		{Method: invoicemsg.OnChain}:   "say how many minutes (or sats) to buy",
	} {
		if _, err := v.Buy(ctx, r); err == nil || err.Error() != words {
			t.Fatalf("Buy(%+v): %v, want %q", r, err, words)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			current = tc.edit
			inv, err := v.Buy(ctx, BuyRequest{Minutes: 2, Method: invoicemsg.OnChain})
			if tc.words == "" {
				if err != nil || inv.Sats != 1200 {
					t.Fatalf("the honest invoice was refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", inv)
			}
			if !strings.Contains(err.Error(), tc.words) || !(errors.Is(err, invoice.ErrMismatch) || strings.Contains(err.Error(), "expired")) {
				t.Fatalf("error %q does not say %q", err, tc.words)
			}
		})
	}
}
