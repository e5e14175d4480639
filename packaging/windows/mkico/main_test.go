package main

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"testing"
)

func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The header, the directory and the pictures where the directory says: what Windows reads.
func TestPackLayout(t *testing.T) {
	sizes := []int{16, 32, 48, 256}
	var pics [][]byte
	for _, s := range sizes {
		pics = append(pics, pngOf(t, s, s))
	}
	ico, err := pack(pics)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint16(ico[0:]) != 0 || le.Uint16(ico[2:]) != 1 || int(le.Uint16(ico[4:])) != len(sizes) {
		t.Fatalf("header % x", ico[:6])
	}
	for i, s := range sizes {
		e := ico[6+16*i:]
		side := int(e[0])
		if side == 0 {
			side = 256
		}
		if side != s || int(e[1]) != int(e[0]) || le.Uint16(e[4:]) != 1 || le.Uint16(e[6:]) != 32 {
			t.Fatalf("entry %d: % x", i, e[:16])
		}
		n, off := le.Uint32(e[8:]), le.Uint32(e[12:])
		if !bytes.Equal(ico[off:off+n], pics[i]) {
			t.Fatalf("entry %d does not point at picture %d", i, i)
		}
		img, err := png.Decode(bytes.NewReader(ico[off : off+n]))
		if err != nil || img.Bounds().Dx() != s {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
}

func TestPackRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		pics [][]byte
	}{
		{"none", nil},
		{"not a PNG", [][]byte{[]byte("GIF89a")}},
		{"not square", [][]byte{pngOf(t, 16, 32)}},
		{"too big", [][]byte{pngOf(t, 512, 512)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pack(tc.pics); err == nil {
				t.Fatal("packed")
			}
		})
	}
}
