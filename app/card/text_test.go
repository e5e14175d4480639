package card

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/bech32"
	ma "github.com/multiformats/go-multiaddr"
)

func TestTextRoundTrip(t *testing.T) {
	for name, c := range validCards(t) {
		s, err := Encode(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(s, Prefix) || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Errorf("%s: %q is not lower-case letters and digits after %s", name, s, Prefix)
		}
		if len(s) > MaxTextLen {
			t.Errorf("%s: %d characters, more than MaxTextLen %d", name, len(s), MaxTextLen)
		}
		if s != c.String() {
			t.Errorf("%s: String() differs from Encode", name)
		}
		got, err := Parse(s)
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		if !got.Equal(c) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, c)
		}
		again, _ := Encode(got)
		if again != s {
			t.Errorf("%s: re-encoding differs", name)
		}
	}
}

// TestTextLength reports the typical card's length (BENCHMARKS.md) and holds it under 600.
func TestTextLength(t *testing.T) {
	s := typical(t).String()
	free := free(t).String()
	t.Logf("typical card: %d characters; free card with a short name: %d; largest possible: %d", len(s), len(free), MaxTextLen)
	if len(s) >= 600 {
		t.Errorf("typical card is %d characters, want well under 600", len(s))
	}
	if l := len(large(t).String()); l > MaxTextLen {
		t.Errorf("largest card is %d characters, MaxTextLen is %d", l, MaxTextLen)
	}
}

// TestChatMangling: what chat apps do to a pasted card does not change it.
func TestChatMangling(t *testing.T) {
	c := typical(t)
	s := c.String()
	every := func(n int, sep string) string {
		var b strings.Builder
		for i := 0; i < len(s); i += n {
			b.WriteString(s[i:min(i+n, len(s))])
			b.WriteString(sep)
		}
		return b.String()
	}
	for name, in := range map[string]string{
		"line breaks every 64":   every(64, "\n"),
		"CRLF every 40":          every(40, "\r\n"),
		"spaces every 4":         every(4, " "),
		"surrounding whitespace": "\n\t  " + s + "  \n",
		"zero-width spaces":      every(17, "\u200b"),
		"soft hyphens":           every(23, "\u00ad"),
		"non-breaking spaces":    every(30, "\u00a0"),
		"upper case":             strings.ToUpper(s),
		"first letter capital":   "D" + s[1:],
		"byte order mark":        "\ufeff" + s,
	} {
		got, err := Parse(in)
		if err != nil || !got.Equal(c) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// mutations calls f with every single-character substitution (lower-case letters and
// digits), deletion and insertion of s.
func mutations(s string, f func(kind string, m string)) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] != s[i] {
				f("substitution", s[:i]+alphabet[j:j+1]+s[i+1:])
			}
		}
		f("deletion", s[:i]+s[i+1:])
	}
	for i := 0; i <= len(s); i++ {
		for j := 0; j < len(alphabet); j++ {
			f("insertion", s[:i]+alphabet[j:j+1]+s[i:])
		}
	}
}

// TestChecksumExhaustive: every single mistyped, dropped or added character of a real card is
// refused as damaged (never read as a different card).
func TestChecksumExhaustive(t *testing.T) {
	cards := map[string]Card{"typical": typical(t), "free": free(t)}
	c := validCards(t)["relay address, unicode"]
	cards["relay address, unicode"] = c
	for name, c := range cards {
		s := c.String()
		n := 0
		mutations(s, func(kind, m string) {
			n++
			got, err := Parse(m)
			if err == nil {
				t.Fatalf("%s: a %s was read as a card (same: %v): %s", name, kind, got.Equal(c), m)
			}
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNotCard) {
				t.Fatalf("%s: a %s gave %v, want ErrDamaged", name, kind, err)
			}
		})
		t.Logf("%s: %d characters, %d mutations all refused", name, len(s), n)
	}
}

// TestChecksumLargeCard: a sample of deletions, substitutions and insertions of the largest
// card (all of them would take minutes under -race; the guarantee does not depend on length).
func TestChecksumLargeCard(t *testing.T) {
	s := large(t).String()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		i := rng.IntN(len(s))
		if _, err := Parse(s[:i] + s[i+1:]); !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNotCard) {
			t.Fatalf("deletion at %d: %v", i, err)
		}
		ch := charset[rng.IntN(32)]
		if ch != s[i] {
			if _, err := Parse(s[:i] + string(ch) + s[i+1:]); !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNotCard) {
				t.Fatalf("substitution at %d: %v", i, err)
			}
		}
		if _, err := Parse(s[:i] + string(ch) + s[i:]); !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNotCard) {
			t.Fatalf("insertion at %d: %v", i, err)
		}
	}
}

// envelope wraps raw 5-bit data (version, lengths and all) with a valid checksum.
func envelope(t *testing.T, data []byte) string {
	t.Helper()
	s, err := bech32.EncodeM(hrp, data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wrapped(t *testing.T, ver byte, payload []byte) string {
	t.Helper()
	s, err := wrap(ver, payload)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// payloadOf builds a payload field by field (each value is appended as given: []byte raw,
// uint64 as a varint, string as length + bytes).
func payloadOf(fields ...any) []byte {
	var p []byte
	for _, f := range fields {
		switch v := f.(type) {
		case []byte:
			p = append(p, v...)
		case uint64:
			p = binary.AppendUvarint(p, v)
		case int:
			p = binary.AppendUvarint(p, uint64(v))
		case string:
			p = appendBytes(p, []byte(v))
		}
	}
	return p
}

func TestTextMalformed(t *testing.T) {
	c := typical(t)
	good := encodePayload(c)
	fr := encodePayload(free(t))
	id, _ := SellerID(c.Seller)
	fk := c.Feed[:]
	paidTail := func(sats, interval uint64, unit byte, methods []byte, network byte) []byte {
		p := payloadOf(sats, interval, []byte{unit}, len(methods), methods, []byte{network})
		return p
	}
	head := payloadOf(fk, string(id), "name", "desc", 0)
	five, _ := bech32.ConvertBits(good, 8, 5, true)
	n := len(five) + 7
	lenSyms := func(n int) []byte { return appendN(nil, n) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	cases := []struct {
		name string
		in   string
		want error
		text string
	}{
		{"empty", "   \n", ErrNotCard, "nothing to read"},
		{"words", "hello there", ErrNotCard, "starts with dzv1"},
		{"a 64-hex key", strings.Repeat("ab", 32), ErrNotCard, "a key, not a card"},
		{"damaged start", "dzvq" + c.String()[4:], ErrDamaged, "start of this one is damaged"},
		{"character outside the alphabet", c.String()[:20] + "b" + c.String()[21:], ErrDamaged, `contains 'b'`},
		{"non-ASCII character", c.String()[:20] + "é" + c.String()[21:], ErrDamaged, `contains 'é'`},
		{"too short", "dzv1qqqqqqqq", ErrDamaged, "too short"},
		{"cut short", c.String()[:200], ErrDamaged, "missing or extra"},
		{"too long for a card", Prefix + strings.Repeat("q", MaxTextLen), ErrTooLong, "at most"},
		{"too long to read", strings.Repeat("q", MaxInput+1), ErrTooLong, "at most"},
		{"lengths disagree (valid checksum)", envelope(t, cat([]byte{1}, lenSyms(n), five, lenSyms(n+1))), ErrDamaged, "missing or extra"},
		{"lengths agree but are wrong (valid checksum)", envelope(t, cat([]byte{1}, lenSyms(n+1), five, lenSyms(n+1))), ErrDamaged, "missing or extra"},
		{"non-zero padding", envelope(t, cat([]byte{1}, lenSyms(n), nonZeroPad(t, good), lenSyms(n))), ErrMalformed, "whole byte"},
		{"a whole symbol of padding", envelope(t, cat([]byte{1}, lenSyms(n+1), five, []byte{0}, lenSyms(n+1))), ErrMalformed, ""},
		{"trailing bytes", wrapped(t, 1, append(append([]byte{}, fr...), 0)), ErrMalformed, "1 unexpected bytes"},
		{"trailing bytes after a paid card", wrapped(t, 1, append(append([]byte{}, good...), 1, 2)), ErrMalformed, "2 unexpected bytes"},
		{"version 2", wrapped(t, 2, good), nil, "format version 2"},
		{"version 0", wrapped(t, 0, good), nil, "format version 0"},
		{"no feed key", wrapped(t, 1, good[:20]), ErrMalformed, "inside its feed key"},
		{"truncated in the peer ID", wrapped(t, 1, good[:40]), ErrMalformed, "ends inside its seller peer ID"},
		{"peer ID longer than its cap", wrapped(t, 1, payloadOf(fk, 65)), ErrMalformed, "more than 64"},
		{"peer ID not a multihash", wrapped(t, 1, payloadOf(fk, "\x12\x05abc", "n", "", 0, 0)), ErrInvalid, "not a multihash"},
		{"peer ID an md5 multihash", wrapped(t, 1, payloadOf(fk, "\xd5\x01\x02ab", "n", "", 0, 0)), ErrInvalid, "not a libp2p peer ID"},
		{"name longer than its cap (before allocating)", wrapped(t, 1, payloadOf(fk, string(id), uint64(1)<<40)), ErrMalformed, "more than 128"},
		{"name longer than the data", wrapped(t, 1, payloadOf(fk, string(id), 100, []byte("abc"))), ErrMalformed, "ends inside its name"},
		{"description over its cap", wrapped(t, 1, payloadOf(fk, string(id), "n", 1025)), ErrMalformed, "more than 1024"},
		{"name with an escape", wrapped(t, 1, payloadOf(fk, string(id), "a\x1bb", "", 0, 0)), ErrInvalid, "control character"},
		{"17 addresses", wrapped(t, 1, payloadOf(head[:len(head)-1], 17)), ErrMalformed, "more than 16"},
		{"address not a multiaddr", wrapped(t, 1, payloadOf(head[:len(head)-1], 1, "\xff\xff\xff", 0)), ErrMalformed, "address 1 is not a multiaddr"},
		{"address ends in /p2p", wrapped(t, 1, payloadOf(head[:len(head)-1], 1, string(mustAddrBytes(t, "/ip4/1.2.3.4/tcp/1/p2p/"+c.Seller)), 0)), ErrInvalid, "ends in /p2p/"},
		{"ends before the price", wrapped(t, 1, head), ErrMalformed, "ends before its price"},
		{"price over all bitcoin", wrapped(t, 1, cat(head, paidTail(2_100_000_000_000_001, 1, 3, []byte{1}, 1))), ErrMalformed, "more than 2100000000000000"},
		{"price over 64 bits", wrapped(t, 1, cat(head, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})), ErrMalformed, "does not fit in 64 bits"},
		{"price not in shortest form", wrapped(t, 1, cat(head, []byte{0x81, 0x00}, paidTail(0, 1, 3, []byte{1}, 1)[1:])), ErrMalformed, "shortest form"},
		{"interval 0", wrapped(t, 1, cat(head, paidTail(10, 0, 3, []byte{1}, 1))), ErrInvalid, "interval 0"},
		{"interval over its cap", wrapped(t, 1, cat(head, paidTail(10, 1_000_001, 3, []byte{1}, 1))), ErrMalformed, "more than 1000000"},
		{"unknown unit", wrapped(t, 1, cat(head, paidTail(10, 1, 4, []byte{1}, 1))), ErrMalformed, "time unit (code 4) is unknown"},
		{"unit 0", wrapped(t, 1, cat(head, paidTail(10, 1, 0, []byte{1}, 1))), ErrMalformed, "time unit (code 0) is unknown"},
		{"unknown method", wrapped(t, 1, cat(head, paidTail(10, 1, 3, []byte{3}, 1))), ErrMalformed, "payment method code 3 is unknown"},
		{"three methods", wrapped(t, 1, cat(head, paidTail(10, 1, 3, []byte{1, 2, 1}, 1))), ErrMalformed, "more than 2"},
		{"method twice", wrapped(t, 1, cat(head, paidTail(10, 1, 3, []byte{1, 1}, 1))), ErrInvalid, "listed twice"},
		{"no method", wrapped(t, 1, cat(head, paidTail(10, 1, 3, nil, 1))), ErrInvalid, "at least one payment method"},
		{"unknown network", wrapped(t, 1, cat(head, paidTail(10, 1, 3, []byte{1}, 6))), ErrMalformed, "network code 6 is unknown"},
		{"ends before the network", wrapped(t, 1, cat(head, paidTail(10, 1, 3, []byte{1}, 1)[:5])), ErrMalformed, "ends before its network"},
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
	var ve *VersionError
	if _, err := Parse(wrapped(t, 2, good)); !errors.As(err, &ve) || ve.Version != 2 {
		t.Errorf("version 2: %v", err)
	}
	// Every truncation of the payload is an error, never a panic or a different card.
	for i := 0; i < len(good); i++ {
		if _, err := Parse(wrapped(t, 1, good[:i])); err == nil {
			t.Errorf("payload cut to %d of %d bytes accepted", i, len(good))
		}
	}
}

func mustAddrBytes(t *testing.T, s string) []byte {
	t.Helper()
	m, err := checkAddrNoSuffixCheck(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkAddrNoSuffixCheck(s string) ([]byte, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, err
	}
	return m.Bytes(), nil
}

// nonZeroPad is the 5-bit form of p with a padding bit set (p's length must leave padding).
func nonZeroPad(t *testing.T, p []byte) []byte {
	five, _ := bech32.ConvertBits(p, 8, 5, true)
	if len(five)*5 == len(p)*8 {
		t.Fatal("payload has no padding")
	}
	five[len(five)-1] |= 1
	return five
}

// TestPastedText: a card is found in the text people paste around it, and its checksum still
// decides (a damaged card in a sentence is damaged, not "not a card").
func TestPastedText(t *testing.T) {
	c := typical(t)
	s := c.String()
	other := free(t).String()
	lines := func(n int, marker string) string {
		var b strings.Builder
		for i := 0; i < len(s); i += n {
			b.WriteString(marker)
			b.WriteString(s[i:min(i+n, len(s))])
			b.WriteString("\n")
		}
		return b.String()
	}
	j, _ := json.Marshal(c)
	for _, tc := range []struct{ name, in string }{
		{"full stop", s + "."},
		{"comma", s + ","},
		{"exclamation mark", s + "!"},
		{"double quotes", `"` + s + `"`},
		{"curly quotes", "\u201c" + s + "\u201d"},
		{"single curly quotes", "\u2018" + s + "\u2019."},
		{"backticks", "`" + s + "`"},
		{"Markdown code block", "```\n" + s + "\n```"},
		{"angle brackets", "<" + s + ">"},
		{"parentheses", "(" + s + ")"},
		{"in a sentence", "Watch my stream: " + s + " see you there"},
		{"in a sentence, upper case", "WATCH MY STREAM: " + strings.ToUpper(s) + " SEE YOU THERE"},
		{"wrapped in a sentence", "Watch my stream:\n" + lines(64, "") + "see you there!"},
		{"e-mail quote markers", "> Watch my stream:\n" + lines(70, "> ") + "> see you there"},
		{"nested e-mail quote markers", lines(60, ">> ")},
		{"after a bare prefix", "Cards start with dzv1, here is mine: " + s},
		{"the same card twice", s + "\n\n" + s},
		{"JSON in backticks", "`" + string(j) + "`"},
		{"JSON in a Markdown code block", "```json\n" + string(j) + "\n```"},
		{"JSON after a label", "card: " + string(j)},
		{"braces beside a text card", "see " + s + " {} {}"},
		{"JSON with words after it", string(j) + "\nEnjoy!"},
		{"in braces", "{" + s + "}"},
	} {
		got, err := Parse(tc.in)
		if err != nil || !got.Equal(c) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	damaged := s[:100] + "q" + s[101:]
	if damaged == s {
		damaged = s[:100] + "p" + s[101:]
	}
	for _, tc := range []struct {
		name string
		in   string
		want error
		text string
	}{
		{"two different cards", "Mine: " + s + " and hers: " + other, ErrSeveralCards, "only the card of the stream"},
		{"a card and a damaged one", s + "\n" + damaged, ErrSeveralCards, ""},
		{"mistyped, in a sentence", "Watch my stream: " + damaged + " see you there", ErrDamaged, "mistyped"},
		{"mistyped, in quotes", `"` + damaged + `".`, ErrDamaged, "mistyped"},
		{"a character missing, in a sentence", "Watch: " + s[:100] + s[101:] + " see you there", ErrDamaged, "missing or extra"},
		{"a character extra, in a sentence", "Watch: " + s[:100] + "q" + s[100:] + " bye", ErrDamaged, "missing or extra"},
		{"a character missing, wrapped", "Watch:\n" + s[:64] + "\n" + s[64:99] + s[100:] + "\nsee you there", ErrDamaged, "missing or extra"},
		{"damaged start, in a sentence", "Watch my stream: dzvq" + s[4:] + " see you", ErrDamaged, "start of this one is damaged"},
		{"damaged start, in quotes", `"dzvq` + s[4:] + `"`, ErrDamaged, "start of this one is damaged"},
		{"a comma inside", s[:100] + "," + s[100:], ErrDamaged, "contains ','"},
		{"cut short, in quotes", `"` + s[:200] + `"`, ErrDamaged, "missing or extra"},
		{"a sentence without a card", "Watch my stream tonight, see you there", ErrNotCard, ""},
		{"pages of words without a card", strings.Repeat("Watch my stream tonight, see you there. ", 300), ErrNotCard, ""},
		{"broken JSON", string(j[:len(j)/2]), ErrMalformed, "cut short"},
	} {
		got, err := Parse(tc.in)
		if err == nil {
			t.Errorf("%s: accepted as %+v", tc.name, got)
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: got %v, want %v saying %q", tc.name, err, tc.want, tc.text)
		}
	}
}
