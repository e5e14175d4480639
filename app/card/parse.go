package card

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Parse reads a card in text form (dzv1…) or JSON form. It finds the card in pasted text: in
// a sentence, in quotes, backticks, brackets or parentheses, followed by punctuation, broken over
// lines (also with an e-mail's "> " quote markers), with the spaces and invisible characters chat
// apps insert; the card's own length and checksum say where it ends. A JSON card may likewise sit
// in Markdown backticks or after a label ("card: {…}"). Its errors say in plain words what is
// wrong: ErrNotCard, ErrDamaged (a mistyped, missing or extra character), ErrTooLong,
// ErrMalformed, ErrInvalid (wrapped), ErrSeveralCards, *VersionError, *ForeignCardError (an
// original Dazaar card) or *UnsupportedMethodsError.
func Parse(s string) (Card, error) {
	c, _, err := ParseReport(s)
	return c, err
}

// ParseReport is Parse that also reports what it left out (payment options of a JSON card
// that Dazaar Vision does not support).
func ParseReport(s string) (Card, Report, error) {
	if len(s) > MaxInput {
		return Card{}, Report{}, fmt.Errorf("%w: it is %d bytes; a card is at most %d", ErrTooLong, len(s), MaxInput)
	}
	t := strings.TrimSpace(strings.TrimPrefix(s, "\ufeff"))
	switch {
	case t == "":
		return Card{}, Report{}, fmt.Errorf("%w: there is nothing to read (paste a card: it starts with %s)", ErrNotCard, Prefix)
	case t[0] == '{':
		c, r, err := parseJSON([]byte(t))
		if err == nil {
			return c, r, nil
		}
		// Not JSON as a whole: a JSON card with words after it, or a text card in braces.
		if j, ok := embeddedJSON(t); ok && j != t {
			return parseJSON([]byte(j))
		}
		if prefixAt(t, 0) >= 0 {
			if c, terr := findText(t); terr == nil {
				return c, Report{}, nil
			}
		}
		return Card{}, Report{}, err
	case len(t) == 64 && isHex(t):
		return Card{}, Report{}, fmt.Errorf("%w: 64 hexadecimal digits are a key, not a card (an original Dazaar stream's key lives on the Hypercore network; a Dazaar Vision card starts with %s)", ErrNotCard, Prefix)
	}
	if j, ok := embeddedJSON(t); ok {
		return parseJSON([]byte(j))
	}
	c, err := findText(t)
	return c, Report{}, err
}

// embeddedJSON finds a JSON object in pasted text (in Markdown backticks, after "card: "): from
// the first '{' to the last '}', when that is valid JSON and no text card stands beside it.
func embeddedJSON(t string) (string, bool) {
	i, j := strings.IndexByte(t, '{'), strings.LastIndexByte(t, '}')
	if i < 0 || j < i || !json.Valid([]byte(t[i:j+1])) || prefixAt(t[:i], 0) >= 0 || prefixAt(t[j+1:], 0) >= 0 {
		return "", false
	}
	return t[i : j+1], true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
