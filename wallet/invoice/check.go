package invoice

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// ErrMismatch means a seller's invoice does not match what the viewer asked for.
var ErrMismatch = errors.New("invoice: the seller's invoice does not match the request")

// ErrRefused means the seller answered with a refusal instead of an invoice; the error's text
// goes on with the seller's words, made one printable line.
var ErrRefused = errors.New("the seller refused to make an invoice")

// Expect is what a viewer knows before an invoice arrives: its request, its own peer ID, the
// card's price and network.
type Expect struct {
	Request invoicemsg.Request
	Viewer  string // the viewer's own peer ID
	Price   price.Price
	Network string
	Now     time.Time
}

// Check verifies a seller's answer before the viewer is shown it: the amount is what was asked
// for (or what the card's price says the minutes cost), the Lightning invoice's memo names this
// stream and this viewer, every part is for the card's network, and nothing has expired. A
// refusal is returned as an error in the seller's words.
func Check(e Expect, a invoicemsg.Answer) error {
	if a.Code != invoicemsg.OK {
		return fmt.Errorf("%w: %s", ErrRefused, oneLine(a.Error))
	}
	if err := a.Validate(); err != nil {
		return err
	}
	want := e.Request.Sats
	if e.Request.Minutes > 0 {
		var err error
		if want, err = e.Price.CostSats(time.Duration(e.Request.Minutes) * time.Minute); err != nil {
			return err
		}
	}
	switch {
	case a.Stream != e.Request.Stream:
		return fmt.Errorf("%w: it is for another stream", ErrMismatch)
	case a.Method != e.Request.Method:
		return fmt.Errorf("%w: it is %s, not %s", ErrMismatch, a.Method, e.Request.Method)
	case a.Sats != want:
		return fmt.Errorf("%w: it asks for %d sats instead of %d", ErrMismatch, a.Sats, want)
	case a.Millis != e.Price.MillisFor(a.Sats*1000):
		// The time the viewer is shown, and keeps as bought, is the card's price's, not the
		// seller's word.
		return fmt.Errorf("%w: it says %d sats buy %v, but at the card's price they buy %v", ErrMismatch, a.Sats,
			time.Duration(min(a.Millis, 1<<40))*time.Millisecond, time.Duration(min(e.Price.MillisFor(a.Sats*1000), 1<<40))*time.Millisecond)
	case a.Network != e.Network:
		return fmt.Errorf("%w: it is for %s, but the stream is sold on %s", ErrMismatch, a.Network, e.Network)
	case e.Now.Unix() > a.ExpiresAt:
		return fmt.Errorf("invoice: expired at %s; ask for a new one", time.Unix(a.ExpiresAt, 0).Format(time.Kitchen))
	}
	if a.Address != "" {
		net, err := onchain.Network(e.Network)
		if err != nil {
			return err
		}
		if _, err := onchain.ParseAddress(a.Address, net); err != nil {
			return fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		u, err := onchain.ParseURI(a.URI, net)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		if u.Address != a.Address || u.Sats != a.Sats || u.Lightning != a.Bolt11 {
			return fmt.Errorf("%w: the payment URI differs from the invoice", ErrMismatch)
		}
		if len(u.Others) > 0 {
			// A wallet could pay through one of them, and nothing here checked it.
			return fmt.Errorf("%w: the payment URI carries more than the invoice (%s)", ErrMismatch, strings.Join(slices.Compact(u.Others), ", "))
		}
	} else if a.URI != "lightning:"+a.Bolt11 {
		return fmt.Errorf("%w: the payment URI differs from the invoice", ErrMismatch)
	}
	if a.Bolt11 != "" {
		inv, err := lightning.DecodeBolt11(a.Bolt11)
		if err != nil {
			return err
		}
		switch {
		case inv.Network != e.Network:
			return fmt.Errorf("%w: the Lightning invoice is for %s, not %s", ErrMismatch, inv.Network, e.Network)
		case inv.AmountMsat != a.Sats*1000:
			return fmt.Errorf("%w: the Lightning invoice asks for %d msat instead of %d", ErrMismatch, inv.AmountMsat, a.Sats*1000)
		case inv.Description != Memo(e.Request.Stream, e.Viewer):
			return fmt.Errorf("%w: the Lightning invoice is not made out to this viewer and stream (memo %q)", ErrMismatch, inv.Description)
		case inv.Expired(e.Now):
			return errors.New("invoice: the Lightning invoice has expired; ask for a new one")
		}
	}
	return nil
}

// oneLine is a seller's free text as one printable line of at most 200 characters: control
// and formatting characters (line breaks, bidirectional overrides, zero-width ones) would let a
// seller's words pass for the app's own or hide what they say.
func oneLine(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		switch {
		case n == 200:
			b.WriteString("…")
			return b.String()
		case unicode.IsSpace(r):
			r = ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			continue
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
