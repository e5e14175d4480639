// Package card is a stream's card: the one pasteable string a broadcaster shares and a viewer
// pastes. It names the stream (its feed key, title and description), the seller (libp2p peer ID
// and addresses) and the price with the payment methods the seller accepts.
//
// A card has two forms. The text form (`dzv1…`, see Encode) is what people paste: lower-case
// letters and digits only, with a checksum that catches any single mistyped, dropped or added
// character. The JSON form (see MarshalJSON) keeps the original Dazaar card's fields where they
// fit and puts ours under "dazaarVision". Parse reads both, and recognises an original Dazaar
// card (a stream on the Hypercore network) with a ForeignCardError saying so. Parse finds the
// card in what people paste around it: a sentence, quotes, backticks, brackets, trailing
// punctuation, an e-mail's "> " quote markers on a re-wrapped card; the card's own length and
// checksum say where it ends, so a damaged card is still reported as damaged, and a paste with
// two different cards is refused (ErrSeveralCards).
package card

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// Method is a payment method a seller accepts.
type Method string

// The payment methods Dazaar Vision supports.
const (
	Lightning Method = "lightning" // BOLT11 invoices from the seller's LND
	OnChain   Method = "onchain"   // BIP21 on-chain addresses from a watch-only xpub
)

// Words is the method in plain words: "Lightning" or "on-chain bitcoin".
func (m Method) Words() string {
	switch m {
	case Lightning:
		return "Lightning"
	case OnChain:
		return "on-chain bitcoin"
	}
	return string(m)
}

// Networks a paid card's payments can be on.
var Networks = []string{"mainnet", "testnet", "signet", "regtest", "simnet"}

// Caps of a card's fields.
const (
	MaxName        = 128  // bytes of UTF-8
	MaxDescription = 1024 // bytes of UTF-8
	MaxAddrs       = 16
	MaxAddr        = 256 // bytes of an address's text form (and of its binary form)
	MaxPeerID      = 64  // bytes of a peer ID's binary form
)

// Card is a stream's card.
type Card struct {
	Name        string      // short title, <= 128 bytes UTF-8
	Description string      // <= 1024 bytes UTF-8
	Feed        [32]byte    // the feed key (Hypercore v10 compat public key or v11 manifest hash)
	Seller      string      // the seller's libp2p peer ID, as peer.ID.String() prints it (12D3Koo...)
	Addrs       []string    // the seller's multiaddrs (without /p2p/ suffix), <= 16, each <= 256 bytes
	Price       price.Price // price.Free when free
	Methods     []Method    // empty for a free stream; at least one for a paid one
	Network     string      // bitcoin network of the payments: mainnet, testnet, signet, regtest, simnet ("" when free)
}

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid card")

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Validate checks every rule of a card and says in plain words what is wrong.
func (c Card) Validate() error {
	if err := checkText("name", c.Name, MaxName, false); err != nil {
		return err
	}
	if err := checkText("description", c.Description, MaxDescription, true); err != nil {
		return err
	}
	if c.Feed == ([32]byte{}) {
		return invalidf("the feed key is missing (all zeros)")
	}
	if _, err := SellerID(c.Seller); err != nil {
		return err
	}
	if len(c.Addrs) > MaxAddrs {
		return invalidf("the card lists %d addresses; at most %d fit", len(c.Addrs), MaxAddrs)
	}
	for _, a := range c.Addrs {
		if _, err := checkAddr(a); err != nil {
			return err
		}
	}
	if err := c.Price.Validate(); err != nil {
		return invalidf("the price is not usable: %v", err)
	}
	if c.Price.IsFree() {
		if len(c.Methods) != 0 {
			return invalidf("a free stream takes no payment methods")
		}
		if c.Network != "" {
			return invalidf("a free stream has no payment network")
		}
		return nil
	}
	if len(c.Methods) == 0 {
		return invalidf("a paid stream needs at least one payment method (Lightning or on-chain bitcoin)")
	}
	seen := map[Method]bool{}
	for _, m := range c.Methods {
		if m != Lightning && m != OnChain {
			return invalidf("unknown payment method %q (Dazaar Vision supports Lightning and on-chain bitcoin)", string(m))
		}
		if seen[m] {
			return invalidf("payment method %s is listed twice", m.Words())
		}
		seen[m] = true
	}
	if networkCode(c.Network) == 0 {
		return invalidf("unknown bitcoin network %q (use %s)", c.Network, strings.Join(Networks, ", "))
	}
	return nil
}

// TextProblem is what is wrong with a card's name or description (TextError).
type TextProblem int

// Text problems.
const (
	TextTooLong   TextProblem = iota + 1 // over its cap (Len, Max)
	TextNotUTF8                          // not valid UTF-8
	TextControl                          // a control character (Rune) that could rewrite a terminal
	TextReorder                          // a character that reorders text on screen (Rune)
	TextInvisible                        // a line or paragraph separator or an invisible formatting character (Rune)
	TextEmpty                            // nothing visible in it
)

// TextError is a name or description a card refuses. Its Error is in the card's words; the
// fields let a form say it in its own (which character to remove).
type TextError struct {
	Field    string // "name" or "description"
	Problem  TextProblem
	Rune     rune // the character, for TextControl, TextReorder and TextInvisible
	Len, Max int  // for TextTooLong
}

func (e *TextError) Error() string {
	var m string
	switch e.Problem {
	case TextTooLong:
		m = fmt.Sprintf("the %s is %d bytes long; at most %d fit", e.Field, e.Len, e.Max)
	case TextNotUTF8:
		m = fmt.Sprintf("the %s is not valid UTF-8 text", e.Field)
	case TextControl, TextReorder:
		m = fmt.Sprintf("the %s contains the control character %U", e.Field, e.Rune)
	case TextInvisible:
		m = fmt.Sprintf("the %s contains the invisible character %U", e.Field, e.Rune)
	default:
		m = fmt.Sprintf("the %s has nothing visible in it", e.Field)
	}
	return ErrInvalid.Error() + ": " + m
}

// Unwrap makes a TextError an ErrInvalid.
func (e *TextError) Unwrap() error { return ErrInvalid }

// CheckName and CheckDescription check a stream's name or description as Validate does, so a
// form can refuse them before a card is made; the error is a *TextError.
func CheckName(s string) error        { return checkText("name", s, MaxName, false) }
func CheckDescription(s string) error { return checkText("description", s, MaxDescription, true) }

// checkText checks a name or description: valid UTF-8 within its cap, and no control
// characters that could rewrite a terminal or reorder text (newlines and tabs are allowed in
// a description).
func checkText(what, s string, max int, multiline bool) error {
	if len(s) > max {
		return &TextError{Field: what, Problem: TextTooLong, Len: len(s), Max: max}
	}
	if !utf8.ValidString(s) {
		return &TextError{Field: what, Problem: TextNotUTF8}
	}
	visible := false
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		switch {
		case unicode.IsControl(r):
			return &TextError{Field: what, Problem: TextControl, Rune: r}
		case isBidiControl(r):
			return &TextError{Field: what, Problem: TextReorder, Rune: r}
		case unicode.In(r, unicode.Zl, unicode.Zp) || (unicode.Is(unicode.Cf, r) && r != 0x200c && r != 0x200d):
			// Line and paragraph separators break a one-line name; formatting characters
			// (zero-width spaces, tags, the byte-order mark) hide text. Zero-width
			// (non-)joiners stay: emoji and several scripts need them.
			return &TextError{Field: what, Problem: TextInvisible, Rune: r}
		}
		if !unicode.IsSpace(r) && r != 0x200c && r != 0x200d && !unicode.Is(unicode.Mn, r) {
			visible = true
		}
	}
	if s != "" && !visible {
		return &TextError{Field: what, Problem: TextEmpty}
	}
	return nil
}

// isBidiControl reports the characters that reorder text on screen (a name could otherwise
// show a different text than it holds).
func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// SellerID parses a card's seller peer ID, which must be written the way peer.ID.String()
// writes it and name a key a libp2p node can authenticate (an inlined public key or a
// SHA-256 hash of one).
func SellerID(s string) (peer.ID, error) {
	if s == "" {
		return "", invalidf("the seller's peer ID is missing")
	}
	if len(s) > 2*MaxPeerID {
		return "", invalidf("the seller's peer ID is too long")
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", invalidf("the seller's peer ID %q is not a libp2p peer ID (they start 12D3KooW or Qm)", s)
	}
	if err := checkPeerBytes([]byte(id)); err != nil {
		return "", err
	}
	if id.String() != s {
		return "", invalidf("the seller's peer ID is written unusually; write it as %s", id.String())
	}
	return id, nil
}

func checkPeerBytes(b []byte) error {
	if len(b) > MaxPeerID {
		return invalidf("the seller's peer ID is %d bytes long; at most %d fit", len(b), MaxPeerID)
	}
	d, err := mh.Decode(b)
	if err != nil {
		return invalidf("the seller's peer ID is not a multihash: %v", err)
	}
	switch {
	case d.Code == mh.IDENTITY && d.Length > 0:
		if _, err := peer.ID(b).ExtractPublicKey(); err != nil {
			return invalidf("the seller's peer ID holds no usable public key: %v", err)
		}
	case d.Code == mh.SHA2_256 && d.Length == 32:
	default:
		return invalidf("the seller's peer ID is not a libp2p peer ID (multihash %s)", mh.Codes[d.Code])
	}
	return nil
}

// checkAddr checks one address's text form and returns it parsed.
func checkAddr(a string) (ma.Multiaddr, error) {
	if a == "" {
		return nil, invalidf("an address is empty")
	}
	if len(a) > MaxAddr {
		return nil, invalidf("an address is %d bytes long; at most %d fit", len(a), MaxAddr)
	}
	for i := 0; i < len(a); i++ {
		if a[i] <= ' ' || a[i] > '~' {
			return nil, invalidf("the address %q contains a character that is not printable ASCII", a)
		}
	}
	m, err := ma.NewMultiaddr(a)
	if err != nil || len(m) == 0 {
		return nil, invalidf("%q is not a libp2p address (multiaddr): %v", a, err)
	}
	if m.String() != a {
		return nil, invalidf("the address %q is written unusually; write it as %s", a, m.String())
	}
	if m[len(m)-1].Code() == ma.P_P2P {
		return nil, invalidf("the address %q ends in /p2p/…; the card names the seller's peer ID separately, so leave it off", a)
	}
	if len(m.Bytes()) > MaxAddr {
		return nil, invalidf("the address %q is too long", a)
	}
	return m, nil
}

var networkCodes = map[string]byte{"mainnet": 1, "testnet": 2, "signet": 3, "regtest": 4, "simnet": 5}

func networkCode(n string) byte { return networkCodes[n] }

func networkName(b byte) string {
	for n, c := range networkCodes {
		if c == b {
			return n
		}
	}
	return ""
}

// Terms are the card's price and payment methods in plain words for people: "Free" or
// "1000 sats per hour, pay with Lightning or on-chain bitcoin (simnet)". The network is named
// unless it is mainnet (other networks' coins are worthless test coins).
func (c Card) Terms() string {
	if c.Price.IsFree() {
		return "Free"
	}
	var ms []string
	for _, m := range c.Methods {
		ms = append(ms, m.Words())
	}
	s := c.Price.String()
	if len(ms) > 0 {
		s += ", pay with " + joinWords(ms, "or")
	}
	if c.Network != "" && c.Network != "mainnet" {
		s += " (" + c.Network + ")"
	}
	return s
}

// joinWords writes "a", "a or b", "a, b or c".
func joinWords(w []string, conj string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " " + conj + " " + w[len(w)-1]
}

// Equal reports whether two cards say the same thing (nil and empty lists are equal).
func (c Card) Equal(o Card) bool {
	if c.Name != o.Name || c.Description != o.Description || c.Feed != o.Feed || c.Seller != o.Seller ||
		c.Price != o.Price || c.Network != o.Network || len(c.Addrs) != len(o.Addrs) || len(c.Methods) != len(o.Methods) {
		return false
	}
	for i := range c.Addrs {
		if c.Addrs[i] != o.Addrs[i] {
			return false
		}
	}
	for i := range c.Methods {
		if c.Methods[i] != o.Methods[i] {
			return false
		}
	}
	return true
}

// String is the card's text form, or a note in parentheses saying why an invalid card has none.
func (c Card) String() string {
	s, err := Encode(c)
	if err != nil {
		return "(not a valid card: " + err.Error() + ")"
	}
	return s
}

// FitAddrs makes a node's addresses fit a card: it drops a trailing /p2p/… (the card names
// the peer separately), addresses a card cannot hold and repeats, and keeps the first
// MaxAddrs (put the ones viewers should try first, public ones, first).
func FitAddrs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if len(out) == MaxAddrs {
			break
		}
		if len(a) > 4*MaxAddr {
			continue
		}
		m, err := ma.NewMultiaddr(a)
		if err != nil || len(m) == 0 {
			continue
		}
		if m[len(m)-1].Code() == ma.P_P2P {
			m = m[:len(m)-1]
		}
		if len(m) == 0 {
			continue
		}
		s := m.String()
		if _, err := checkAddr(s); err != nil || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	return out
}
