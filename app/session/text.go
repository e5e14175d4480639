package session

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dazaarvision/dazaar-vision/app/card"
)

// CheckStreamText checks a stream's title and description as its card will (app/card's
// rules: length, control characters, characters that reorder text, invisible formatting
// characters, a title with nothing visible), so a form refuses them before the camera, the
// feed or the network are opened, in words that say which character to remove. The text is
// taken as going live takes it (Windows line ends, a title trimmed).
func CheckStreamText(name, description string) error {
	name, description = streamText(name, description)
	if err := checkCardText("title", name, card.MaxName, false); err != nil {
		return err
	}
	if err := checkCardText("description", description, card.MaxDescription, true); err != nil {
		return err
	}
	// The card's own check, whatever the words above missed.
	c := card.Card{Name: name, Description: description, Feed: [32]byte{1}, Seller: textCheckSeller}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("the title or the description cannot be put on the stream's card: %s", strings.TrimPrefix(err.Error(), card.ErrInvalid.Error()+": "))
	}
	return nil
}

// textCheckSeller is a well-formed peer ID (an Ed25519 key's), so that a card made to check a
// title and description fails on nothing else.
const textCheckSeller = "12D3KooWR2KSRQWyanR1dPvnZkXt296xgf3FFn8135szya3zYYwY"

// streamText is the title and description as a stream goes live with them.
func streamText(name, description string) (string, string) {
	description = strings.ReplaceAll(description, "\r\n", "\n")
	name = strings.TrimSpace(strings.ReplaceAll(name, "\r\n", " "))
	return name, description
}

// checkCardText is card's checkText in words for the wizard and the command line.
func checkCardText(what, s string, max int, multiline bool) error {
	if len(s) > max {
		return fmt.Errorf("the %s is %d bytes long; at most %d fit on a card", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("the %s is not valid text (it is not UTF-8)", what)
	}
	visible := false
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("the %s contains a control character (%s); remove it", what, runeName(r))
		case isBidiControl(r):
			return fmt.Errorf("the %s contains a character that reorders text (%s); remove it", what, runeName(r))
		case unicode.In(r, unicode.Zl, unicode.Zp) || (unicode.Is(unicode.Cf, r) && r != 0x200c && r != 0x200d):
			return fmt.Errorf("the %s contains an invisible character (%s); remove it", what, runeName(r))
		}
		if !unicode.IsSpace(r) && r != 0x200c && r != 0x200d && !unicode.Is(unicode.Mn, r) {
			visible = true
		}
	}
	if s != "" && !visible {
		return fmt.Errorf("the %s has nothing visible in it", what)
	}
	return nil
}

// isBidiControl is card's: the characters that reorder text on screen.
func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// runeNames are the names of the characters a pasted title or description may hide.
var runeNames = map[rune]string{
	'\t':   "a tab",
	'\n':   "a line break",
	'\r':   "a carriage return",
	0x1b:   "escape",
	0x7f:   "delete",
	0xad:   "soft hyphen",
	0x061c: "Arabic letter mark",
	0x180e: "Mongolian vowel separator",
	0x200b: "zero-width space",
	0x200e: "left-to-right mark",
	0x200f: "right-to-left mark",
	0x2028: "line separator",
	0x2029: "paragraph separator",
	0x202a: "left-to-right embedding",
	0x202b: "right-to-left embedding",
	0x202c: "pop directional formatting",
	0x202d: "left-to-right override",
	0x202e: "right-to-left override",
	0x2060: "word joiner",
	0x2066: "left-to-right isolate",
	0x2067: "right-to-left isolate",
	0x2068: "first strong isolate",
	0x2069: "pop directional isolate",
	0xfeff: "byte-order mark",
}

// runeName names r for people: its name when known, else its code point (U+00AD).
func runeName(r rune) string {
	if n, ok := runeNames[r]; ok {
		return n
	}
	if r >= 0xe0000 && r <= 0xe007f {
		return fmt.Sprintf("a tag character, %U", r)
	}
	return fmt.Sprintf("%U", r)
}
