package card

import (
	"encoding/json"
	"os"
	"testing"
)

// checkParsed: whatever parses is valid, and both of its forms parse back to it.
func checkParsed(t *testing.T, c Card) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("parsed an invalid card: %v", err)
	}
	s, err := Encode(c)
	if err != nil {
		t.Fatalf("cannot encode a parsed card: %v", err)
	}
	back, err := Parse(s)
	if err != nil || !back.Equal(c) {
		t.Fatalf("text round trip: %v\n got %+v\nwant %+v", err, back, c)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("cannot write a parsed card as JSON: %v", err)
	}
	back, err = Parse(string(j))
	if err != nil || !back.Equal(c) {
		t.Fatalf("JSON round trip: %v\n got %+v\nwant %+v", err, back, c)
	}
}

func seedCards(f *testing.F) []Card {
	return []Card{typical(f), free(f), validCards(f)["relay address, unicode"]}
}

// FuzzParse feeds Parse text and JSON cards and their mutations.
func FuzzParse(f *testing.F) {
	for _, c := range seedCards(f) {
		f.Add(c.String())
		j, _ := json.Marshal(c)
		f.Add(string(j))
	}
	// Cards as people paste them: in a sentence, in quotes, re-wrapped with e-mail quote markers,
	// two in one paste, JSON in Markdown.
	s := typical(f).String()
	f.Add("Watch my stream: " + s + " see you there")
	f.Add("\u201c" + s + "\u201d.")
	f.Add("> " + s[:70] + "\n> " + s[70:140] + "\n>> " + s[140:] + "\n> bye")
	f.Add("(" + s + ") and <" + free(f).String() + ">")
	f.Add("Cards start with dzv1, here is mine: " + s[:100] + "q" + s[101:] + "!")
	j, _ := json.Marshal(typical(f))
	f.Add("```json\n" + string(j) + "\n```")
	for _, name := range []string{"whitepaper-example.json", "bitfinex-terminal-paid-orderbook.json"} {
		b, _ := os.ReadFile("testdata/" + name)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		checkParsed(t, c)
	})
}

// FuzzParseJSON feeds the JSON form to json.Unmarshal (Card.UnmarshalJSON).
func FuzzParseJSON(f *testing.F) {
	for _, c := range seedCards(f) {
		j, _ := json.MarshalIndent(c, "", " ")
		f.Add(j)
	}
	f.Add([]byte(`{"id":"0101010101010101010101010101010101010101010101010101010101010101","payment":{"method":"ln","currency":"LightningBTC","amount":"1e-5","interval":"2","unit":"minutes"},"dazaarVision":{"version":1,"peer":"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N","network":"signet"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Card
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		checkParsed(t, c)
	})
}

// FuzzPayload feeds the text form's payload decoder through a valid envelope, which random
// text almost never gets past.
func FuzzPayload(f *testing.F) {
	for _, c := range seedCards(f) {
		f.Add(encodePayload(c))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := wrap(version, p)
		if err != nil {
			return
		}
		c, err := Parse(s)
		if err != nil {
			return
		}
		checkParsed(t, c)
		if string(encodePayload(c)) != string(p) {
			t.Fatalf("payload %x parsed but re-encodes as %x", p, encodePayload(c))
		}
	})
}
