package invoicemsg

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

var goodAnswer = Answer{ID: "inv-1", Stream: "s1", Method: Any, Network: "mainnet", Sats: 1500, Millis: 5_400_000,
	ExpiresAt: 1_800_000_000, Address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", Bolt11: "lnbc15u1p...",
	URI: "bitcoin:bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu?amount=0.000015&lightning=lnbc15u1p..."}

func TestRoundTrip(t *testing.T) {
	reqs := []Request{{Stream: "s", Method: OnChain, Sats: 1000}, {Stream: strings.Repeat("x", MaxStreamLen), Method: Lightning, Minutes: 60}}
	for _, r := range reqs {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Request
		if err := got.UnmarshalBinary(b); err != nil || got != r {
			t.Fatalf("%+v -> %+v %v", r, got, err)
		}
	}
	answers := []Answer{goodAnswer, {Code: RateLimited, Error: "too many invoices; try again in a minute"}}
	for _, a := range answers {
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Answer
		if err := got.UnmarshalBinary(b); err != nil || got != a {
			t.Fatalf("%+v -> %+v %v", a, got, err)
		}
	}
}

func TestBadMessages(t *testing.T) {
	good, _ := Request{Stream: "s", Method: OnChain, Sats: 1000}.MarshalBinary()
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"future version", append([]byte{2}, good[1:]...), ErrVersion},
		{"answer kind", append([]byte{1, 2}, good[2:]...), ErrMalformed},
		{"trailing", append(append([]byte{}, good...), 0), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"oversized", make([]byte, MaxSize+1), ErrTooLarge},
		{"huge stream length", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrMalformed},
		{"both sats and minutes", []byte{1, 1, 1, 's', 1, 5, 5}, ErrInvalidData},
		{"neither", []byte{1, 1, 1, 's', 1, 0, 0}, ErrInvalidData},
		{"bad method", []byte{1, 1, 1, 's', 9, 5, 0}, ErrInvalidData},
	}
	for _, c := range cases {
		var r Request
		if err := r.UnmarshalBinary(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	bad := goodAnswer
	bad.Bolt11 = ""
	if _, err := bad.MarshalBinary(); !errors.Is(err, ErrInvalidData) {
		t.Errorf("unified invoice without bolt11 encoded: %v", err)
	}
	bad = goodAnswer
	bad.Code = Refused
	if _, err := bad.MarshalBinary(); !errors.Is(err, ErrInvalidData) {
		t.Errorf("refusal without reason encoded: %v", err)
	}
}

func FuzzRequest(f *testing.F) {
	b, _ := Request{Stream: "s", Method: OnChain, Sats: 1000}.MarshalBinary()
	f.Add(b)
	b, _ = Request{Stream: "stream", Method: Any, Minutes: 30}.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if r.UnmarshalBinary(b) != nil {
			return
		}
		out, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			// Uvarints have one canonical encoding each only when minimal; compare by value.
			var again Request
			if err != nil || again.UnmarshalBinary(out) != nil || again != r {
				t.Fatalf("re-encode of %+v: %v", r, err)
			}
		}
	})
}

func FuzzAnswer(f *testing.F) {
	b, _ := goodAnswer.MarshalBinary()
	f.Add(b)
	b, _ = Answer{Code: Unavailable, Error: "no lightning node"}.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Answer
		if a.UnmarshalBinary(b) != nil {
			return
		}
		out, err := a.MarshalBinary()
		var again Answer
		if err != nil || again.UnmarshalBinary(out) != nil || again != a {
			t.Fatalf("re-encode of %+v: %v", a, err)
		}
	})
}
