package session

import (
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
)

// An invoice's QR is its URI; a unified BIP21 URI too long for a QR code (a long Lightning
// invoice beside the address) gives way to the Lightning invoice alone, which still scans.
func TestInvoiceQRFallsBackToLightning(t *testing.T) {
	addr := "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	for _, n := range []int{300, invoicemsg.MaxBolt11Len} {
		bolt11 := "lnbc12u1pjdazaar" + strings.Repeat("q", n-len("lnbc12u1pjdazaar"))
		uri := onchain.PaymentURI{Address: addr, Sats: 1200, Lightning: bolt11}.String()
		png, err := invoiceQR(invoicemsg.Answer{Method: invoicemsg.Any, Address: addr, Bolt11: bolt11, URI: uri})
		if err != nil {
			t.Fatalf("invoice of %d characters: %v", n, err)
		}
		got, want := xtest.DecodeQR(t, png), uri
		if len(uri) > 2331 {
			want = strings.ToUpper("lightning:" + bolt11)
		}
		if got != want {
			t.Fatalf("invoice of %d characters: the QR reads %.60s… (%d), want %.60s… (%d)", n, got, len(got), want, len(want))
		}
	}
}
