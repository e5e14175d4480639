package card

import (
	"fmt"
	"strings"
)

// Parse reads a card in text form (dzv1…) or JSON form. It trims surrounding whitespace and
// ignores the spaces and line breaks chat apps insert inside the text form. Its errors say
// in plain words what is wrong: ErrNotCard, ErrDamaged (a mistyped, missing or extra
// character), ErrTooLong, ErrMalformed, ErrInvalid (wrapped), *VersionError,
// *ForeignCardError (an original Dazaar card) or *UnsupportedMethodsError.
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
		return parseJSON([]byte(t))
	case len(t) == 64 && isHex(t):
		return Card{}, Report{}, fmt.Errorf("%w: 64 hexadecimal digits are a key, not a card (an original Dazaar stream's key lives on the Hypercore network; a Dazaar Vision card starts with %s)", ErrNotCard, Prefix)
	}
	c, err := parseText(t)
	return c, Report{}, err
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
