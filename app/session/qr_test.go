package session

import (
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/paymentqr"
)

// An invoice's QR is its URI; a unified BIP21 URI too long for a QR code (a long Lightning
// invoice beside the address) gives way to the Lightning invoice alone, which still scans.
func TestInvoiceQRFallsBackToLightning(t *testing.T) {
	addr := "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	for _, tc := range []struct {
		name     string
		bolt11   int // the Lightning invoice's length
		label    string
		fallback bool
	}{
		{"short", 300, "", false},
		{"the longest invoice, no label", invoicemsg.MaxBolt11Len, "", false},
		{"short, a label", 300, strings.Repeat("Late night show ", 20), false},
		{"the longest invoice and a label", invoicemsg.MaxBolt11Len, strings.Repeat("Late night show ", 20), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bolt11 := "lnbc12u1pjdazaar" + strings.Repeat("q", tc.bolt11-len("lnbc12u1pjdazaar"))
			uri := onchain.PaymentURI{Address: addr, Sats: 1200, Lightning: bolt11, Label: tc.label}.String()
			if over := len(paymentqr.QRText(uri)) > paymentqr.MaxURILen; over != tc.fallback {
				t.Fatalf("the case is wrong: a URI of %d characters is over the limit: %v", len(uri), over)
			}
			png, err := invoiceQR(invoicemsg.Answer{Method: invoicemsg.Any, Address: addr, Bolt11: bolt11, URI: uri})
			if err != nil {
				t.Fatal(err)
			}
			got, want := xtest.DecodeQR(t, png), paymentqr.QRText(uri)
			if tc.fallback {
				want = strings.ToUpper("lightning:" + bolt11)
			}
			if got != want {
				t.Fatalf("the QR reads %.60s… (%d), want %.60s… (%d)", got, len(got), want, len(want))
			}
		})
	}
}
