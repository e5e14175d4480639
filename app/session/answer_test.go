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

// Buy's wait for the seller's answer: while earlier requests went unanswered, a late answer
// to one is passed over for the one that matches; with none outstanding a mismatch is told at
// once; the seller's refusal and a broken answer end the wait at once; a timeout counts the
// request as unanswered.
func TestAwaitAnswerPassesOverLateAnswers(t *testing.T) {
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
	late := invoicemsg.Answer{ID: "earlier", Sats: 600}
	for _, tc := range []struct {
		name            string
		unanswered      int
		answers         []invoicemsg.Answer
		id              string // the answer taken ("": an error)
		err             string
		unansweredAfter int
	}{
		{"the answer", 0, []invoicemsg.Answer{ok}, "right", "", 0},
		{"a late answer first", 1, []invoicemsg.Answer{late, ok}, "right", "", 0},
		{"two late answers first", 2, []invoicemsg.Answer{late, late, ok}, "right", "", 0},
		{"more mismatches than requests unanswered", 1, []invoicemsg.Answer{late, late, ok}, "", "asks for 600 sats instead of 1200", 0},
		{"a mismatch, none unanswered: told at once", 0, []invoicemsg.Answer{late, ok}, "", "asks for 600 sats instead of 1200", 0},
		{"only a late answer", 1, []invoicemsg.Answer{late}, "", "asks for 600 sats instead of 1200", 1},
		{"a refusal", 1, []invoicemsg.Answer{{Code: invoicemsg.Code(2), Error: "sold out"}, ok}, "", "sold out", 1},
		{"a broken answer", 0, []invoicemsg.Answer{{Sats: want}, ok}, "", "invoice was refused: invoicemsg: invalid field", 0},
		{"nothing", 0, nil, "", "did not answer with an invoice in time", 1},
		{"nothing, many unanswered before", maxLateAnswers, nil, "", "did not answer with an invoice in time", maxLateAnswers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers := make(chan invoicemsg.Answer, len(tc.answers))
			for _, a := range tc.answers {
				answers <- a
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			unanswered := tc.unanswered
			a, err := awaitAnswer(ctx, answers, &unanswered, check)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error saying %q", a, err, tc.err)
				}
			} else if err != nil || a.ID != tc.id {
				t.Fatalf("got %+v, %v; want answer %q", a, err, tc.id)
			}
			if unanswered != tc.unansweredAfter {
				t.Fatalf("%d requests unanswered after, want %d", unanswered, tc.unansweredAfter)
			}
		})
	}
}
