package headermsg

import (
	"bytes"
	"math"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		want uint64
		ok   bool
	}{
		{"zero", Encode(0), 0, true},
		{"one block", Encode(1), 1, true},
		{"the largest", Encode(math.MaxUint64), math.MaxUint64, true},
		{"empty", nil, 0, false},
		{"kind only", []byte{Kind}, 0, false},
		{"another kind", []byte{1, 5}, 0, false},
		{"truncated varint", []byte{Kind, 0x80}, 0, false},
		{"bytes after it", append(Encode(7), 0), 0, false},
		{"varint past 64 bits", []byte{Kind, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Decode(tt.msg)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Decode(%x) = %d, %v; want %d, %v", tt.msg, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzDecode: any bytes from a peer decode without a panic, and what decodes encodes to a
// message that decodes to the same index and is no longer than what was read.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(0))
	f.Add(Encode(300))
	f.Add([]byte{Kind, 0x80, 0x00})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := Decode(b)
		if !ok {
			return
		}
		e := Encode(v)
		if w, ok := Decode(e); !ok || w != v || len(e) > len(b) || !bytes.HasPrefix(b, []byte{Kind}) {
			t.Fatalf("%x decodes to %d; its encoding %x decodes to %d, %v", b, v, e, w, ok)
		}
	})
}
