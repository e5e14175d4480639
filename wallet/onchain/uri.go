package onchain

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
)

// PaymentURI is a BIP21 payment request, with BIP321's lightning= parameter when an invoice can
// be paid either way.
type PaymentURI struct {
	Address   string
	Sats      uint64
	Label     string
	Message   string
	Lightning string // BOLT11 invoice, optional
	// Others names the parameters a parsed URI carries beyond the address, amount, label,
	// message and one lightning= (another lightning=, bc=, lno=, unknown ones), each once. A
	// wallet may pay through any of BIP321's payment instructions, so a payer that checks the
	// URI against what it expects refuses one that has others. String writes none.
	Others []string
}

// FormatBTC renders sats as a decimal BTC amount without floating point: 150000 → "0.0015".
func FormatBTC(sats uint64) string {
	s := fmt.Sprintf("%d.%08d", sats/100_000_000, sats%100_000_000)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// MaxSats is every bitcoin there will ever be (21 million BTC): no amount can be larger.
const MaxSats = 21_000_000 * 100_000_000

// ParseBTC reads a decimal BTC amount into sats, refusing more than 8 decimals and more than
// 21 million BTC.
func ParseBTC(s string) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, errors.New("onchain: bad amount")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 8 || (whole == "" && frac == "") {
		return 0, fmt.Errorf("onchain: amount %q has more than 8 decimals", s)
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("onchain: amount %q is not a decimal number", s)
		}
	}
	w := uint64(0)
	if whole != "" {
		var err error
		if w, err = strconv.ParseUint(whole, 10, 64); err != nil || w > 21_000_000 {
			return 0, fmt.Errorf("onchain: amount %q out of range", s)
		}
	}
	f := uint64(0)
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", 8-len(frac)), 10, 64)
	}
	sats := w*100_000_000 + f
	if sats > MaxSats {
		return 0, fmt.Errorf("onchain: amount %q is more than the 21 million bitcoin there will ever be", s)
	}
	return sats, nil
}

func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// String renders the URI.
func (u PaymentURI) String() string {
	var b strings.Builder
	b.WriteString("bitcoin:")
	b.WriteString(u.Address)
	sep := byte('?')
	add := func(k, v string) {
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if u.Sats > 0 {
		add("amount", FormatBTC(u.Sats))
	}
	if u.Label != "" {
		add("label", escape(u.Label))
	}
	if u.Message != "" {
		add("message", escape(u.Message))
	}
	if u.Lightning != "" {
		add("lightning", escape(u.Lightning))
	}
	return b.String()
}

// MaxURILen caps a URI handed to ParseURI.
const MaxURILen = 4096

// ParseURI reads a BIP21/BIP321 URI and checks its address against net. Unknown required (req-)
// parameters are refused, as BIP21 demands. The query is percent-decoded as RFC 3986 says ('+'
// is a plus, not a space). amount, label, message and pop may appear once; other parameters
// (lightning=, bc=, unknown ones) may repeat, as BIP321 allows, and the first lightning= is used.
func ParseURI(s string, net *chaincfg.Params) (PaymentURI, error) {
	var u PaymentURI
	if len(s) > MaxURILen {
		return u, errors.New("onchain: payment URI too long")
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "bitcoin") {
		return u, errors.New("onchain: not a bitcoin: payment URI")
	}
	addr, query, _ := strings.Cut(rest, "?")
	if addr != "" {
		a, err := ParseAddress(addr, net)
		if err != nil {
			return u, err
		}
		u.Address = a.EncodeAddress()
	}
	params, err := parseQuery(query)
	if err != nil {
		return u, err
	}
	// Names are case-insensitive, so amount=…&AMOUNT=… is a duplicate too.
	lower := make(map[string][]string, len(params))
	var order []string
	for _, p := range params {
		lk := strings.ToLower(p.key)
		if _, seen := lower[lk]; !seen {
			order = append(order, lk)
		}
		lower[lk] = append(lower[lk], p.value)
	}
	for _, k := range order {
		vs := lower[k]
		if unique[k] && len(vs) != 1 {
			return u, fmt.Errorf("onchain: the payment URI gives %q %d times; it may appear only once", k, len(vs))
		}
		// A payment instruction (lightning=, bc=, …) may appear more than once (BIP321): any one
		// of them pays, so the first is used (the first non-empty one for lightning=).
		v := vs[0]
		switch k {
		case "amount":
			if u.Sats, err = ParseBTC(v); err != nil {
				return u, err
			}
		case "label":
			u.Label = v
		case "message":
			u.Message = v
		case "lightning":
			for _, v := range vs {
				if v != "" && u.Lightning == "" {
					u.Lightning = v
				} else if v != u.Lightning {
					u.Others = append(u.Others, k)
				}
			}
		default:
			u.Others = append(u.Others, k)
			if strings.HasPrefix(strings.ToLower(k), "req-") {
				return u, fmt.Errorf("onchain: payment URI requires %q, which this app does not understand", k)
			}
		}
	}
	if u.Address == "" && u.Lightning == "" {
		return u, errors.New("onchain: payment URI has neither an address nor a lightning invoice")
	}
	return u, nil
}

// unique are the parameters BIP321 allows only once.
var unique = map[string]bool{"amount": true, "label": true, "message": true, "pop": true}

type param struct{ key, value string }

// parseQuery splits a URI's query into its parameters in order, percent-decoding each name and
// value as RFC 3986 does (url.ParseQuery's form decoding would turn '+' into a space).
func parseQuery(query string) ([]param, error) {
	var ps []param
	for _, part := range strings.Split(query, "&") {
		if part == "" {
			continue
		}
		rawK, rawV, _ := strings.Cut(part, "=")
		k, err := url.PathUnescape(rawK)
		if err != nil {
			return nil, fmt.Errorf("onchain: the payment URI's parameter name %q has a broken %%-escape (a %% must be followed by two hexadecimal digits): %w", rawK, err)
		}
		v, err := url.PathUnescape(rawV)
		if err != nil {
			return nil, fmt.Errorf("onchain: the payment URI's %q parameter has a broken %%-escape (a %% must be followed by two hexadecimal digits): %w", k, err)
		}
		ps = append(ps, param{k, v})
	}
	return ps, nil
}
