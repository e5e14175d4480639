package feed

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// Edge cases of Ed25519 where implementations are known to differ (small-order and
// non-canonical points, S not reduced): the expanded-key check must answer exactly as
// crypto/ed25519.Verify, the check the feed used before.
func TestVerifierMatchesStdlib(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hypercore signable")
	sig := ed25519.Sign(priv, msg)
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// S + L (the group order), the same signature with S not reduced: crypto/ed25519 refuses it.
	l := unhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	highS := append([]byte(nil), sig...)
	var carry uint16
	for i := 0; i < 32; i++ {
		sum := uint16(highS[32+i]) + uint16(l[i]) + carry
		highS[32+i], carry = byte(sum), sum>>8
	}
	identity := unhex("0100000000000000000000000000000000000000000000000000000000000000")
	nonCanonical := unhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f") // y = p: not reduced
	notOnCurve := unhex("0200000000000000000000000000000000000000000000000000000000000000")
	zeroSig := make([]byte, 64)
	idSig := append(append([]byte(nil), identity...), make([]byte, 32)...) // R = identity, S = 0
	cases := []struct {
		name     string
		pub, sig []byte
		msg      []byte
	}{
		{"valid", pub, sig, msg},
		{"other message", pub, sig, []byte("other")},
		{"R changed", pub, flip(sig, 3), msg},
		{"S changed", pub, flip(sig, 40), msg},
		{"S not reduced", pub, highS, msg},
		{"other key", flip(pub, 5), sig, msg},
		{"identity key, zero signature", identity, zeroSig, msg},
		{"identity key, identity R, S 0", identity, idSig, msg},
		{"non-canonical key", nonCanonical, idSig, msg},
		{"key not on the curve", notOnCurve, sig, msg},
		{"short signature", pub, sig[:63], msg},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var k [32]byte
			copy(k[:], c.pub)
			want := ed25519.Verify(c.pub, c.msg, c.sig)
			if got := newCompatVerifier(k).checkSig(0, c.msg, c.sig); got != want {
				t.Fatalf("expanded check says %v, crypto/ed25519 says %v", got, want)
			}
		})
	}
	if !newCompatVerifier([32]byte(pub)).checkSig(0, msg, sig) {
		t.Fatal("a valid signature was refused")
	}
}

// FuzzVerifierMatchesStdlib: for any key, message and signature, the expanded-key check and
// crypto/ed25519.Verify agree. Seeds include a valid signature so mutations stay near valid ones.
func FuzzVerifierMatchesStdlib(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("hypercore signable")
	f.Add([]byte(pub), msg, ed25519.Sign(priv, msg))
	f.Add(make([]byte, 32), msg, make([]byte, 64))
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != 32 {
			return
		}
		want := ed25519.Verify(pub, msg, sig)
		if got := newCompatVerifier([32]byte(pub)).checkSig(0, msg, sig); got != want {
			t.Fatalf("expanded check says %v, crypto/ed25519 says %v", got, want)
		}
	})
}

// BenchmarkVerifySignature: one signature check of a feed head, crypto/ed25519 against the
// expanded key the verifier keeps (make bench prints the ratio).
func BenchmarkVerifySignature(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	v := newCompatVerifier([32]byte(pub))
	msg := v.signable([32]byte{1}, 100, 0)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("expanded", func(b *testing.B) {
		for b.Loop() {
			if !v.checkSig(0, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
}
