package card

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// The text form (version 1):
//
//	"dzv1" ‖ bech32 data symbols ‖ 6-symbol bech32m checksum (over "dzv" and the data)
//
// data (5-bit symbols) = version ‖ N (3 symbols, 15 bits, big-endian) ‖ payload ‖ N again,
// where N is the number of data symbols (without the checksum) and payload is the binary
// payload below in 5-bit groups (zero-padded, at most 4 bits of padding).
//
// Why it catches every single mistake, at any length: a single substituted symbol adds
// e·x^i to the checksummed polynomial, and bech32m's degree-6 generator (non-zero constant
// term) never divides e·x^i, so the checksum always fails. A single dropped or added symbol
// after "dzv1" leaves either the first 4 data symbols or the last 9 untouched (a card has
// more than 13 data symbols), so one of the two copies of N still reads the old length and
// disagrees with the new one. A change inside "dzv1" changes the prefix, and '1' is not a
// data symbol. Anything else (a character outside the alphabet) is refused as such.
//
// payload (version 1), integers are unsigned LEB128 varints in their shortest form:
//
//	feed key [32] ‖ len ‖ seller peer ID bytes ‖ len ‖ name ‖ len ‖ description ‖
//	count ‖ (len ‖ multiaddr bytes)* ‖ sats ‖ if sats > 0: interval ‖ unit u8 (1 s, 2 min, 3 h) ‖
//	count ‖ method u8* (1 Lightning, 2 on-chain) ‖ network u8 (1 mainnet, 2 testnet, 3 signet,
//	4 regtest, 5 simnet)
//
// Every length is checked against its field's cap and the bytes left before it is used, and
// nothing may follow the last field.
const (
	// Prefix starts every card in text form.
	Prefix  = "dzv1"
	hrp     = "dzv"
	version = 1

	maxPayload = 32 + (2 + MaxPeerID) + (2 + MaxName) + (2 + MaxDescription) +
		1 + MaxAddrs*(2+MaxAddr) + 10 + 5 + 1 + 1 + 2 + 1
	maxSymbols = (maxPayload*8+4)/5 + 7
	// MaxTextLen is the longest card in text form, without inserted spaces and line breaks.
	MaxTextLen = len(Prefix) + maxSymbols + 6
	// MaxInput is the most Parse reads (a text card with room for line breaks, or JSON).
	MaxInput = 64 << 10
)

const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// Errors of the text form. Each is wrapped with details in plain words.
var (
	ErrNotCard   = errors.New("this is not a Dazaar Vision card")
	ErrDamaged   = errors.New("the card is damaged")
	ErrTooLong   = errors.New("the card is too long")
	ErrMalformed = errors.New("the card's contents are malformed")
	// ErrSeveralCards is pasted text holding more than one card (not all the same).
	ErrSeveralCards = errors.New("there is more than one card here")
)

// VersionError is a card written by a newer (or unknown) version of the format.
type VersionError struct{ Version int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("this card is in format version %d, which this Dazaar Vision cannot read; update the app to open it", e.Version)
}

// Encode writes the card's text form. The card must be valid.
func Encode(c Card) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	return wrap(version, encodePayload(c))
}

// encodePayload writes a valid card's binary payload.
func encodePayload(c Card) []byte {
	p := make([]byte, 0, 256)
	p = append(p, c.Feed[:]...)
	id, _ := SellerID(c.Seller)
	p = appendBytes(p, []byte(id))
	p = appendBytes(p, []byte(c.Name))
	p = appendBytes(p, []byte(c.Description))
	p = binary.AppendUvarint(p, uint64(len(c.Addrs)))
	for _, a := range c.Addrs {
		m, _ := checkAddr(a)
		p = appendBytes(p, m.Bytes())
	}
	p = binary.AppendUvarint(p, c.Price.Sats)
	if !c.Price.IsFree() {
		p = binary.AppendUvarint(p, uint64(c.Price.Interval))
		p = append(p, byte(c.Price.Unit))
		p = binary.AppendUvarint(p, uint64(len(c.Methods)))
		for _, m := range c.Methods {
			p = append(p, methodCode(m))
		}
		p = append(p, networkCode(c.Network))
	}
	return p
}

// wrap puts a payload in the text envelope: version, the two copies of the length, the checksum.
func wrap(ver byte, payload []byte) (string, error) {
	five, err := bech32.ConvertBits(payload, 8, 5, true)
	if err != nil {
		return "", err
	}
	n := len(five) + 7
	if n >= 1<<15 {
		return "", fmt.Errorf("%w: its payload is %d bytes", ErrTooLong, len(payload))
	}
	data := make([]byte, 0, n)
	data = append(data, ver)
	data = appendN(data, n)
	data = append(data, five...)
	data = appendN(data, n)
	return bech32.EncodeM(hrp, data)
}

func appendBytes(p, b []byte) []byte {
	p = binary.AppendUvarint(p, uint64(len(b)))
	return append(p, b...)
}

func appendN(d []byte, n int) []byte {
	return append(d, byte(n>>10&31), byte(n>>5&31), byte(n&31))
}

func readN(d []byte) int { return int(d[0])<<10 | int(d[1])<<5 | int(d[2]) }

func methodCode(m Method) byte {
	switch m {
	case Lightning:
		return 1
	case OnChain:
		return 2
	}
	return 0
}

// isSymbolChar reports whether r can be one of a card's characters after "dzv1": an ASCII
// letter or digit (b, i, o and 1 are not in the alphabet, but are read as part of the card so
// that they are reported as damage).
func isSymbolChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// invisible are the characters chat apps insert that clean drops.
func invisible(r rune) bool {
	return r == 0x200b || r == 0x200c || r == 0x200d || r == 0x2060 || r == 0xfeff || r == 0xad
}

// prefixAt returns the index of the next "dzv1" (any case) in t at or after i that does not
// follow a letter or digit, or -1.
func prefixAt(t string, i int) int {
	for ; i+len(Prefix) <= len(t); i++ {
		if t[i]|0x20 == 'd' && t[i+1]|0x20 == 'z' && t[i+2]|0x20 == 'v' && t[i+3] == '1' &&
			(i == 0 || !isSymbolChar(rune(t[i-1]))) {
			return i
		}
	}
	return -1
}

// scanCard reads the card whose "dzv1" is at t[i:]: its characters, across the spaces, line
// breaks, invisible characters and line-start "> " quote markers a pasted card may hold. The
// card's first data symbols give its length (N, plus the checksum); it ends at the first gap
// (whitespace, or a character that cannot be part of a card) once that many symbols are read,
// so the words of a sentence after it are left out, and a card one character short or long
// still ends at its own last character. It returns the card's characters (for clean and
// parseText) and the index in t where it ends.
func scanCard(t string, i int) (string, int) {
	var b strings.Builder
	b.WriteString(t[i : i+len(Prefix)])
	j := i + len(Prefix)
	n, want := 0, -1
	var head [4]int
	lineStart := false
	for j < len(t) {
		r, size := utf8.DecodeRuneInString(t[j:])
		switch {
		case isSymbolChar(r):
			if n < len(head) {
				head[n] = strings.IndexByte(charset, byte(r)|0x20)
			}
			n++
			if n == len(head) && head[1] >= 0 && head[2] >= 0 && head[3] >= 0 {
				want = readN([]byte{byte(head[1]), byte(head[2]), byte(head[3])}) + 6
			}
			b.WriteRune(r)
			j += size
			lineStart = false
			continue
		case r == '\n':
			lineStart = true
		case lineStart && r == '>', unicode.IsSpace(r), invisible(r):
		default:
			return b.String(), j // a character that cannot be part of a card
		}
		if want >= 0 && n >= want {
			return b.String(), j
		}
		j += size
	}
	return b.String(), j
}

// findText finds the card in pasted text (already trimmed) and reads it.
func findText(t string) (Card, error) {
	type found struct {
		text string
		end  int
	}
	var cards []found
	for i := prefixAt(t, 0); i >= 0 && len(cards) < 8; i = prefixAt(t, i) {
		text, end := scanCard(t, i)
		cards = append(cards, found{text, end})
		i = end
	}
	// A bare "dzv1" in a sentence ("cards start with dzv1") is not a card when another one is.
	var real []found
	for _, f := range cards {
		if len(f.text) >= len(Prefix)+7+6 {
			real = append(real, f)
		}
	}
	if len(real) == 0 && len(cards) > 0 {
		real = cards[:1]
	}
	switch len(real) {
	case 0:
		return parseUnfound(t)
	case 1:
		c, err := parseText(real[0].text)
		if err != nil && errors.Is(err, ErrDamaged) {
			// A character that is not a card's between a card's characters: the card is
			// damaged there (it is the message the whole card would give).
			end := real[0].end
			if r, size := utf8.DecodeRuneInString(t[end:]); end < len(t) && !unicode.IsSpace(r) {
				if next, _ := utf8.DecodeRuneInString(t[end+size:]); end+size < len(t) && isSymbolChar(next) {
					return Card{}, fmt.Errorf("%w: it contains %q, which is not one of a card's characters (a card has only letters and digits, and after %s no b, i, o or 1)", ErrDamaged, r, Prefix)
				}
			}
		}
		return c, err
	}
	var first Card
	for k, f := range real {
		c, err := parseText(f.text)
		if err != nil || (k > 0 && !c.Equal(first)) {
			return Card{}, fmt.Errorf("%w: the text holds %d cards (or pieces of cards); paste only the card of the stream you want to watch", ErrSeveralCards, len(real))
		}
		if k == 0 {
			first = c
		}
	}
	return first, nil
}

// parseUnfound reads text without a "dzv1" at the start of a word: a card whose start is
// damaged (perhaps in quotes or brackets, or a word in a sentence), or not a card at all.
func parseUnfound(t string) (Card, error) {
	for _, w := range strings.FieldsFunc(t, func(r rune) bool { return !isSymbolChar(r) }) {
		if len(w) >= len(Prefix)+7+6 && damagedPrefix(strings.ToLower(w)) {
			return Card{}, fmt.Errorf("%w: a card starts with %s; the start of this one is damaged", ErrDamaged, Prefix)
		}
	}
	return parseText(t)
}

// clean removes the spaces, line breaks and invisible characters chat apps insert, and
// lower-cases the rest (an app may capitalise the first letter).
func clean(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsSpace(r), invisible(r):
			continue
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		}
		if b.Len() >= MaxTextLen {
			return "", fmt.Errorf("%w: a card is at most %d characters", ErrTooLong, MaxTextLen)
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}

// damagedPrefix reports whether t starts like a card whose "dzv1" lost, gained or changed
// a character.
func damagedPrefix(t string) bool {
	head := t[:min(len(t), 6)]
	for _, s := range []string{"dzv", "zv1", "dz1", "dv1"} {
		if strings.Contains(head, s) {
			return true
		}
	}
	return false
}

// parseText reads a card's text form (already trimmed).
func parseText(s string) (Card, error) {
	t, err := clean(s)
	if errors.Is(err, ErrTooLong) {
		// Too long for a card, but is it one? Long words without one are not a card at all.
		head := []rune(s)
		head = head[:min(len(head), 64)]
		if h, _ := clean(string(head)); !strings.HasPrefix(h, Prefix) && !damagedPrefix(h) {
			return Card{}, fmt.Errorf("%w (a card starts with %s, or is JSON)", ErrNotCard, Prefix)
		}
	}
	if err != nil {
		return Card{}, err
	}
	if !strings.HasPrefix(t, Prefix) {
		if damagedPrefix(t) {
			return Card{}, fmt.Errorf("%w: a card starts with %s; the start of this one is damaged", ErrDamaged, Prefix)
		}
		return Card{}, fmt.Errorf("%w (a card starts with %s, or is JSON)", ErrNotCard, Prefix)
	}
	body := t[len(Prefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(charset, body[i]) < 0 {
			r, _ := utf8.DecodeRuneInString(body[i:])
			return Card{}, fmt.Errorf("%w: it contains %q, which is not one of a card's characters (a card has only letters and digits, and after %s no b, i, o or 1)", ErrDamaged, r, Prefix)
		}
	}
	if len(body) < 7+6 {
		return Card{}, fmt.Errorf("%w: it is too short; copy the whole card", ErrDamaged)
	}
	var sym [6]byte
	for i := range sym {
		sym[i] = byte(strings.IndexByte(charset, body[i]))
	}
	front := readN(sym[1:4])
	for i := range 3 {
		sym[i] = byte(strings.IndexByte(charset, body[len(body)-9+i]))
	}
	back := readN(sym[:3])
	actual := len(body) - 6
	lengthOK := front == actual && back == actual

	h, data, v, err := bech32.DecodeNoLimitWithVersion(t)
	if err != nil || h != hrp || v != bech32.VersionM {
		if front != actual && back != actual {
			return Card{}, fmt.Errorf("%w: a character is missing or extra; copy the whole card again", ErrDamaged)
		}
		return Card{}, fmt.Errorf("%w: a character is mistyped, missing or extra; copy the whole card again", ErrDamaged)
	}
	if !lengthOK {
		return Card{}, fmt.Errorf("%w: a character is missing or extra; copy the whole card again", ErrDamaged)
	}
	if data[0] != version {
		return Card{}, &VersionError{Version: int(data[0])}
	}
	payload, err := bech32.ConvertBits(data[4:len(data)-3], 5, 8, false)
	if err != nil {
		return Card{}, fmt.Errorf("%w: its data does not end on a whole byte", ErrMalformed)
	}
	return decodePayload(payload)
}

// reader reads the payload, checking every length against its cap and the bytes left.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
	}
}

func (r *reader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.fail("it ends before its %s", what)
		return 0
	case n < 0:
		r.fail("its %s does not fit in 64 bits", what)
		return 0
	case n != len(binary.AppendUvarint(nil, v)):
		r.fail("its %s is not written in its shortest form", what)
		return 0
	case v > max:
		r.fail("its %s is %d, more than %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(what string, max int) []byte {
	n := r.uvarint("length of its "+what, uint64(max))
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("it ends inside its %s", what)
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("it ends before its %s", what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func decodePayload(p []byte) (Card, error) {
	var c Card
	if len(p) < 32 {
		return Card{}, fmt.Errorf("%w: it ends inside its feed key", ErrMalformed)
	}
	copy(c.Feed[:], p)
	r := &reader{b: p[32:]}
	id := r.bytes("seller peer ID", MaxPeerID)
	if r.err == nil {
		if err := checkPeerBytes(id); err != nil {
			return Card{}, err
		}
		c.Seller = peer.ID(id).String()
	}
	c.Name = string(r.bytes("name", MaxName))
	c.Description = string(r.bytes("description", MaxDescription))
	n := r.uvarint("number of addresses", MaxAddrs)
	for i := uint64(0); i < n && r.err == nil; i++ {
		b := r.bytes("address", MaxAddr)
		if r.err != nil {
			break
		}
		m, err := ma.NewMultiaddrBytes(b)
		if err != nil || len(m) == 0 {
			return Card{}, fmt.Errorf("%w: address %d is not a multiaddr (%v)", ErrMalformed, i+1, err)
		}
		c.Addrs = append(c.Addrs, m.String())
	}
	c.Price.Sats = r.uvarint("price", price.MaxSats)
	if c.Price.Sats > 0 {
		c.Price.Interval = uint32(r.uvarint("price's interval", price.MaxInterval))
		u := r.byte("price's unit")
		if r.err == nil && (u < byte(price.Second) || u > byte(price.Hour)) {
			r.fail("its price's time unit (code %d) is unknown", u)
		}
		c.Price.Unit = price.Unit(u)
		k := r.uvarint("number of payment methods", 2)
		for i := uint64(0); i < k && r.err == nil; i++ {
			switch m := r.byte("payment method"); m {
			case 1:
				c.Methods = append(c.Methods, Lightning)
			case 2:
				c.Methods = append(c.Methods, OnChain)
			default:
				r.fail("payment method code %d is unknown", m)
			}
		}
		nw := r.byte("network")
		if r.err == nil {
			c.Network = networkName(nw)
			if c.Network == "" {
				r.fail("network code %d is unknown", nw)
			}
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d unexpected bytes follow its last field", len(r.b))
	}
	if r.err != nil {
		return Card{}, r.err
	}
	if err := c.Validate(); err != nil {
		return Card{}, err
	}
	return c, nil
}
