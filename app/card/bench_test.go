package card

import (
	"encoding/json"
	"testing"
)

// The typical card's costs (BENCHMARKS.md): what a paste costs the UI.

func BenchmarkEncode(b *testing.B) {
	c := typical(b)
	for b.Loop() {
		if _, err := Encode(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseText(b *testing.B) {
	s := typical(b).String()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJSON(b *testing.B) {
	j, _ := json.Marshal(typical(b))
	b.SetBytes(int64(len(j)))
	for b.Loop() {
		if _, err := Parse(string(j)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseDamaged is a largest-possible card with one character dropped.
func BenchmarkParseDamaged(b *testing.B) {
	s := large(b).String()
	s = s[:100] + s[101:]
	for b.Loop() {
		if _, err := Parse(s); err == nil {
			b.Fatal("accepted")
		}
	}
}
