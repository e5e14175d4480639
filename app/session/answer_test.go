package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/invoice"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
)

// Buy's wait for the seller's answer: an answer to an earlier request the viewer gave up on
// is passed over for the one that matches; the seller's refusal and a broken answer end the
// wait at once; a mismatch alone is told when no matching answer came in time.
func TestAwaitAnswerPassesOverStaleAnswers(t *testing.T) {
	const want = 1200
	check := func(a invoicemsg.Answer) error {
		switch {
		case a.Code != invoicemsg.OK:
			return fmt.Errorf("%w: %s", invoice.ErrRefused, a.Error)
		case a.Sats != want:
			return fmt.Errorf("%w: it asks for %d sats instead of %d", invoice.ErrMismatch, a.Sats, want)
		case a.ID == "":
			return errors.New("invoicemsg: invalid field")
		}
		return nil
	}
	ok := invoicemsg.Answer{ID: "right", Sats: want}
	stale := invoicemsg.Answer{ID: "earlier", Sats: 600}
	for _, tc := range []struct {
		name    string
		answers []invoicemsg.Answer
		id      string // the answer taken ("": an error)
		err     string
	}{
		{"the answer", []invoicemsg.Answer{ok}, "right", ""},
		{"a stale answer first", []invoicemsg.Answer{stale, ok}, "right", ""},
		{"two stale answers first", []invoicemsg.Answer{stale, stale, ok}, "right", ""},
		{"only a stale answer", []invoicemsg.Answer{stale}, "", "asks for 600 sats instead of 1200"},
		{"a refusal", []invoicemsg.Answer{{Code: invoicemsg.Code(2), Error: "sold out"}, ok}, "", "sold out"},
		{"a broken answer", []invoicemsg.Answer{{Sats: want}, ok}, "", "invoice was refused: invoicemsg: invalid field"},
		{"nothing", nil, "", "did not answer with an invoice in time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers := make(chan invoicemsg.Answer, len(tc.answers))
			for _, a := range tc.answers {
				answers <- a
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			a, err := awaitAnswer(ctx, answers, check)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error saying %q", a, err, tc.err)
				}
				return
			}
			if err != nil || a.ID != tc.id {
				t.Fatalf("got %+v, %v; want answer %q", a, err, tc.id)
			}
		})
	}
}
