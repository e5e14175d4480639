package lightning

import (
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/bech32"
	"time"
)

// BOLT #11 test vectors (11-payment-encoding.md).
const (
	specPayee   = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad"
	specHash    = "0001020304050607080900010203040506070809000102030405060708090102"
	vecDonation = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql"
	vecCoffee   = "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh"
	vecHashed   = "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqs9qrsgq7ea976txfraylvgzuxs8kgcw23ezlrszfnh8r6qtfpr6cxga50aj6txm9rxrydzd06dfeawfk6swupvz4erwnyutnjq7x39ymw6j38gp7ynn44"
)

func TestBolt11Vectors(t *testing.T) {
	cases := []struct {
		s      string
		msat   uint64
		desc   string
		expiry time.Duration
	}{
		{vecDonation, 0, "Please consider supporting this project", time.Hour},
		{vecCoffee, 250_000_000, "1 cup coffee", time.Minute},
		{vecHashed, 2_000_000_000, "", time.Hour},
		{"LIGHTNING:" + strings.ToUpper(vecCoffee), 250_000_000, "1 cup coffee", time.Minute},
	}
	for _, c := range cases {
		inv, err := DecodeBolt11(c.s)
		if err != nil {
			t.Fatalf("%s…: %v", c.s[:20], err)
		}
		if inv.Network != "mainnet" || inv.AmountMsat != c.msat || inv.Description != c.desc || inv.Expiry != c.expiry ||
			hex.EncodeToString(inv.Payee) != specPayee || inv.PaymentHashHex() != specHash || inv.Timestamp.Unix() != 1496314658 {
			t.Errorf("%s…: %+v", c.s[:20], inv)
		}
	}
	inv, _ := DecodeBolt11(vecHashed)
	if hex.EncodeToString(inv.DescriptionHash) != "3925b6f67e2c340036ed12093dd44e0368df1b6ea26c53dbe4811f58fd5db8c1" {
		t.Errorf("description hash %x", inv.DescriptionHash)
	}
}

func TestBolt11Bad(t *testing.T) {
	flip := []byte(vecCoffee)
	flip[60] = 'q'
	if flip[60] == vecCoffee[60] {
		flip[60] = 'p'
	}
	// Changing the amount keeps a valid checksum only if re-encoded; a tampered amount with
	// the old signature must fail the signature check.
	tampered := retag(t, vecCoffee, "lnbc2500u", "lnbc2u")
	for name, s := range map[string]string{
		"empty":         "",
		"not lightning": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
		"checksum":      string(flip),
		"mixed case":    "lnbc2500U" + vecCoffee[9:],
		"too long":      "lnbc1" + strings.Repeat("q", MaxBolt11Len),
		"truncated":     vecCoffee[:40],
		"bech32m":       bech32m(t, vecCoffee), // BOLT11 is bech32 only: wallets refuse the other checksum
	} {
		if _, err := DecodeBolt11(s); !errors.Is(err, ErrBolt11) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Without an n field the payee is recovered from the signature, so a tampered invoice
	// decodes to some other payee: never the real one.
	if inv, err := DecodeBolt11(tampered); err == nil && hex.EncodeToString(inv.Payee) == specPayee {
		t.Errorf("tampered invoice still verifies as the payee's")
	}
	for _, a := range []string{"0u", "1.5m", "01m", "15p", "99999999999999999m"} {
		if _, err := parseAmount(a); err == nil {
			t.Errorf("amount %q accepted", a)
		}
	}
	if v, err := parseAmount("10p"); err != nil || v != 1 {
		t.Errorf("10p = %d %v", v, err)
	}
}

func FuzzDecodeBolt11(f *testing.F) {
	for _, s := range []string{vecDonation, vecCoffee, vecHashed, vecBeans, vecBeansIgnored, vecFeature100} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := DecodeBolt11(s)
		if err != nil {
			return
		}
		if len(inv.Payee) != 33 || inv.Network == "" {
			t.Fatalf("decoded without payee or network: %+v", inv)
		}
	})
}

// bech32m re-encodes an invoice with a bech32m checksum (same human-readable part and data).
func bech32m(t *testing.T, s string) string {
	t.Helper()
	hrp, data, err := bech32.DecodeNoLimit(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := bech32.EncodeM(hrp, data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// retag re-encodes an invoice's data under another human-readable part, with a valid checksum.
func retag(t *testing.T, s, oldHRP, newHRP string) string {
	t.Helper()
	hrp, data, err := bech32.DecodeNoLimit(s)
	if err != nil || hrp != oldHRP {
		t.Fatalf("decode %v %q", err, hrp)
	}
	out, err := bech32.Encode(newHRP, data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBolt11ExpirySaturates(t *testing.T) {
	if got := expiry(1<<35 - 1); got <= 0 || got != time.Duration(math.MaxInt64) {
		t.Fatalf("largest x field: %v", got)
	}
	if got := expiry(3600); got != time.Hour {
		t.Fatalf("3600 s: %v", got)
	}
	if got := expiry(1<<35 - 1); got < 100*365*24*time.Hour {
		t.Fatalf("overflowed: %v", got)
	}
}
