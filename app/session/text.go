package session

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dazaarvision/dazaar-vision/app/card"
)

// CheckStreamText checks a stream's title and description as its card will (app/card's
// CheckName and CheckDescription), so a form refuses them before the camera, the feed or the
// network are opened, in words that say which character to remove. The text is taken as going
// live takes it (Windows line ends, a title trimmed).
func CheckStreamText(name, description string) error {
	name, description = streamText(name, description)
	if err := card.CheckName(name); err != nil {
		return textError("title", err)
	}
	if err := card.CheckDescription(description); err != nil {
		return textError("description", err)
	}
	return nil
}

// streamText is the title and description as a stream goes live with them.
func streamText(name, description string) (string, string) {
	description = strings.ReplaceAll(description, "\r\n", "\n")
	name = strings.TrimSpace(strings.ReplaceAll(name, "\r\n", " "))
	return name, description
}

// textError says a card's refusal of the title or description in words for the wizard and the
// command line, naming the character to remove.
func textError(what string, err error) error {
	var te *card.TextError
	if !errors.As(err, &te) {
		return fmt.Errorf("the %s cannot be put on the stream's card: %w", what, err)
	}
	switch te.Problem {
	case card.TextTooLong:
		return fmt.Errorf("the %s is %d bytes long; at most %d fit on a card", what, te.Len, te.Max)
	case card.TextNotUTF8:
		return fmt.Errorf("the %s is not valid text (it is not UTF-8)", what)
	case card.TextControl:
		return fmt.Errorf("the %s contains a control character (%s); remove it", what, runeName(te.Rune))
	case card.TextReorder:
		return fmt.Errorf("the %s contains a character that reorders text (%s); remove it", what, runeName(te.Rune))
	case card.TextInvisible:
		return fmt.Errorf("the %s contains an invisible character (%s); remove it", what, runeName(te.Rune))
	}
	return fmt.Errorf("the %s has nothing visible in it", what)
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
