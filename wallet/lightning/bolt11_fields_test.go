package lightning

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/bech32"
)

// More BOLT #11 vectors (11-payment-encoding.md): payment secret and features, the same in upper
// case, the same with fields a reader must skip, and the invalid one with unknown feature 100.
const (
	vecBeans        = "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye39hfg3zd8rgc80k32tvy9xk2xunwm5lzexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnjyw6uqd08sgptq44qu"
	vecBeansUpper   = "LNBC25M1PVJLUEZPP5QQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQYPQDQ5VDHKVEN9V5SXYETPDEESSP5ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYGS9Q5SQQQQQQQQQQQQQQQPQSQ67GYE39HFG3ZD8RGC80K32TVY9XK2XUNWM5LZEXNVPX6FD77EN8QAQ424DXGT56CAG2DPT359K3SSYHETKTKPQH24JQNJYW6UQD08SGPTQ44QU"
	vecBeansIgnored = "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq2qrqqqfppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnpkqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq2jxxfsnucm4jf4zwtznpaxphce606fvhvje5x7d4gw7n73994hgs7nteqvenq8a4ml8aqtchv5d9pf7l558889hp4yyrqv6a7zpq9fgpskqhza"
	vecFeature100   = "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q4psqqqqqqqqqqqqqqqpqsqq40wa3khl49yue3zsgm26jrepqr2eghqlx86rttutve3ugd05em86nsefzh4pfurpd9ek9w2vp95zxqnfe2u7ckudyahsa52q66tgzcp6t2dyk"
	// specPriv signs every example in BOLT #11.
	specPriv = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"
)

func TestBolt11FeatureVectors(t *testing.T) {
	for name, s := range map[string]string{"features": vecBeans, "upper case": vecBeansUpper, "fields to ignore": vecBeansIgnored} {
		inv, err := DecodeBolt11(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if inv.AmountMsat != 2_500_000_000 || inv.Description != "coffee beans" || inv.PaymentHashHex() != specHash ||
			hex.EncodeToString(inv.Payee) != specPayee || inv.DescriptionHash != nil {
			t.Errorf("%s: %+v", name, inv)
		}
		if hex.EncodeToString(inv.PaymentSecret) != "1111111111111111111111111111111111111111111111111111111111111111" {
			t.Errorf("%s: payment secret %x", name, inv.PaymentSecret)
		}
		if !slices.Equal(inv.Features, []int{9, 15, 99}) {
			t.Errorf("%s: features %v, want [9 15 99]", name, inv.Features)
		}
	}
	_, err := DecodeBolt11(vecFeature100)
	if !errors.Is(err, ErrBolt11) || !errors.Is(err, ErrUnknownFeature) {
		t.Fatalf("invoice requiring unknown feature 100: %v", err)
	}
}

// TestBolt11Fields builds signed invoices field by field: the first valid field of a repeated type
// counts, wrong-length known fields are skipped, unknown even feature bits fail, and an invoice
// must have a payment hash, a payment secret and exactly one of a description and its hash.
func TestBolt11Fields(t *testing.T) {
	hashA, hashB, secret := bytes32(0xaa), bytes32(0xbb), bytes32(0x11)
	sec, desc := field(16, secret[:]), field(13, []byte("a"))
	descHash := sha256.Sum256([]byte("a"))
	cases := []struct {
		name     string
		fields   [][]byte
		wantHash [32]byte
		desc     string
		expiry   int64  // seconds
		cltv     uint64 // min_final_cltv_expiry_delta
		err      error
	}{
		{"one p", [][]byte{field(1, hashA[:]), sec, desc}, hashA, "a", 3600, 18, nil},
		{"two p: the first counts", [][]byte{field(1, hashA[:]), field(1, hashB[:]), sec, desc}, hashA, "a", 3600, 18, nil},
		{"short p skipped, the next counts", [][]byte{field(1, hashB[:31]), field(1, hashA[:]), sec, desc}, hashA, "a", 3600, 18, nil},
		{"two d and two x: the first counts", [][]byte{field(1, hashA[:]), sec, field(13, []byte("first")), field(13, []byte("second")),
			rawField(6, []byte{1, 28}), rawField(6, []byte{2})}, hashA, "first", 60, 18, nil},
		{"description hash only", [][]byte{field(1, hashA[:]), sec, field(23, descHash[:])}, hashA, "", 3600, 18, nil},
		{"c field", [][]byte{field(1, hashA[:]), sec, desc, rawField(24, []byte{1, 8})}, hashA, "a", 3600, 40, nil},
		{"odd unknown feature 101 ignored", [][]byte{field(1, hashA[:]), sec, desc, rawField(5, featureGroups(101, 15))}, hashA, "a", 3600, 18, nil},
		{"known compulsory payment_secret", [][]byte{field(1, hashA[:]), sec, desc, rawField(5, featureGroups(14))}, hashA, "a", 3600, 18, nil},
		{"unknown even feature 100", [][]byte{field(1, hashA[:]), sec, desc, rawField(5, featureGroups(100, 15))}, hashA, "", 0, 0, ErrUnknownFeature},
		{"unknown even feature 2", [][]byte{field(1, hashA[:]), sec, desc, rawField(5, featureGroups(2))}, hashA, "", 0, 0, ErrUnknownFeature},
		{"basic_mpp without payment_secret", [][]byte{field(1, hashA[:]), sec, desc, rawField(5, featureGroups(17))}, hashA, "", 0, 0, ErrBolt11},
		{"no valid p", [][]byte{field(1, hashA[:31]), sec, desc}, hashA, "", 0, 0, ErrBolt11},
		{"no s", [][]byte{field(1, hashA[:]), desc}, hashA, "", 0, 0, ErrBolt11},
		{"short s only", [][]byte{field(1, hashA[:]), field(16, secret[:31]), desc}, hashA, "", 0, 0, ErrBolt11},
		{"neither d nor h", [][]byte{field(1, hashA[:]), sec}, hashA, "", 0, 0, ErrBolt11},
		{"both d and h", [][]byte{field(1, hashA[:]), sec, desc, field(23, descHash[:])}, hashA, "", 0, 0, ErrBolt11},
		{"c too large", [][]byte{field(1, hashA[:]), sec, desc, rawField(24, make([]byte, 13))}, hashA, "", 0, 0, ErrBolt11},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, err := DecodeBolt11(signInvoice(t, c.fields...))
			if c.err != nil {
				if !errors.Is(err, c.err) || !errors.Is(err, ErrBolt11) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inv.PaymentHash != c.wantHash || inv.Description != c.desc || int64(inv.Expiry.Seconds()) != c.expiry ||
				inv.MinFinalCLTVExpiry != c.cltv {
				t.Fatalf("hash %x desc %q expiry %v cltv %d", inv.PaymentHash, inv.Description, inv.Expiry, inv.MinFinalCLTVExpiry)
			}
			if hex.EncodeToString(inv.Payee) != specPayee {
				t.Fatalf("payee %x", inv.Payee)
			}
		})
	}
}

// TestBolt11HighSWithPayee: with an n field the signature must be low-S (BOLT 11). The same
// invoice with S replaced by n−S (and the recovery ID flipped, so recovery still yields the
// payee) is refused, while without an n field the spec's high-S vector stays valid.
func TestBolt11HighSWithPayee(t *testing.T) {
	hashA, secret := bytes32(0xaa), bytes32(0x11)
	payee, _ := hex.DecodeString(specPayee)
	good := signInvoice(t, field(1, hashA[:]), field(16, secret[:]), field(13, []byte("a")), field(19, payee))
	if _, err := DecodeBolt11(good); err != nil {
		t.Fatalf("low-S invoice with n: %v", err)
	}
	hrp, data, err := bech32.DecodeNoLimit(good)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := bech32.ConvertBits(data[len(data)-104:], 5, 8, true)
	if err != nil {
		t.Fatal(err)
	}
	var sv btcec.ModNScalar
	sv.SetByteSlice(sig[32:64])
	sv.Negate()
	hs := sv.Bytes()
	copy(sig[32:64], hs[:])
	sig[64] ^= 1
	g, err := bech32.ConvertBits(sig[:65], 8, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	high, err := bech32.Encode(hrp, append(data[:len(data)-104:len(data)-104], g...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeBolt11(high); !errors.Is(err, ErrBolt11) || !strings.Contains(err.Error(), "low-S") {
		t.Fatalf("high-S invoice with n: %v", err)
	}
}

// TestBolt11SpecInvalid: the spec's invalid vector "missing required s field" (the hashed
// description vector without its s field) must fail.
func TestBolt11SpecInvalid(t *testing.T) {
	const noS = "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqs9qrsgq7ea976txfraylvgzuxs8kgcw23ezlrszfnh8r6qtfpr6cxga50aj6txm9rxrydzd06dfeawfk6swupvz4erwnyutnjq7x39ymw6j38gp49qdkj"
	if _, err := DecodeBolt11(noS); !errors.Is(err, ErrBolt11) {
		t.Fatalf("invoice without s: %v", err)
	}
}

func bytes32(b byte) (h [32]byte) {
	for i := range h {
		h[i] = b
	}
	return h
}

// field is a tagged field holding bytes, converted to 5-bit groups.
func field(typ byte, b []byte) []byte {
	g, err := bech32.ConvertBits(b, 8, 5, true)
	if err != nil {
		panic(err)
	}
	return rawField(typ, g)
}

// rawField is a tagged field holding 5-bit groups as they are.
func rawField(typ byte, groups []byte) []byte {
	return append([]byte{typ, byte(len(groups) >> 5), byte(len(groups) & 31)}, groups...)
}

// featureGroups is a 9 field with the given bits set (big-endian, bit 0 last).
func featureGroups(bits ...int) []byte {
	n := 0
	for _, b := range bits {
		n = max(n, b/5+1)
	}
	g := make([]byte, n)
	for _, b := range bits {
		g[n-1-b/5] |= 1 << (b % 5)
	}
	return g
}

// signInvoice encodes a mainnet invoice with the spec's timestamp and fields, signed with the
// spec's key as BOLT #11 describes (sha256 over the HRP and the data's bytes).
func signInvoice(t *testing.T, fields ...[]byte) string {
	t.Helper()
	const hrp = "lnbc"
	ts := uint64(1496314658)
	data := make([]byte, 7)
	for i := 6; i >= 0; i-- {
		data[i] = byte(ts & 31)
		ts >>= 5
	}
	for _, f := range fields {
		data = append(data, f...)
	}
	msg, err := bech32.ConvertBits(data, 5, 8, true)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(append([]byte(hrp), msg...))
	k, _ := hex.DecodeString(specPriv)
	priv, _ := btcec.PrivKeyFromBytes(k)
	compact, err := ecdsa.SignCompact(priv, digest[:], true)
	if err != nil {
		t.Fatal(err)
	}
	sig := append(append([]byte{}, compact[1:]...), compact[0]-27-4)
	sg, err := bech32.ConvertBits(sig, 8, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := bech32.Encode(hrp, append(data, sg...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
