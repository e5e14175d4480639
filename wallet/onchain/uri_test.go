package onchain

import (
	"reflect"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

func TestURIRoundTrip(t *testing.T) {
	cases := []struct {
		u    PaymentURI
		want string
	}{
		{PaymentURI{Address: bip84Addr0, Sats: 150_000, Label: "Dazaar stream", Message: "Access to abc (60 min) & more"},
			"bitcoin:" + bip84Addr0 + "?amount=0.0015&label=Dazaar%20stream&message=Access%20to%20abc%20%2860%20min%29%20%26%20more"},
		{PaymentURI{Address: bip84Addr0, Sats: 2_100_000_000_000_000}, "bitcoin:" + bip84Addr0 + "?amount=21000000"},
		{PaymentURI{Address: bip84Addr0, Sats: 1}, "bitcoin:" + bip84Addr0 + "?amount=0.00000001"},
		{PaymentURI{Address: bip84Addr0, Sats: 1000, Lightning: "lnbc10u1pxyz"}, "bitcoin:" + bip84Addr0 + "?amount=0.00001&lightning=lnbc10u1pxyz"},
	}
	for _, c := range cases {
		if got := c.u.String(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
		back, err := ParseURI(c.u.String(), &chaincfg.MainNetParams)
		if err != nil || !reflect.DeepEqual(back, c.u) {
			t.Errorf("parse %s: %+v %v", c.want, back, err)
		}
	}
}

func TestBadURIs(t *testing.T) {
	for _, s := range []string{
		"",
		"bitcoin:",
		"litecoin:" + bip84Addr0,
		"bitcoin:notanaddress",
		"bitcoin:tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx?amount=1", // testnet address
		"bitcoin:" + bip84Addr0 + "?amount=0.000000001",               // 9 decimals
		"bitcoin:" + bip84Addr0 + "?amount=-1",
		"bitcoin:" + bip84Addr0 + "?amount=1e3",
		"bitcoin:" + bip84Addr0 + "?amount=1&amount=2",
		"bitcoin:" + bip84Addr0 + "?label=a&LABEL=b",
		"bitcoin:" + bip84Addr0 + "?message=a&message=a",
		"bitcoin:" + bip84Addr0 + "?pop=callback%3a&pop=other%3a",
		"bitcoin:" + bip84Addr0 + "?label=%2",
		"bitcoin:" + bip84Addr0 + "?lab%zzel=x",
		"bitcoin:" + bip84Addr0 + "?req-somethingnew=1&req-somethingnew=2",
		"bitcoin:" + bip84Addr0 + "?req-somethingnew=1",
		"bitcoin:" + bip84Addr0 + "?label=%zz",
		"bitcoin:" + bip84Addr0 + "?amount=" + strings.Repeat("9", 30),
		"bitcoin:" + strings.Repeat("a", MaxURILen),
		"bitcoin:" + bip84Addr0 + "?amount=21000000.00000001", // more bitcoin than exist
		"bitcoin:" + bip84Addr0 + "?amount=21000000.1",
	} {
		if u, err := ParseURI(s, &chaincfg.MainNetParams); err == nil {
			t.Errorf("accepted %q: %+v", s, u)
		}
	}
	if _, err := ParseURI("BITCOIN:"+strings.ToUpper(bip84Addr0)+"?amount=1&unknown=ok", &chaincfg.MainNetParams); err != nil {
		t.Errorf("uppercase URI refused: %v", err)
	}
}

// TestURIDecoding: parameters are percent-decoded as RFC 3986 says ('+' stays a plus), and
// payment instructions and unknown parameters may repeat (BIP321).
func TestURIDecoding(t *testing.T) {
	const lnA, lnB = "lnbc10u1pxyz", "lnbc10u1pabc"
	cases := []struct {
		name string
		in   string
		want PaymentURI
	}{
		{"plus is a plus", "bitcoin:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2?label=a+b%2Bc%26d%3De",
			PaymentURI{Address: "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", Label: "a+b+c&d=e"}},
		{"%20 is a space", "bitcoin:" + bip84Addr0 + "?message=two%20words+and+more",
			PaymentURI{Address: bip84Addr0, Message: "two words+and+more"}},
		{"two lightning invoices: the first", "bitcoin:" + bip84Addr0 + "?lightning=" + lnA + "&lightning=" + lnB,
			PaymentURI{Address: bip84Addr0, Lightning: lnA, Others: []string{"lightning"}}},
		{"an empty lightning= is skipped", "bitcoin:?lightning=&LIGHTNING=" + lnB,
			PaymentURI{Lightning: lnB}},
		{"two bc= instructions", "bitcoin:" + bip84Addr0 + "?amount=1&bc=" + bip84Addr1 + "&bc=" + bip84Addr0,
			PaymentURI{Address: bip84Addr0, Sats: 100_000_000, Others: []string{"bc"}}},
		{"unknown parameter twice", "bitcoin:" + bip84Addr0 + "?foo=1&FOO=2&foo",
			PaymentURI{Address: bip84Addr0, Others: []string{"foo"}}},
		{"empty parts", "bitcoin:" + bip84Addr0 + "?&&amount=0.5&",
			PaymentURI{Address: bip84Addr0, Sats: 50_000_000}},
		{"pop once", "bitcoin:" + bip84Addr0 + "?pop=initiatingapp%3a",
			PaymentURI{Address: bip84Addr0, Others: []string{"pop"}}},
		{"the same lightning= twice", "bitcoin:?lightning=" + lnA + "&lightning=" + lnA,
			PaymentURI{Lightning: lnA}},
	}
	for _, c := range cases {
		got, err := ParseURI(c.in, &chaincfg.MainNetParams)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, text string }{
		{"bitcoin:" + bip84Addr0 + "?label=%zz", "broken %-escape"},
		{"bitcoin:" + bip84Addr0 + "?amount=1&Amount=1", `"amount" 2 times`},
	} {
		if _, err := ParseURI(c.in, &chaincfg.MainNetParams); err == nil || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want an error saying %q", c.in, err, c.text)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("bitcoin:" + bip84Addr0 + "?amount=0.0015&label=x&lightning=lnbc1")
	f.Add("bitcoin:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2?label=a+b%2Bc%26d%3De")
	f.Add("bitcoin:" + bip84Addr0 + "?lightning=lnbc1&lightning=lnbc2&bc=" + bip84Addr1 + "&bc=x&pop=a%3a")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s, &chaincfg.MainNetParams)
		if err != nil {
			return
		}
		if u.Sats > MaxSats {
			t.Fatalf("%q: %d sats, more than exist", s, u.Sats)
		}
		back, err := ParseURI(u.String(), &chaincfg.MainNetParams)
		u.Others = nil // String writes only what it knows
		if err != nil || !reflect.DeepEqual(back, u) {
			t.Fatalf("round trip %q: %+v %v", u.String(), back, err)
		}
	})
}

func TestParseBTC(t *testing.T) {
	cases := []struct {
		in   string
		sats uint64
		ok   bool
	}{
		{"0.0015", 150_000, true},
		{"21000000", MaxSats, true},
		{"21000000.00000000", MaxSats, true},
		{"20999999.99999999", MaxSats - 1, true},
		{".5", 50_000_000, true},
		{"21000000.00000001", 0, false},
		{"21000000.1", 0, false},
		{"21000001", 0, false},
		{"0.000000001", 0, false},
		{".", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		got, err := ParseBTC(c.in)
		if (err == nil) != c.ok || got != c.sats {
			t.Errorf("ParseBTC(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.sats, c.ok)
		}
	}
}
