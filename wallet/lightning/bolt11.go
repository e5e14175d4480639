// Package lightning talks to the seller's LND node over its REST API (net/http only: invoices,
// the settled-invoice subscription resumed from a stored index, reconnecting with backoff), checks
// that the macaroon it is given can only handle invoices, and decodes BOLT11 invoices so a viewer
// can check one before paying it.
package lightning

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/bech32"
)

// MaxBolt11Len caps a BOLT11 string before decoding.
const MaxBolt11Len = 2048

// Invoice is a decoded, signature-checked BOLT11 invoice.
type Invoice struct {
	Network         string // mainnet, testnet, signet, regtest or simnet
	AmountMsat      uint64 // 0 when the invoice leaves the amount open
	Timestamp       time.Time
	Expiry          time.Duration
	PaymentHash     [32]byte
	Description     string
	DescriptionHash []byte
	Payee           []byte // 33-byte compressed node key
	PaymentSecret   []byte // 32 bytes from the s field (BOLT 11 requires one)
	Features        []int  // feature bits set in the 9 field, lowest first
	// MinFinalCLTVExpiry is the c field's min_final_cltv_expiry_delta in blocks: 18 when the
	// invoice has none, as BOLT 11 says.
	MinFinalCLTVExpiry uint64
}

// DefaultMinFinalCLTVExpiry is BOLT 11's min_final_cltv_expiry_delta for an invoice without a c
// field.
const DefaultMinFinalCLTVExpiry = 18

// Expired reports whether the invoice can no longer be paid at now.
func (i *Invoice) Expired(now time.Time) bool { return now.After(i.Timestamp.Add(i.Expiry)) }

// ErrBolt11 wraps every decoding failure.
var ErrBolt11 = errors.New("lightning: invalid invoice")

// ErrUnknownFeature is wrapped (with ErrBolt11) when an invoice requires a feature this decoder
// does not know: BOLT 11 says a reader must fail such an invoice rather than pay it.
var ErrUnknownFeature = errors.New("the invoice requires a Lightning feature this app does not know")

// knownEvenFeatures are the compulsory (even) BOLT 9 feature bits allowed in an invoice's 9
// field that a payer of ours handles: var_onion_optin (8), payment_secret (14), basic_mpp (16),
// option_route_blinding (24) and option_payment_metadata (48). Any other even bit set fails the
// invoice; unknown odd bits are optional and ignored (BOLT 9's "it's OK to be odd").
var knownEvenFeatures = map[int]bool{8: true, 14: true, 16: true, 24: true, 48: true}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBolt11, fmt.Sprintf(format, args...))
}

// prefixes maps BOLT11 currency prefixes to networks, longest first.
var prefixes = []struct{ p, net string }{
	{"bcrt", "regtest"}, {"bc", "mainnet"}, {"tbs", "signet"}, {"tb", "testnet"}, {"sb", "simnet"},
}

// NetworkPrefix is the BOLT11 prefix for a network name.
func NetworkPrefix(network string) string {
	for _, p := range prefixes {
		if p.net == network {
			return "ln" + p.p
		}
	}
	return ""
}

// DecodeBolt11 decodes s (optionally prefixed "lightning:") and verifies its signature.
func DecodeBolt11(s string) (*Invoice, error) {
	if len(s) > MaxBolt11Len+len("lightning:") {
		return nil, bad("longer than %d characters", MaxBolt11Len)
	}
	if strings.HasPrefix(strings.ToLower(s), "lightning:") {
		s = s[len("lightning:"):]
	}
	if s != strings.ToLower(s) && s != strings.ToUpper(s) {
		return nil, bad("mixed case")
	}
	s = strings.ToLower(s)
	hrp, data, ver, err := bech32.DecodeNoLimitWithVersion(s)
	if err != nil {
		return nil, bad("%v", err)
	}
	if ver != bech32.Version0 {
		return nil, bad("its checksum is bech32m; BOLT11 invoices use bech32")
	}
	if !strings.HasPrefix(hrp, "ln") {
		return nil, bad("not a lightning invoice")
	}
	inv := &Invoice{Expiry: time.Hour, MinFinalCLTVExpiry: DefaultMinFinalCLTVExpiry}
	rest := hrp[2:]
	for _, p := range prefixes {
		if strings.HasPrefix(rest, p.p) {
			inv.Network, rest = p.net, rest[len(p.p):]
			break
		}
	}
	if inv.Network == "" {
		return nil, bad("unknown currency prefix in %q", hrp)
	}
	if inv.AmountMsat, err = parseAmount(rest); err != nil {
		return nil, err
	}
	if len(data) < 7+104 {
		return nil, bad("too short")
	}
	sigData, body := data[len(data)-104:], data[:len(data)-104]
	inv.Timestamp = time.Unix(int64(toUint(body[:7])), 0)
	// When a field type repeats, the first one the reader does not skip counts (BOLT 11: a writer
	// puts its most preferred field first, and a payer "SHOULD use the first p field that it did
	// NOT skip"); later ones of the same type are ignored. Fields of a known type with the wrong
	// length are skipped, as the spec requires, so they never shadow a valid one.
	var havePayee, haveHash, haveDesc, haveDescHash, haveExpiry, haveSecret, haveFeatures, haveCLTV bool
	for f := body[7:]; len(f) > 0; {
		if len(f) < 3 {
			return nil, bad("truncated field")
		}
		typ, n := f[0], int(f[1])<<5|int(f[2])
		if len(f) < 3+n {
			return nil, bad("field longer than the invoice")
		}
		v := f[3 : 3+n]
		f = f[3+n:]
		switch typ {
		case 1: // p: payment hash
			if n != 52 || haveHash {
				continue // a reader must skip p fields of the wrong length
			}
			b, err := bech32.ConvertBits(v, 5, 8, false)
			if err != nil || len(b) != 32 {
				return nil, bad("payment hash")
			}
			copy(inv.PaymentHash[:], b)
			haveHash = true
		case 16: // s: payment secret
			if n != 52 || haveSecret {
				continue
			}
			b, err := bech32.ConvertBits(v, 5, 8, false)
			if err != nil || len(b) != 32 {
				return nil, bad("payment secret")
			}
			inv.PaymentSecret, haveSecret = b, true
		case 13: // d: description
			if haveDesc {
				continue
			}
			b, err := bech32.ConvertBits(v, 5, 8, false)
			if err != nil || !utf8.Valid(b) {
				return nil, bad("description is not UTF-8")
			}
			inv.Description, haveDesc = string(b), true
		case 23: // h: description hash
			if n != 52 || haveDescHash {
				continue
			}
			b, err := bech32.ConvertBits(v, 5, 8, false)
			if err != nil {
				return nil, bad("description hash")
			}
			inv.DescriptionHash, haveDescHash = b, true
		case 19: // n: payee
			if n != 53 || havePayee {
				continue
			}
			b, err := bech32.ConvertBits(v, 5, 8, false)
			if err != nil || len(b) != 33 {
				return nil, bad("payee key")
			}
			inv.Payee, havePayee = b, true
		case 6: // x: expiry seconds
			if haveExpiry {
				continue
			}
			if n > 7 {
				return nil, bad("expiry too large")
			}
			inv.Expiry, haveExpiry = expiry(toUint(v)), true
		case 24: // c: min_final_cltv_expiry_delta
			if haveCLTV {
				continue
			}
			if n > 12 { // 60 bits: more than any block height a payer could wait
				return nil, bad("min_final_cltv_expiry_delta too large")
			}
			inv.MinFinalCLTVExpiry, haveCLTV = toUint(v), true
		case 5: // 9: features
			if haveFeatures {
				continue
			}
			haveFeatures = true
			var err error
			if inv.Features, err = features(v); err != nil {
				return nil, err
			}
		}
	}
	// BOLT 11: a payer must fail an invoice without a valid p or s field, and one with neither
	// or both of d and h (the valid ones: skipped fields do not count).
	if !haveHash {
		return nil, bad("no payment hash")
	}
	if !haveSecret {
		return nil, bad("no payment secret (s field)")
	}
	if haveDesc == haveDescHash {
		if haveDesc {
			return nil, bad("both a description and a description hash")
		}
		return nil, bad("neither a description nor a description hash")
	}
	// Signature: 64 bytes R||S and a recovery ID, over sha256(hrp || data without signature).
	sig, err := bech32.ConvertBits(sigData, 5, 8, true)
	if err != nil || len(sig) < 65 {
		return nil, bad("signature")
	}
	sig = sig[:65]
	msgBits, err := bech32.ConvertBits(body, 5, 8, true)
	if err != nil {
		return nil, bad("%v", err)
	}
	digest := sha256.Sum256(append([]byte(hrp), msgBits...))
	recID := sig[64]
	if recID > 3 {
		return nil, bad("signature recovery ID %d", recID)
	}
	compact := append([]byte{27 + 4 + recID}, sig[:64]...)
	pub, _, err := ecdsa.RecoverCompact(compact, digest[:])
	if err != nil {
		return nil, bad("signature does not verify: %v", err)
	}
	if havePayee {
		// With an n field the signature is checked against it, and BOLT 11 requires it low-S
		// (recovery alone accepts either form).
		var sv btcec.ModNScalar
		if overflow := sv.SetByteSlice(sig[32:64]); overflow || sv.IsOverHalfOrder() {
			return nil, bad("signature is not in low-S form")
		}
		want, err := btcec.ParsePubKey(inv.Payee)
		if err != nil || !want.IsEqual(pub) {
			return nil, bad("signature is not the payee's")
		}
	} else {
		inv.Payee = pub.SerializeCompressed()
	}
	return inv, nil
}

// features reads the 9 field (big-endian, bit 0 the least significant bit of the last group),
// failing on a compulsory bit this decoder does not know or on basic_mpp without payment_secret
// (BOLT 11: a reader must not attempt a payment whose feature vector misses a known dependency).
func features(groups []byte) ([]int, error) {
	var bits []int
	set := map[int]bool{}
	for i := len(groups) - 1; i >= 0; i-- {
		g := groups[i]
		for b := 0; b < 5; b++ {
			if g&(1<<b) == 0 {
				continue
			}
			bit := (len(groups)-1-i)*5 + b
			if bit%2 == 0 && !knownEvenFeatures[bit] {
				return nil, fmt.Errorf("%w: %w (required feature bit %d)", ErrBolt11, ErrUnknownFeature, bit)
			}
			bits = append(bits, bit)
			set[bit] = true
		}
	}
	if (set[16] || set[17]) && !set[14] && !set[15] {
		return nil, bad("basic_mpp without payment_secret")
	}
	return bits, nil
}

// expiry converts the x field's seconds, saturating at the largest Duration (7 groups hold up
// to 2^35 s, more than a Duration can).
func expiry(secs uint64) time.Duration {
	if secs > uint64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(secs) * time.Second
}

func toUint(groups []byte) uint64 {
	var v uint64
	for _, g := range groups {
		v = v<<5 | uint64(g)
	}
	return v
}

// parseAmount reads the HRP amount into millisatoshis.
func parseAmount(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	mult := uint64(0)
	digits := s
	switch s[len(s)-1] {
	case 'm':
		mult = 100_000_000
	case 'u':
		mult = 100_000
	case 'n':
		mult = 100
	case 'p':
		mult = 0 // tenths of a millisat: handled below
	default:
		mult = 100_000_000_000
		digits = s + " "
	}
	digits = digits[:len(digits)-1]
	if digits == "" || digits[0] == '0' || len(digits) > 16 {
		return 0, bad("amount %q", s)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, bad("amount %q", s)
	}
	if s[len(s)-1] == 'p' {
		if n%10 != 0 {
			return 0, bad("amount %q is not a whole millisatoshi", s)
		}
		return n / 10, nil
	}
	if n > 21_000_000*100_000_000_000/mult {
		return 0, bad("amount %q larger than all bitcoin", s)
	}
	return n * mult, nil
}

// PaymentHashHex is the payment hash as LND writes it.
func (i *Invoice) PaymentHashHex() string { return hex.EncodeToString(i.PaymentHash[:]) }
