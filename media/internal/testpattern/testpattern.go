// Package testpattern marks video frames so that tests and benchmarks can recognise them
// after a lossy codec: a frame counter painted as large black and white blocks (with its
// complement, so a misread is detected), a box that moves with the counter (so frames from
// other moments differ), and PSNR to compare pictures.
package testpattern

import (
	"image"
	"image/color"
	"math"
	"sort"
)

// Block is the side of one counter bit's square, in pixels. 16×16 squares survive VP8 at
// any of our bit rates.
const Block = 16

// Bits of the counter; the complement follows, so a mark is 2×Bits blocks wide.
const Bits = 16

// Width is the width of the mark in pixels.
const Width = 2 * Bits * Block

// PaintCounter paints n into the top-left corner of img (4:2:0, 4:2:2, 4:4:4 YCbCr, or
// RGBA), together with a box that moves 8 pixels a frame along the row below the mark.
func PaintCounter(img image.Image, n uint32) {
	v := uint16(n)
	for i := 0; i < 2*Bits; i++ {
		bit := v>>(i%Bits)&1 == 1
		if i >= Bits {
			bit = !bit
		}
		c := uint8(16)
		if bit {
			c = 235
		}
		fillLuma(img, image.Rect(i*Block, 0, (i+1)*Block, Block), c)
	}
	b := img.Bounds()
	span := b.Dx() - 4*Block
	if span > 0 {
		x := int(n*8) % span
		fillLuma(img, image.Rect(b.Min.X+x, b.Min.Y+2*Block, b.Min.X+x+4*Block, b.Min.Y+6*Block), 235)
	}
}

// ReadCounter reads a counter painted by PaintCounter; ok is false when the bits and
// their complement disagree (a damaged or foreign picture).
func ReadCounter(img image.Image) (n uint32, ok bool) {
	var v, inv uint16
	for i := 0; i < 2*Bits; i++ {
		l := meanLuma(img, image.Rect(i*Block+4, 4, (i+1)*Block-4, Block-4))
		bit := l > 128
		if i < Bits {
			if bit {
				v |= 1 << i
			}
		} else if bit {
			inv |= 1 << (i - Bits)
		}
	}
	return uint32(v), v == ^inv
}

func fillLuma(img image.Image, r image.Rectangle, y uint8) {
	r = r.Add(img.Bounds().Min).Intersect(img.Bounds())
	switch m := img.(type) {
	case *image.YCbCr:
		for yy := r.Min.Y; yy < r.Max.Y; yy++ {
			for xx := r.Min.X; xx < r.Max.X; xx++ {
				m.Y[m.YOffset(xx, yy)] = y
				c := m.COffset(xx, yy)
				m.Cb[c], m.Cr[c] = 128, 128
			}
		}
	case *image.RGBA:
		// Limited-range luma to full-range grey.
		g := uint8(min(255, max(0, (int(y)-16)*255/219)))
		for yy := r.Min.Y; yy < r.Max.Y; yy++ {
			for xx := r.Min.X; xx < r.Max.X; xx++ {
				m.SetRGBA(xx, yy, color.RGBA{g, g, g, 255})
			}
		}
	}
}

// Luma returns the BT.601 limited-range luma of any pixel.
func Luma(img image.Image, x, y int) float64 {
	switch m := img.(type) {
	case *image.YCbCr:
		return float64(m.Y[m.YOffset(x, y)])
	case *image.RGBA:
		p := m.RGBAAt(x, y)
		return 16 + (65.481*float64(p.R)+128.553*float64(p.G)+24.966*float64(p.B))/255
	}
	r, g, b, _ := img.At(x, y).RGBA()
	return 16 + (65.481*float64(r>>8)+128.553*float64(g>>8)+24.966*float64(b>>8))/255
}

func meanLuma(img image.Image, r image.Rectangle) float64 {
	r = r.Add(img.Bounds().Min).Intersect(img.Bounds())
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			sum += Luma(img, x, y)
		}
	}
	if r.Empty() {
		return 0
	}
	return sum / float64(r.Dx()*r.Dy())
}

// PSNR is the peak signal-to-noise ratio of the luma of a against b inside r (relative to
// each image's origin), in dB; identical pictures give +Inf.
func PSNR(a, b image.Image, r image.Rectangle) float64 {
	var se float64
	ao, bo := a.Bounds().Min, b.Bounds().Min
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			d := Luma(a, ao.X+x, ao.Y+y) - Luma(b, bo.X+x, bo.Y+y)
			se += d * d
		}
	}
	mse := se / float64(r.Dx()*r.Dy())
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

// Shift returns a copy of a 4:2:0 or 4:2:2 picture moved right by dx pixels (the left
// edge repeated), to show that PSNR notices a misplaced picture.
func Shift(src *image.YCbCr, dx int) *image.YCbCr {
	dst := image.NewYCbCr(src.Rect, src.SubsampleRatio)
	b := src.Rect
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			sx := max(b.Min.X, x-dx)
			dst.Y[dst.YOffset(x, y)] = src.Y[src.YOffset(sx, y)]
			dst.Cb[dst.COffset(x, y)] = src.Cb[src.COffset(sx, y)]
			dst.Cr[dst.COffset(x, y)] = src.Cr[src.COffset(sx, y)]
		}
	}
	return dst
}

// Bars returns a 4:2:0 picture of colour bars with a grey ramp below, like mediadevices'
// videotest driver (without its noise), for tests that need a picture without a driver.
func Bars(w, h int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	colors := [][3]uint8{{235, 128, 128}, {210, 16, 146}, {170, 166, 16}, {145, 54, 34}, {107, 202, 222}, {82, 90, 240}, {41, 240, 110}}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c [3]uint8
			if y < h*3/4 {
				c = colors[x*7/w]
			} else {
				c = [3]uint8{uint8(16 + x*219/w), 128, 128}
			}
			img.Y[img.YOffset(x, y)] = c[0]
			img.Cb[img.COffset(x, y)] = c[1]
			img.Cr[img.COffset(x, y)] = c[2]
		}
	}
	return img
}

// Frequency estimates the frequency of a clean tone in mono PCM from its rising zero
// crossings (interpolated between samples), in Hz; 0 when there are fewer than two.
func Frequency(pcm []float32, sampleRate int) float64 {
	first, last := -1.0, -1.0
	n := 0
	for i := 1; i < len(pcm); i++ {
		a, b := float64(pcm[i-1]), float64(pcm[i])
		if a < 0 && b >= 0 {
			t := float64(i-1) + a/(a-b)
			if first < 0 {
				first = t
			}
			last = t
			n++
		}
	}
	if n < 2 {
		return 0
	}
	return float64(n-1) * float64(sampleRate) / (last - first)
}

// RMS is the root mean square of PCM samples.
func RMS(pcm []float32) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	if len(pcm) == 0 {
		return 0
	}
	return math.Sqrt(s / float64(len(pcm)))
}

// ToRGBA converts a YCbCr picture to RGBA with the BT.601 limited-range integer formula
// the VP8 package's decoder uses.
func ToRGBA(src *image.YCbCr) *image.RGBA {
	b := src.Rect
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	clamp := func(v int) uint8 { return uint8(min(255, max(0, v))) }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := 298 * (int(src.Y[src.YOffset(x, y)]) - 16)
			ci := src.COffset(x, y)
			du, dv := int(src.Cb[ci])-128, int(src.Cr[ci])-128
			i := dst.PixOffset(x-b.Min.X, y-b.Min.Y)
			dst.Pix[i+0] = clamp((c + 409*dv + 128) >> 8)
			dst.Pix[i+1] = clamp((c - 100*du - 208*dv + 128) >> 8)
			dst.Pix[i+2] = clamp((c + 516*du + 128) >> 8)
			dst.Pix[i+3] = 255
		}
	}
	return dst
}

// ToneFrequency is the median of Frequency over 100 ms windows that hold sound (RMS over
// 0.05), so that gaps and jumps in played-out sound (a jitter buffer that ran dry or
// dropped audio) do not skew it; 0 when no window holds sound.
func ToneFrequency(pcm []float32, sampleRate int) float64 {
	win := sampleRate / 10
	var fs []float64
	for i := 0; i+win <= len(pcm); i += win {
		w := pcm[i : i+win]
		if RMS(w) > 0.05 {
			if f := Frequency(w, sampleRate); f > 0 {
				fs = append(fs, f)
			}
		}
	}
	if len(fs) == 0 {
		return 0
	}
	sort.Float64s(fs)
	return fs[len(fs)/2]
}
