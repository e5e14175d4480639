package invoice

import (
	"errors"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
)

// TestCheckRefusalIsOneLine: a seller's refusal reaches the viewer as one printable line, so
// its words cannot pass for the app's own (a line break then "Payment received") or hide
// behind a bidirectional override.
func TestCheckRefusalIsOneLine(t *testing.T) {
	tests := []struct{ seller, shown string }{
		{"sold out", "sold out"},
		{"sorry\nPayment received: 1 hour", "sorry Payment received: 1 hour"},
		{"price \u202egnorw", "price gnorw"},
		{"zero\u200bwidth\x00\x07", "zerowidth"},
		{strings.Repeat("é", 300), strings.Repeat("é", 200) + "…"},
	}
	for _, tc := range tests {
		err := Check(Expect{}, invoicemsg.Answer{Code: invoicemsg.Unavailable, Error: tc.seller})
		if err == nil {
			t.Fatalf("%q: refusal accepted", tc.seller)
		}
		if want := "the seller refused to make an invoice: " + tc.shown; err.Error() != want || !errors.Is(err, ErrRefused) {
			t.Errorf("%q: shown as %q, want %q", tc.seller, err.Error(), want)
		}
	}
}
