package card

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// The JSON form keeps the original Dazaar card's fields where they fit and puts the rest
// under "dazaarVision":
//
//	{"id": "<feed key hex>", "name": "...", "description": "...",
//	 "payment": [{"method": "Lightning", "currency": "SATS", "amount": 1000, "interval": 1, "unit": "hours"},
//	             {"method": "Bitcoin", "currency": "SATS", ...}],
//	 "dazaarVision": {"version": 1, "peer": "12D3Koo...", "addrs": ["/ip4/..."], "network": "mainnet"}}
//
// Reading is lenient the way cards in the wild need: payment may be [], null, absent or a
// single object; amount and interval may be strings or numbers; Lightning's currency may be
// SATS, BTC or the legacy LightningSats/LightningBTC; units are seconds, minutes or hours;
// payment methods Dazaar Vision does not support are ignored (and reported) when a supported
// one is offered too. A card without "dazaarVision" but with an "id" or "sellerKey" is an
// original Dazaar card: a ForeignCardError.

type jsonOurs struct {
	Version int      `json:"version"`
	Peer    string   `json:"peer"`
	Addrs   []string `json:"addrs"`
	Network string   `json:"network,omitempty"`
}

type jsonPaymentOut struct {
	Method   string `json:"method"`
	Currency string `json:"currency"`
	Amount   uint64 `json:"amount"`
	Interval uint32 `json:"interval"`
	Unit     string `json:"unit"`
}

type jsonCardOut struct {
	ID           string           `json:"id"`
	Name         string           `json:"name"`
	Description  string           `json:"description,omitempty"`
	Payment      []jsonPaymentOut `json:"payment"`
	DazaarVision jsonOurs         `json:"dazaarVision"`
}

// MarshalJSON writes the card's JSON form. The card must be valid.
func (c Card) MarshalJSON() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	out := jsonCardOut{
		ID:           hex.EncodeToString(c.Feed[:]),
		Name:         c.Name,
		Description:  c.Description,
		Payment:      []jsonPaymentOut{},
		DazaarVision: jsonOurs{Version: version, Peer: c.Seller, Addrs: c.Addrs, Network: c.Network},
	}
	if out.DazaarVision.Addrs == nil {
		out.DazaarVision.Addrs = []string{}
	}
	for _, m := range c.Methods {
		p := jsonPaymentOut{Currency: "SATS", Amount: c.Price.Sats, Interval: c.Price.Interval, Unit: c.Price.Unit.String()}
		switch m {
		case Lightning:
			p.Method = "Lightning"
		case OnChain:
			p.Method = "Bitcoin"
		}
		out.Payment = append(out.Payment, p)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the card's JSON form (see Parse for the errors).
func (c *Card) UnmarshalJSON(b []byte) error {
	if len(b) > MaxInput {
		return fmt.Errorf("%w: a card is at most %d bytes", ErrTooLong, MaxInput)
	}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil // JSON's convention: null leaves the value as it is
	}
	got, _, err := parseJSON(b)
	if err != nil {
		return err
	}
	*c = got
	return nil
}

type jsonPaymentIn struct {
	Method   string          `json:"method"`
	Currency string          `json:"currency"`
	Amount   json.RawMessage `json:"amount"`
	Interval json.RawMessage `json:"interval"`
	Unit     string          `json:"unit"`
}

type jsonCardIn struct {
	ID           *string         `json:"id"`
	SellerKey    *string         `json:"sellerKey"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Payment      json.RawMessage `json:"payment"`
	DazaarVision *jsonOurs       `json:"dazaarVision"`
}

// maxPayments bounds a card's payment options.
const maxPayments = 16

// UnsupportedMethodsError is a card whose payment options are all ones Dazaar Vision does
// not support.
type UnsupportedMethodsError struct {
	Methods []string // as the card names them, e.g. "ETH", "USDT (ETH)"
}

func (e *UnsupportedMethodsError) Error() string {
	return fmt.Sprintf("this card only accepts %s, which Dazaar Vision does not support; it supports Lightning and on-chain bitcoin", joinWords(e.Methods, "and"))
}

// ForeignCardError is an original Dazaar card: its stream lives on the Hypercore/Dazaar
// network, which Dazaar Vision does not join.
type ForeignCardError struct {
	ID       string        // the seller's key as the card gives it (64 hex digits in real cards)
	Name     string        // the card's name
	Payments []ForeignTerm // the payment options it could read
	Unread   int           // payment options it could not read
}

// ForeignTerm is one payment option of an original Dazaar card.
type ForeignTerm struct {
	Method   string // as written: "Lightning", "ln", "ETH", ...
	Currency string // "SATS", "BTC", "USDT", ...
	Amount   string // decimal, as written
	Interval uint64
	Unit     string // seconds, minutes or hours
}

// String is the option in plain words: "100 sats per 1 hour via Lightning".
func (t ForeignTerm) String() string {
	unit := t.Unit
	if t.Interval == 1 {
		unit = strings.TrimSuffix(unit, "s")
	}
	return fmt.Sprintf("%s %s per %d %s via %s", t.Amount, currencyWords(t.Currency), t.Interval, unit, methodWords(t.Method, t.Currency))
}

func currencyWords(c string) string {
	switch strings.ToLower(c) {
	case "sats", "sat", "lightningsats":
		return "sats"
	case "btc", "lightningbtc":
		return "BTC"
	}
	return c
}

func methodWords(method, currency string) string {
	switch classify(method, currency) {
	case Lightning:
		return "Lightning"
	case OnChain:
		return "on-chain bitcoin"
	}
	return method
}

// Terms are the card's terms in plain words: "Free", or its options joined with "or".
func (e *ForeignCardError) Terms() string {
	if len(e.Payments) == 0 {
		if e.Unread > 0 {
			return "terms Dazaar Vision could not read"
		}
		return "Free"
	}
	var w []string
	for _, p := range e.Payments {
		w = append(w, p.String())
	}
	return joinWords(w, "or")
}

func (e *ForeignCardError) Error() string {
	name := ""
	if e.Name != "" {
		name = fmt.Sprintf(" for %q", e.Name)
	}
	return fmt.Sprintf("this is an original Dazaar card%s (%s): that stream lives on the Hypercore/Dazaar network, not on Dazaar Vision's, so Dazaar Vision cannot play it", name, e.Terms())
}

// classify maps a payment option to a method Dazaar Vision supports, or "".
func classify(method, currency string) Method {
	m := strings.ToLower(strings.TrimSpace(method))
	c := strings.ToLower(strings.TrimSpace(currency))
	switch {
	case m == "lightning" || m == "ln" || (m == "" && (c == "lightningsats" || c == "lightningbtc")):
		return Lightning
	case m == "bitcoin" || m == "btc" || m == "onchain" || m == "on-chain":
		return OnChain
	}
	return ""
}

// label names an unsupported option the way people know it: "ETH", "USDT (ETH)".
func label(method, currency string) string {
	method, currency = printable(strings.TrimSpace(method), 32), printable(strings.TrimSpace(currency), 32)
	switch {
	case method == "":
		return currency
	case currency == "" || strings.EqualFold(currency, method):
		return method
	}
	return currency + " (" + method + ")"
}

// readPayments reads "payment": an array, a single object, null or absent.
func readPayments(raw json.RawMessage) ([]jsonPaymentIn, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var ps []jsonPaymentIn
	if raw[0] == '{' {
		var p jsonPaymentIn
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("%w: its payment option cannot be read: %v", ErrMalformed, err)
		}
		ps = []jsonPaymentIn{p}
	} else if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, fmt.Errorf("%w: its payment list cannot be read: %v", ErrMalformed, err)
	}
	if len(ps) > maxPayments {
		return nil, fmt.Errorf("%w: it lists %d payment options; at most %d fit", ErrMalformed, len(ps), maxPayments)
	}
	return ps, nil
}

// decimal reads a JSON number or a string holding one, refusing negative numbers and ones
// too long or too large to be an amount. It returns the digits without a decimal point and
// the power of ten they are scaled by (value = digits × 10^exp), and the text as written.
func decimal(raw json.RawMessage, what string) (digits string, exp int, text string, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", 0, "", fmt.Errorf("%w: the %s is missing", ErrMalformed, what)
	}
	text = string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", 0, "", fmt.Errorf("%w: the %s cannot be read", ErrMalformed, what)
		}
		text = strings.TrimSpace(text)
	}
	if len(text) > 40 {
		return "", 0, "", fmt.Errorf("%w: the %s %.40q… is too long to be a number", ErrMalformed, what, text)
	}
	s := text
	if strings.HasPrefix(s, "-") {
		return "", 0, "", fmt.Errorf("%w: the %s %s is negative", ErrMalformed, what, text)
	}
	s = strings.TrimPrefix(s, "+")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, perr := strconv.Atoi(s[i+1:])
		if perr != nil || e < -40 || e > 40 {
			return "", 0, "", fmt.Errorf("%w: the %s %q is not a number", ErrMalformed, what, text)
		}
		exp, s = e, s[:i]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" || !allDigits(intPart) || !allDigits(frac) {
		return "", 0, "", fmt.Errorf("%w: the %s %q is not a number", ErrMalformed, what, text)
	}
	digits = strings.TrimLeft(intPart+frac, "0")
	exp -= len(frac)
	for strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" {
		exp = 0
	}
	return digits, exp, text, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// whole is digits × 10^exp as a whole number no larger than max.
func whole(digits string, exp int, text, what string, max uint64) (uint64, error) {
	if digits == "" {
		return 0, nil
	}
	if exp < 0 {
		return 0, fmt.Errorf("%w: the %s %s is not a whole number", ErrMalformed, what, text)
	}
	if len(digits)+exp > 20 {
		return 0, fmt.Errorf("%w: the %s %s is too large", ErrMalformed, what, text)
	}
	v, err := strconv.ParseUint(digits+strings.Repeat("0", exp), 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%w: the %s %s is too large", ErrMalformed, what, text)
	}
	return v, nil
}

func readUnit(s string) (price.Unit, string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "second", "seconds":
		return price.Second, "seconds", nil
	case "minute", "minutes":
		return price.Minute, "minutes", nil
	case "hour", "hours":
		return price.Hour, "hours", nil
	case "":
		return 0, "", fmt.Errorf("%w: a payment option has no time unit (seconds, minutes or hours)", ErrMalformed)
	}
	return 0, "", fmt.Errorf("%w: the time unit %q is unknown (use seconds, minutes or hours)", ErrMalformed, s)
}

// readPrice reads a supported option's price in sats.
func readPrice(p jsonPaymentIn) (price.Price, error) {
	var scale int
	switch strings.ToLower(strings.TrimSpace(p.Currency)) {
	case "sats", "sat", "lightningsats":
	case "btc", "lightningbtc":
		scale = 8
	default:
		return price.Price{}, fmt.Errorf("%w: the currency %q is not one Dazaar Vision knows for %s (use SATS or BTC)", ErrMalformed, p.Currency, methodWords(p.Method, p.Currency))
	}
	d, e, text, err := decimal(p.Amount, "amount")
	if err != nil {
		return price.Price{}, err
	}
	sats, err := whole(d, e+scale, text, "amount (in sats)", price.MaxSats)
	if err != nil {
		return price.Price{}, err
	}
	if sats == 0 {
		return price.Price{}, fmt.Errorf("%w: a payment option costs 0; a free card has an empty payment list", ErrMalformed)
	}
	d, e, text, err = decimal(p.Interval, "interval")
	if err != nil {
		return price.Price{}, err
	}
	iv, err := whole(d, e, text, "interval", price.MaxInterval)
	if err != nil {
		return price.Price{}, err
	}
	if iv == 0 {
		return price.Price{}, fmt.Errorf("%w: the interval is 0", ErrMalformed)
	}
	u, _, err := readUnit(p.Unit)
	if err != nil {
		return price.Price{}, err
	}
	return price.New(sats, uint32(iv), u)
}

// foreignTerm reads an original card's option for people, or false.
func foreignTerm(p jsonPaymentIn) (ForeignTerm, bool) {
	d, _, text, err := decimal(p.Amount, "amount")
	if err != nil || d == "" {
		return ForeignTerm{}, false
	}
	d, e, itext, err := decimal(p.Interval, "interval")
	if err != nil {
		return ForeignTerm{}, false
	}
	iv, err := whole(d, e, itext, "interval", 1<<32)
	if err != nil || iv == 0 {
		return ForeignTerm{}, false
	}
	_, unit, err := readUnit(p.Unit)
	if err != nil {
		return ForeignTerm{}, false
	}
	return ForeignTerm{Method: printable(p.Method, 32), Currency: printable(p.Currency, 32), Amount: text, Interval: iv, Unit: unit}, true
}

// Report is what Parse noticed besides the card.
type Report struct {
	JSON    bool     // the card was in JSON form
	Ignored []string // payment options of a JSON card that Dazaar Vision does not support, e.g. "USDT (ETH)"
}

// Note is the report in plain words, or "".
func (r Report) Note() string {
	if len(r.Ignored) == 0 {
		return ""
	}
	return fmt.Sprintf("the card also accepts %s, which Dazaar Vision does not support; those options are left out", joinWords(r.Ignored, "and"))
}

func parseJSON(b []byte) (Card, Report, error) {
	rep := Report{JSON: true}
	var in jsonCardIn
	if err := json.Unmarshal(b, &in); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Card{}, rep, fmt.Errorf("%w: its JSON is broken or cut short (%v)", ErrMalformed, err)
		}
		return Card{}, rep, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	ps, err := readPayments(in.Payment)
	if in.DazaarVision == nil {
		if in.ID == nil && in.SellerKey == nil {
			return Card{}, rep, fmt.Errorf("%w: this JSON has no \"dazaarVision\" part", ErrNotCard)
		}
		fe := &ForeignCardError{Name: printable(in.Name, MaxName)}
		if in.ID != nil {
			fe.ID = printable(*in.ID, 128)
		} else {
			fe.ID = printable(*in.SellerKey, 128)
		}
		if err != nil {
			fe.Unread = 1
		}
		for _, p := range ps {
			if t, ok := foreignTerm(p); ok {
				fe.Payments = append(fe.Payments, t)
			} else {
				fe.Unread++
			}
		}
		return Card{}, rep, fe
	}
	if err != nil {
		return Card{}, rep, err
	}
	ours := in.DazaarVision
	switch {
	case ours.Version == 0:
		return Card{}, rep, fmt.Errorf("%w: its \"dazaarVision\" part has no version", ErrMalformed)
	case ours.Version != version:
		return Card{}, rep, &VersionError{Version: ours.Version}
	}
	var c Card
	if in.ID == nil {
		return Card{}, rep, fmt.Errorf("%w: it has no feed key (\"id\")", ErrMalformed)
	}
	if k, err := hex.DecodeString(*in.ID); err != nil || len(k) != 32 {
		return Card{}, rep, fmt.Errorf("%w: its feed key (\"id\") is not 64 hexadecimal digits", ErrMalformed)
	} else {
		copy(c.Feed[:], k)
	}
	c.Name, c.Description = in.Name, in.Description
	c.Seller, c.Addrs, c.Network = ours.Peer, ours.Addrs, ours.Network
	if len(c.Addrs) == 0 {
		c.Addrs = nil
	}
	for _, p := range ps {
		m := classify(p.Method, p.Currency)
		if m == "" {
			l := label(p.Method, p.Currency)
			if l == "" {
				l = "an unnamed method"
			}
			if !slices.Contains(rep.Ignored, l) {
				rep.Ignored = append(rep.Ignored, l)
			}
			continue
		}
		pr, err := readPrice(p)
		if err != nil {
			return Card{}, rep, err
		}
		if len(c.Methods) > 0 && pr != c.Price {
			return Card{}, rep, fmt.Errorf("%w: its payment options have different prices (%s and %s); Dazaar Vision cards have one price", ErrMalformed, c.Price, pr)
		}
		c.Price = pr
		if !slices.Contains(c.Methods, m) {
			c.Methods = append(c.Methods, m)
		}
	}
	if len(c.Methods) == 0 && len(rep.Ignored) > 0 {
		return Card{}, rep, &UnsupportedMethodsError{Methods: rep.Ignored}
	}
	if err := c.Validate(); err != nil {
		return Card{}, rep, err
	}
	return c, rep, nil
}

// printable makes text from a card that is not ours safe to show: characters that are not
// printable (terminal escapes, bidi controls) become '?', and it is cut to max bytes.
func printable(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsPrint(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
