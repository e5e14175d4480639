package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/internal/human"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/wallet/invoice"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/paymentqr"
)

// BuyRequest is what the viewer buys: minutes of media, or an amount in sats.
type BuyRequest struct {
	Minutes uint32 // at most MaxBuyMinutes
	Sats    uint64
	Method  invoicemsg.Method // Lightning, OnChain or Any
}

// MaxBuyMinutes is the most time one invoice can be asked for: a week.
const MaxBuyMinutes = invoicemsg.MaxMinutes

// Buy asks the seller for an invoice for this viewer alone and checks it against the card
// (amount, memo, network, expiry) before returning it to be shown.
func (v *Viewer) Buy(ctx context.Context, r BuyRequest) (Invoice, error) {
	c := v.cfg.Card
	if c.Price.IsFree() {
		return Invoice{}, errors.New("this stream is free: there is nothing to pay")
	}
	if r.Method == 0 {
		r.Method = invoicemsg.Lightning
		if !slices.Contains(c.Methods, card.Lightning) {
			r.Method = invoicemsg.OnChain
		}
	}
	switch {
	case r.Minutes > MaxBuyMinutes:
		return Invoice{}, fmt.Errorf("at most a week (%d minutes) can be bought at once", MaxBuyMinutes)
	case r.Sats > invoicemsg.MaxSats:
		return Invoice{}, errors.New("that is more than all the bitcoin there is")
	case r.Sats == 0 && r.Minutes == 0:
		return Invoice{}, errors.New("say how many minutes (or sats) to buy")
	}
	req := invoicemsg.Request{Stream: v.id, Method: r.Method, Sats: r.Sats, Minutes: r.Minutes}
	if err := req.Validate(); err != nil {
		return Invoice{}, fmt.Errorf("cannot ask for that: %w", err)
	}
	msg, err := req.MarshalBinary()
	if err != nil {
		return Invoice{}, err
	}
	v.buyMu.Lock()
	defer v.buyMu.Unlock()
	select { // an answer to an earlier, abandoned request is stale
	case <-v.answers:
		v.unanswered = max(v.unanswered-1, 0)
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if err = v.rv.Send(msg); err == nil {
			break
		}
		if !errors.Is(err, replicate.ErrNoSession) {
			return Invoice{}, fmt.Errorf("cannot ask the seller for an invoice: %w", err)
		}
		select { // not connected yet: wait for the session
		case <-ctx.Done():
			return Invoice{}, errors.New("the seller cannot be reached: check that the broadcast is live, then try again")
		case <-time.After(50 * time.Millisecond):
		}
	}
	a, err := awaitAnswer(ctx, v.answers, &v.unanswered, func(a invoicemsg.Answer) error {
		return invoice.Check(invoice.Expect{Request: req, Viewer: v.self.String(), Price: c.Price, Network: c.Network, Now: time.Now()}, a)
	})
	if err != nil {
		return Invoice{}, err
	}
	inv := Invoice{ID: a.ID, Method: a.Method, Sats: a.Sats, Media: time.Duration(a.Millis) * time.Millisecond,
		Expires: time.Unix(a.ExpiresAt, 0), URI: a.URI, Bolt11: a.Bolt11, Address: a.Address, Requested: time.Now()}
	if inv.QRPNG, err = invoiceQR(a); err != nil {
		v.log.Warn("cannot draw the invoice as a QR code", "err", err)
	}
	v.recMu.Lock()
	v.rec.Purchases = append(v.rec.Purchases, Purchase{InvoiceID: a.ID, Method: a.Method.String(), Sats: a.Sats, Millis: a.Millis, URI: a.URI, Requested: inv.Requested})
	err = v.cfg.Data.saveWatched(v.rec)
	v.recMu.Unlock()
	if err != nil {
		v.log.Warn("cannot record the purchase", "err", err)
	}
	v.ev.emit(Event{Kind: EventInvoice, Text: fmt.Sprintf("Pay %d sats for %s", a.Sats, human.Duration(inv.Media))})
	return inv, nil
}

// awaitAnswer waits for the seller's answer that check accepts. Answers carry no request
// number, so while earlier requests went unanswered (*late of them: the viewer gave up on a
// slow seller) a late answer to one can arrive first: up to *late answers that do not match
// this request (invoice.ErrMismatch) are passed over, each counted off, and a mismatch is told
// only if no matching answer comes in time. With none outstanding, a mismatch is told at once
// (a seller answering wrongly is not waited out). Giving up adds this request to *late.
// maxLateAnswers bounds the late answers remembered as outstanding (a seller that never
// answers would otherwise have every later mismatch waited out).
const maxLateAnswers = 3

func awaitAnswer(ctx context.Context, answers <-chan invoicemsg.Answer, late *int, check func(invoicemsg.Answer) error) (invoicemsg.Answer, error) {
	var mismatch error
	for {
		select {
		case a := <-answers:
			err := check(a)
			switch {
			case err == nil:
				return a, nil
			case errors.Is(err, invoice.ErrRefused):
				return a, err // the seller's own words, as one line
			case errors.Is(err, invoice.ErrMismatch) && *late > 0:
				*late--
				mismatch = err
				continue
			default:
				return a, fmt.Errorf("the seller's invoice was refused: %w", err)
			}
		case <-ctx.Done():
			*late = min(*late+1, maxLateAnswers)
			if mismatch != nil {
				return invoicemsg.Answer{}, fmt.Errorf("the seller's invoice was refused: %w", mismatch)
			}
			return invoicemsg.Answer{}, errors.New("the seller did not answer with an invoice in time: try again")
		}
	}
}

// invoiceQR draws the invoice's URI as a QR code; a URI too long for one (a BIP21 URI carrying
// a long Lightning invoice as well) gives way to the Lightning invoice alone, which wallets
// scan the same and which fits the denser alphanumeric mode.
func invoiceQR(a invoicemsg.Answer) ([]byte, error) {
	png, err := paymentqr.PNG(a.URI, 512)
	if errors.Is(err, paymentqr.ErrTooLong) && a.Bolt11 != "" {
		return paymentqr.PNG("lightning:"+a.Bolt11, 768)
	}
	return png, err
}
