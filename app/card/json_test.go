package card

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

func TestJSONRoundTrip(t *testing.T) {
	for name, c := range validCards(t) {
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, rep, err := ParseReport(string(b))
		if err != nil || !got.Equal(c) || !rep.JSON || len(rep.Ignored) != 0 {
			t.Errorf("%s: Parse of its JSON: %v %+v\n%s", name, err, rep, b)
		}
		var u Card
		if err := json.Unmarshal(b, &u); err != nil || !u.Equal(c) {
			t.Errorf("%s: json.Unmarshal: %v", name, err)
		}
		// JSON -> text -> same card.
		back, err := Parse(got.String())
		if err != nil || !back.Equal(c) {
			t.Errorf("%s: text of the JSON card: %v", name, err)
		}
	}
}

// ourJSON is a card in JSON form with the given payment list.
func ourJSON(t *testing.T, payment string, network string) string {
	c := typical(t)
	nw := ""
	if network != "" {
		nw = fmt.Sprintf(`, "network": %q`, network)
	}
	return fmt.Sprintf(`{"id": "%x", "name": "N", "description": "D", "homepage": "https://example.com", "payment": %s,
		"dazaarVision": {"version": 1, "peer": %q, "addrs": ["/ip4/1.2.3.4/tcp/1"]%s}}`, c.Feed, payment, c.Seller, nw)
}

func TestJSONForms(t *testing.T) {
	hour := price.Price{Sats: 100, Interval: 1, Unit: price.Hour}
	ln := []Method{Lightning}
	cases := []struct {
		name    string
		payment string
		network string
		price   price.Price
		methods []Method
		ignored []string
	}{
		{"numbers", `[{"method": "Lightning", "currency": "SATS", "amount": 100, "interval": 1, "unit": "hours"}]`, "mainnet", hour, ln, nil},
		{"strings", `[{"method": "Lightning", "currency": "SATS", "amount": "100", "interval": "1", "unit": "hours"}]`, "mainnet", hour, ln, nil},
		{"single object", `{"method": "Lightning", "currency": "SATS", "amount": 100, "interval": 1, "unit": "hours"}`, "mainnet", hour, ln, nil},
		{"BTC", `[{"method": "Lightning", "currency": "BTC", "amount": 0.000001, "interval": 1, "unit": "hour"}]`, "mainnet", hour, ln, nil},
		{"BTC as a string with an exponent", `[{"method": "Lightning", "currency": "BTC", "amount": "1e-6", "interval": 1, "unit": "Hours"}]`, "mainnet", hour, ln, nil},
		{"legacy LightningSats", `[{"method": "ln", "currency": "LightningSats", "unit": "seconds", "interval": "600", "amount": "1000"}]`, "testnet",
			price.Price{Sats: 1000, Interval: 600, Unit: price.Second}, ln, nil},
		{"legacy LightningBTC", `[{"method": "Lightning", "currency": "LightningBTC", "unit": "minutes", "interval": 5, "amount": "0.00000100"}]`, "signet",
			price.Price{Sats: 100, Interval: 5, Unit: price.Minute}, ln, nil},
		{"on-chain", `[{"method": "Bitcoin", "currency": "SATS", "amount": 100.0, "interval": 1, "unit": "hours"}]`, "regtest", hour, []Method{OnChain}, nil},
		{"both, same price in two currencies", `[{"method": "Bitcoin", "currency": "SATS", "amount": 100, "interval": 1, "unit": "hours"},
			{"method": "Lightning", "currency": "BTC", "amount": "0.000001", "interval": 1, "unit": "hours"}]`, "simnet", hour, []Method{OnChain, Lightning}, nil},
		{"Lightning twice", `[{"method": "Lightning", "currency": "SATS", "amount": 100, "interval": 1, "unit": "hours"},
			{"method": "lightning", "currency": "sats", "amount": 100, "interval": 1, "unit": "hours"}]`, "mainnet", hour, ln, nil},
		{"mixed with ETH and EOS", `[{"method": "ETH", "currency": "USDT", "amount": 0.02, "interval": 1, "unit": "hours"},
			{"method": "Lightning", "currency": "SATS", "amount": 100, "interval": 1, "unit": "hours", "minSeconds": 1},
			{"method": "EOS", "currency": "EOS", "amount": "0.1", "interval": 1, "unit": "hours", "payTo": "seller"}]`, "mainnet", hour, ln, []string{"USDT (ETH)", "EOS"}},
		{"free, empty list", `[]`, "", price.Free, nil, nil},
		{"free, null", `null`, "", price.Free, nil, nil},
	}
	for _, tc := range cases {
		c, rep, err := ParseReport(ourJSON(t, tc.payment, tc.network))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.Price != tc.price || fmt.Sprint(c.Methods) != fmt.Sprint(tc.methods) || c.Network != tc.network ||
			fmt.Sprint(rep.Ignored) != fmt.Sprint(tc.ignored) {
			t.Errorf("%s: got %v %v %q ignored %v", tc.name, c.Price, c.Methods, c.Network, rep.Ignored)
		}
		if len(tc.ignored) > 0 && !strings.Contains(rep.Note(), "also accepts USDT (ETH) and EOS, which Dazaar Vision does not support") {
			t.Errorf("%s: note %q", tc.name, rep.Note())
		}
	}
}

func TestJSONInvalid(t *testing.T) {
	lnp := func(amount, interval, unit string) string {
		return fmt.Sprintf(`[{"method": "Lightning", "currency": "SATS", "amount": %s, "interval": %s, "unit": %s}]`, amount, interval, unit)
	}
	c := typical(t)
	cases := []struct {
		name string
		in   string
		want error
		text string
	}{
		{"negative amount", ourJSON(t, lnp("-100", "1", `"hours"`), "mainnet"), ErrMalformed, "amount -100 is negative"},
		{"negative amount as a string", ourJSON(t, lnp(`"-100"`, "1", `"hours"`), "mainnet"), ErrMalformed, "is negative"},
		{"negative interval", ourJSON(t, lnp("100", "-1", `"hours"`), "mainnet"), ErrMalformed, "interval -1 is negative"},
		{"fractional sats", ourJSON(t, lnp("10.5", "1", `"hours"`), "mainnet"), ErrMalformed, "not a whole number"},
		{"fractional interval", ourJSON(t, lnp("10", `"1.5"`, `"hours"`), "mainnet"), ErrMalformed, "interval 1.5 is not a whole number"},
		{"amount 0", ourJSON(t, lnp("0", "1", `"hours"`), "mainnet"), ErrMalformed, "costs 0"},
		{"amount too large", ourJSON(t, lnp("1e30", "1", `"hours"`), "mainnet"), ErrMalformed, "too large"},
		{"amount over all bitcoin", ourJSON(t, lnp("2100000000000001", "1", `"hours"`), "mainnet"), ErrMalformed, "too large"},
		{"amount with a huge exponent", ourJSON(t, lnp("1e999999999", "1", `"hours"`), "mainnet"), ErrMalformed, "not a number"},
		{"amount not a number", ourJSON(t, lnp(`"lots"`, "1", `"hours"`), "mainnet"), ErrMalformed, `"lots" is not a number`},
		{"amount missing", ourJSON(t, `[{"method": "Lightning", "currency": "SATS", "interval": 1, "unit": "hours"}]`, "mainnet"), ErrMalformed, "amount is missing"},
		{"interval 0", ourJSON(t, lnp("10", "0", `"hours"`), "mainnet"), ErrMalformed, "interval is 0"},
		{"interval too large", ourJSON(t, lnp("10", "1000001", `"hours"`), "mainnet"), ErrMalformed, "too large"},
		{"unknown unit", ourJSON(t, lnp("10", "1", `"fortnights"`), "mainnet"), ErrMalformed, `time unit "fortnights" is unknown`},
		{"no unit", ourJSON(t, lnp("10", "1", `""`), "mainnet"), ErrMalformed, "no time unit"},
		{"unknown currency", ourJSON(t, `[{"method": "Lightning", "currency": "EUR", "amount": 1, "interval": 1, "unit": "hours"}]`, "mainnet"), ErrMalformed, `currency "EUR"`},
		{"no currency", ourJSON(t, `[{"method": "Bitcoin", "amount": 1, "interval": 1, "unit": "hours"}]`, "mainnet"), ErrMalformed, `currency ""`},
		{"two prices", ourJSON(t, `[{"method": "Lightning", "currency": "SATS", "amount": 1, "interval": 1, "unit": "hours"},
			{"method": "Bitcoin", "currency": "SATS", "amount": 2, "interval": 1, "unit": "hours"}]`, "mainnet"), ErrMalformed, "different prices"},
		{"payment is a string", ourJSON(t, `"free"`, ""), ErrMalformed, "payment list cannot be read"},
		{"17 payment options", ourJSON(t, "["+strings.TrimSuffix(strings.Repeat(`{"method":"ETH"},`, 17), ",")+"]", ""), ErrMalformed, "at most 16"},
		{"paid without a network", ourJSON(t, lnp("10", "1", `"hours"`), ""), ErrInvalid, "unknown bitcoin network"},
		{"free with a network", ourJSON(t, `[]`, "mainnet"), ErrInvalid, "free stream has no payment network"},
		{"only ETH and EOS", ourJSON(t, `[{"method": "ETH", "currency": "ETH", "amount": 1, "interval": 1, "unit": "hours"},
			{"method": "EOS", "currency": "EOS", "amount": 1, "interval": 1, "unit": "hours"}]`, ""), nil,
			"this card only accepts ETH and EOS, which Dazaar Vision does not support; it supports Lightning and on-chain bitcoin"},
		{"cut short", ourJSON(t, `[]`, "")[:60], ErrMalformed, "broken or cut short"},
		{"not an object", `{"id": 5}`, ErrMalformed, "cannot unmarshal"},
		{"no dazaarVision part and no id", `{"name": "x"}`, ErrNotCard, `no "dazaarVision" part`},
		{"version 2", strings.Replace(ourJSON(t, `[]`, ""), `"version": 1`, `"version": 2`, 1), nil, "format version 2"},
		{"no version", strings.Replace(ourJSON(t, `[]`, ""), `"version": 1, `, ``, 1), ErrMalformed, "has no version"},
		{"feed key not hex", strings.Replace(ourJSON(t, `[]`, ""), fmt.Sprintf("%x", c.Feed), "zz", 1), ErrMalformed, "not 64 hexadecimal digits"},
		{"bad peer", strings.Replace(ourJSON(t, `[]`, ""), c.Seller, "nobody", 1), ErrInvalid, "peer ID"},
		{"too long", `{"name": "` + strings.Repeat("x", MaxInput) + `"}`, ErrTooLong, "at most"},
		{"name too long", strings.Replace(ourJSON(t, `[]`, ""), `"name": "N"`, `"name": "`+strings.Repeat("x", 200)+`"`, 1), ErrInvalid, "name is 200 bytes"},
	}
	for _, tc := range cases {
		got, err := Parse(tc.in)
		if err == nil {
			t.Errorf("%s: accepted as %+v", tc.name, got)
			continue
		}
		if (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: got %v, want %v saying %q", tc.name, err, tc.want, tc.text)
		}
	}
	var ue *UnsupportedMethodsError
	_, err := Parse(ourJSON(t, `[{"method": "ETH", "currency": "USDT", "amount": 1, "interval": 1, "unit": "hours"}]`, ""))
	if !errors.As(err, &ue) || fmt.Sprint(ue.Methods) != "[USDT (ETH)]" {
		t.Errorf("only USDT: %v", err)
	}
}

// TestForeignCards: original Dazaar cards as published are recognised, with their terms.
func TestForeignCards(t *testing.T) {
	cases := []struct {
		file, name, id, terms string
	}{
		{"whitepaper-example.json", "Dazaar card example", "dead...beef", "1000 sats per 600 seconds via Lightning"},
		{"bitfinex-terminal-free-trades.json", "Bitfinex Terminal BTCUSD Trades Dazaar Card", "03a3af100709be37800a189e64d51fe63cd62d6660ce9bf3e6fea3d6670c1310", "Free"},
		{"bitfinex-terminal-paid-orderbook.json", "Bitfinex Terminal Order Book BTCUSD", "1dcac8b51ee04f08619cb793399d292ed44e3be46ca82ed9294f51942321b037",
			"0.02 USDT per 1 hour via ETH, 0.015 LEO per 1 hour via ETH or 100 sats per 1 hour via Lightning"},
	}
	for _, tc := range cases {
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(string(b))
		var fe *ForeignCardError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %v, want a ForeignCardError", tc.file, err)
			continue
		}
		if fe.Name != tc.name || fe.ID != tc.id || fe.Terms() != tc.terms {
			t.Errorf("%s: name %q id %q terms %q", tc.file, fe.Name, fe.ID, fe.Terms())
		}
		if !strings.Contains(err.Error(), "lives on the Hypercore/Dazaar network, not on Dazaar Vision's") || !strings.Contains(err.Error(), tc.terms) {
			t.Errorf("%s: message %q", tc.file, err)
		}
	}
	// A single payment object, a legacy currency, and hostile text made safe to print.
	_, err := Parse(`{"id": "` + strings.Repeat("ab", 32) + `", "name": "x\u001b[2Jy", "payment": {"method": "Lightning", "currency": "BTC\u202e", "amount": "0.0001", "interval": 2, "unit": "minutes"}}`)
	var fe *ForeignCardError
	if !errors.As(err, &fe) || fe.Terms() != "0.0001 BTC? per 2 minutes via Lightning" || fe.Name != "x?[2Jy" {
		t.Errorf("hostile foreign card: %v", err)
	}
	// Unreadable terms are said to be so.
	_, err = Parse(`{"id": "` + strings.Repeat("ab", 32) + `", "payment": [{"method": "ETH", "amount": -1, "unit": "hours", "interval": 1}]}`)
	if !errors.As(err, &fe) || fe.Terms() != "terms Dazaar Vision could not read" {
		t.Errorf("unreadable foreign card: %v", err)
	}
}

func TestJSONNull(t *testing.T) {
	var v struct{ Card *Card }
	if err := json.Unmarshal([]byte(`{"Card": null}`), &v); err != nil || v.Card != nil {
		t.Fatalf("null card: %v %v", err, v.Card)
	}
	c := typical(t)
	if err := json.Unmarshal([]byte("null"), &c); err != nil || !c.Equal(typical(t)) {
		t.Fatalf("null into a card: %v", err)
	}
}
