package cli

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

func testCard(t *testing.T) card.Card {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 42
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	c := card.Card{
		Name:        "Alice's garden, live",
		Description: "Tomatoes growing in real time.\nCommentary every hour.",
		Seller:      id.String(),
		Addrs:       []string{"/ip4/203.0.113.7/tcp/4001", "/ip4/203.0.113.7/udp/4001/quic-v1"},
		Price:       price.Price{Sats: 1000, Interval: 1, Unit: price.Hour},
		Methods:     []card.Method{card.Lightning, card.OnChain},
		Network:     "simnet",
	}
	c.Feed[0], c.Feed[31] = 0xab, 0xcd
	return c
}

// jsonCard is a Dazaar Vision card in JSON form with the given payment list.
func jsonCard(c card.Card, payment, network string) string {
	return fmt.Sprintf(`{"id": "%x", "name": "JSON stream", "payment": %s, "dazaarVision": {"version": 1, "peer": %q, "addrs": [], "network": %q}}`,
		c.Feed, payment, c.Seller, network)
}

func TestCardInspect(t *testing.T) {
	c := testCard(t)
	text := c.String()
	tmp := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// What a chat app makes of it: line breaks every 50 characters.
	var chat strings.Builder
	for i := 0; i < len(text); i += 50 {
		chat.WriteString(text[i:min(i+50, len(text))] + "\n")
	}
	original := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "card", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return write(name, string(b))
	}
	lnp := func(amount, interval, unit string) string {
		return fmt.Sprintf(`[{"method": "Lightning", "currency": "SATS", "amount": %s, "interval": %s, "unit": %q}]`, amount, interval, unit)
	}
	mistyped := text[:100] + map[bool]string{true: "q", false: "p"}[text[100] != 'q'] + text[101:]
	cases := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		wantOut []string
		wantErr string
	}{
		{"text", "", []string{"card", "inspect", text}, 0, []string{"name:        Alice's garden, live",
			"description: Tomatoes growing in real time.\n             Commentary every hour.",
			"terms:       1000 sats per hour, pay with Lightning or on-chain bitcoin (simnet)", "network:     simnet",
			"feed key:    ab0000", "seller:      " + c.Seller, "addresses:   /ip4/203.0.113.7/tcp/4001\n             /ip4/203.0.113.7/udp/4001/quic-v1"}, ""},
		{"file with line breaks", "", []string{"card", "inspect", write("card.txt", chat.String())}, 0, []string{"terms:       1000 sats per hour"}, ""},
		{"stdin", "\n  " + text + "\n", []string{"card", "inspect", "-"}, 0, []string{"seller:      " + c.Seller}, ""},
		{"upper case", "", []string{"card", "inspect", strings.ToUpper(text)}, 0, []string{"name:        Alice's garden, live"}, ""},
		{"JSON file", "", []string{"card", "inspect", write("card.json", jsonCard(c, `[]`, ""))}, 0,
			[]string{"name:        JSON stream", "terms:       Free", "addresses:   none", "text form:   dzv1"}, ""},
		{"JSON with ETH too", "", []string{"card", "inspect", jsonCard(c, `[{"method":"ETH","currency":"USDT","amount":1,"interval":1,"unit":"hours"},`+lnp("100", `"1"`, "hours")[1:], "mainnet")}, 0,
			[]string{"terms:       100 sats per hour, pay with Lightning\n", "note:        the card also accepts USDT (ETH), which Dazaar Vision does not support"}, ""},
		{"original Dazaar card (whitepaper)", "", []string{"card", "inspect", original("whitepaper-example.json")}, 1, nil,
			`this is an original Dazaar card for "Dazaar card example" (1000 sats per 600 seconds via Lightning): that stream lives on the Hypercore/Dazaar network, not on Dazaar Vision's`},
		{"original Dazaar card (free)", "", []string{"card", "inspect", original("bitfinex-terminal-free-trades.json")}, 1, nil, "(Free): that stream lives on the Hypercore/Dazaar network"},
		{"original Dazaar card (three methods)", "", []string{"card", "inspect", original("bitfinex-terminal-paid-orderbook.json")}, 1, nil,
			"or 100 sats per 1 hour via Lightning): that stream lives on the Hypercore/Dazaar network"},
		{"only ETH and EOS", "", []string{"card", "inspect", jsonCard(c, `[{"method":"ETH","amount":1,"interval":1,"unit":"hours"},{"method":"EOS","amount":1,"interval":1,"unit":"hours"}]`, "")}, 1, nil,
			"this card only accepts ETH and EOS, which Dazaar Vision does not support; it supports Lightning and on-chain bitcoin"},
		{"mistyped", "", []string{"card", "inspect", mistyped}, 1, nil, "a character is mistyped"},
		{"truncated", "", []string{"card", "inspect", text[:len(text)-20]}, 1, nil, "a character is missing or extra"},
		{"one character missing", "", []string{"card", "inspect", text[:200] + text[201:]}, 1, nil, "missing or extra"},
		{"cut to its start", "", []string{"card", "inspect", "dzv1"}, 1, nil, "too short"},
		{"negative amount", "", []string{"card", "inspect", jsonCard(c, lnp("-5", "1", "hours"), "mainnet")}, 1, nil, "amount -5 is negative"},
		{"unknown unit", "", []string{"card", "inspect", jsonCard(c, lnp("5", "1", "days"), "mainnet")}, 1, nil, `time unit "days" is unknown`},
		{"fractional sats", "", []string{"card", "inspect", jsonCard(c, lnp("0.5", "1", "hours"), "mainnet")}, 1, nil, "not a whole number"},
		{"truncated JSON", "", []string{"card", "inspect", jsonCard(c, `[]`, "")[:50]}, 1, nil, "broken or cut short"},
		{"newer version", "", []string{"card", "inspect", strings.Replace(jsonCard(c, `[]`, ""), `"version": 1`, `"version": 7`, 1)}, 1, nil, "format version 7"},
		{"not a card, not a file", "", []string{"card", "inspect", "hello"}, 1, nil, `there is no file named "hello"`},
		{"a key, not a card", "", []string{"card", "inspect", strings.Repeat("0f", 32)}, 1, nil, "a key, not a card"},
		{"empty stdin", "", []string{"card", "inspect", "-"}, 1, nil, "nothing to read"},
		{"huge stdin", strings.Repeat("q", card.MaxInput+10), []string{"card", "inspect", "-"}, 1, nil, "more than any card"},
		{"directory", "", []string{"card", "inspect", tmp}, 1, nil, fmt.Sprintf("cannot read the card: %q is a directory; give a card, a file holding one, or -", tmp)},
		{"no card", "", []string{"card", "inspect"}, 2, nil, "usage: card inspect"},
		{"two cards", "", []string{"card", "inspect", text, text}, 2, nil, "takes one card"},
		{"unknown flag", "", []string{"card", "inspect", "-yaml", text}, 2, nil, "flag provided but not defined"},
		{"no subcommand", "", []string{"card"}, 2, nil, "card needs a subcommand"},
		{"unknown subcommand", "", []string{"card", "make"}, 2, nil, `unknown card subcommand "make"`},
	}
	for _, tc := range cases {
		r := run(t, tc.stdin, tc.args...)
		ok := r.code == tc.code && strings.Contains(r.err, tc.wantErr)
		for _, w := range tc.wantOut {
			ok = ok && strings.Contains(r.out, w)
		}
		if tc.code != 0 && r.out != "" {
			ok = false
		}
		if !ok {
			t.Errorf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", tc.name, r.code, tc.code, r.out, r.err)
		}
	}
}

func TestCardInspectJSON(t *testing.T) {
	c := testCard(t)
	r := run(t, "", "card", "inspect", "-json", c.String())
	if r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.err)
	}
	var back card.Card
	if err := json.Unmarshal([]byte(r.out), &back); err != nil || !back.Equal(c) {
		t.Fatalf("-json output does not read back: %v\n%s", err, r.out)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.out), &raw); err != nil || raw["id"] == nil || raw["dazaarVision"] == nil || raw["payment"] == nil {
		t.Fatalf("-json fields: %v %v", err, raw)
	}
	// A mixed card's note goes to stderr, keeping stdout JSON.
	r = run(t, "", "card", "inspect", "-json", jsonCard(c, `[{"method":"EOS","amount":1,"interval":1,"unit":"hours"},{"method":"Lightning","currency":"SATS","amount":3,"interval":1,"unit":"minutes"}]`, "testnet"))
	if r.code != 0 || !json.Valid([]byte(r.out)) || !strings.Contains(r.err, "note: the card also accepts EOS") {
		t.Fatalf("mixed card: code %d\n%s\n%s", r.code, r.out, r.err)
	}
}
