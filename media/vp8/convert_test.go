package vp8

import (
	"image"
	"math/rand/v2"
	"testing"
)

// i420Want is dv_i420_to_rgba's formula, written out in Go.
func i420Want(y, u, v byte) [4]byte {
	clamp := func(x int) byte { return byte(min(max(x, 0), 255)) }
	y1 := int(uint32(y)*257*18997>>16) - 1160
	du, dv := int(u)-128, int(v)-128
	return [4]byte{clamp((y1 + 102*dv) >> 6), clamp((y1 - 25*du - 52*dv) >> 6), clamp((y1 + 129*du) >> 6), 255}
}

// TestI420ToRGBA: every pixel of random planes, at widths that exercise the 16-pixel steps,
// their tails and odd sizes, with padded strides, matches the formula; and the formula is
// BT.601 limited range within a level of the exact one at its corners.
func TestI420ToRGBA(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][2]int{{1, 1}, {2, 2}, {15, 3}, {16, 2}, {17, 5}, {31, 4}, {33, 3}, {64, 2}, {100, 7}, {1280, 4}} {
		w, h := sz[0], sz[1]
		cw, ch := (w+1)/2, (h+1)/2
		ys, cs := w+5, cw+3
		Y, U, V := make([]byte, ys*h), make([]byte, cs*ch), make([]byte, cs*ch)
		for _, p := range [][]byte{Y, U, V} {
			for i := range p {
				p[i] = byte(rng.IntN(256))
			}
		}
		// Corners: black, white, and the extremes of chroma.
		Y[0], U[0], V[0] = 0, 0, 255
		if len(Y) > 1 {
			Y[1] = 255
		}
		dst := image.NewRGBA(image.Rect(0, 0, w+3, h)) // a wider picture: its stride differs
		i420ToRGBA(w, h, Y, U, V, ys, cs, cs, dst)
		for py := range h {
			for px := range w {
				want := i420Want(Y[py*ys+px], U[(py/2)*cs+px/2], V[(py/2)*cs+px/2])
				o := dst.PixOffset(px, py)
				if got := [4]byte(dst.Pix[o : o+4]); got != want {
					t.Fatalf("%dx%d: pixel (%d,%d) = %v, want %v", w, h, px, py, got, want)
				}
			}
		}
	}
	for _, c := range []struct {
		y, u, v byte
		want    [4]byte
	}{
		{16, 128, 128, [4]byte{0, 0, 0, 255}},
		{235, 128, 128, [4]byte{255, 255, 255, 255}},
		{126, 128, 128, [4]byte{128, 128, 128, 255}},
		{82, 90, 240, [4]byte{255, 0, 0, 255}},  // red
		{145, 54, 34, [4]byte{0, 255, 0, 255}},  // green
		{41, 240, 110, [4]byte{0, 0, 255, 255}}, // blue
	} {
		got := i420Want(c.y, c.u, c.v)
		for i := range 3 {
			if d := int(got[i]) - int(c.want[i]); d < -2 || d > 2 {
				t.Errorf("Y'CbCr %d,%d,%d: %v, want %v", c.y, c.u, c.v, got, c.want)
			}
		}
	}
}

func BenchmarkI420ToRGBA(b *testing.B) {
	const w, h = 1280, 720
	Y, U, V := make([]byte, w*h), make([]byte, w*h/4), make([]byte, w*h/4)
	for i := range Y {
		Y[i] = byte(i * 7)
	}
	for i := range U {
		U[i], V[i] = byte(i*3), byte(i*5)
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	b.SetBytes(w * h * 4)
	for b.Loop() {
		i420ToRGBA(w, h, Y, U, V, w, w/2, w/2, dst)
	}
}
