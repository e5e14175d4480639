package testpattern

import (
	"encoding/binary"
	"image"
	"math"
	"math/rand/v2"
)

// Scene draws a camera-like moving picture for rate-control tests and benchmarks: a
// textured, smoothly shaded background that pans slowly (a hand-held camera), three
// soft-edged coloured discs that move across it at different speeds, and mild sensor noise
// that changes every frame. Unlike the counter pattern or the test driver's noise block,
// it costs a codec about what a real camera does: most of the picture is predictable from
// the previous frame, edges move, and the noise floor is never zero. Frames are a pure
// function of the frame number (same n, same picture).
type Scene struct {
	w, h   int
	margin int
	// world is the background, larger than the picture by margin on each side, panned.
	wy, wcb, wcr []byte
	ww, wh       int      // world luma size
	noise        []uint64 // sensor noise: each byte 0..3, XORed into the luma
	discs        []disc
}

type disc struct {
	r              int
	x0, y0, vx, vy float64
	y, cb, cr      uint8
	alpha          []uint8 // (2r)² soft mask
}

// NewScene prepares the background for pictures of w×h (even sizes).
func NewScene(w, h int) *Scene {
	s := &Scene{w: w, h: h, margin: max(16, w/20)}
	s.ww, s.wh = w+2*s.margin, h+2*s.margin
	rng := rand.New(rand.NewPCG(1, 2))
	s.wy = make([]byte, s.ww*s.wh)
	s.wcb = make([]byte, (s.ww/2)*(s.wh/2))
	s.wcr = make([]byte, (s.ww/2)*(s.wh/2))
	fw, fh := float64(s.ww), float64(s.wh)
	for y := 0; y < s.wh; y++ {
		for x := 0; x < s.ww; x++ {
			fx, fy := float64(x)/fw, float64(y)/fh
			// Smooth lighting: a diagonal ramp and two broad blobs.
			l := 70 + 90*fx*0.6 + 50*fy*0.4 + 30*math.Sin(2*math.Pi*(fx*1.3+fy*0.7)) + 20*math.Cos(2*math.Pi*(fy*1.7-fx*0.4))
			// Texture: a fine fabric-like weave in one region, wood-like stripes in another.
			if fx < 0.5 {
				l += 10 * math.Sin(float64(x)*0.9) * math.Sin(float64(y)*0.7)
			} else {
				l += 8 * math.Sin(float64(x)*0.15+6*math.Sin(float64(y)*0.03))
			}
			l += float64(rng.IntN(7) - 3) // fixed grain
			s.wy[y*s.ww+x] = uint8(min(235, max(16, l)))
		}
	}
	for y := 0; y < s.wh/2; y++ {
		for x := 0; x < s.ww/2; x++ {
			fx, fy := 2*float64(x)/fw, 2*float64(y)/fh
			s.wcb[y*(s.ww/2)+x] = uint8(128 + 20*math.Sin(2*math.Pi*(fx*0.8+0.1)) - 10*fy)
			s.wcr[y*(s.ww/2)+x] = uint8(128 + 18*math.Cos(2*math.Pi*(fy*0.9+fx*0.3)))
		}
	}
	// Sensor noise: up to ±3 levels (XOR of the two low bits), read at a different offset
	// every frame, eight pixels a step.
	s.noise = make([]uint64, (w*h)/8+h+4099)
	for i := range s.noise {
		s.noise[i] = rng.Uint64() & 0x0303030303030303
	}
	for _, d := range []disc{
		{r: h / 8, x0: 0.2, y0: 0.3, vx: 0.004, vy: 0.0027, y: 200, cb: 90, cr: 160},
		{r: h / 6, x0: 0.7, y0: 0.6, vx: -0.0031, vy: 0.0019, y: 60, cb: 150, cr: 110},
		{r: h / 11, x0: 0.5, y0: 0.2, vx: 0.0062, vy: -0.0045, y: 150, cb: 110, cr: 190},
	} {
		d.alpha = make([]uint8, 4*d.r*d.r)
		for y := 0; y < 2*d.r; y++ {
			for x := 0; x < 2*d.r; x++ {
				dist := math.Hypot(float64(x-d.r)+0.5, float64(y-d.r)+0.5)
				a := min(1, max(0, float64(d.r)-dist)/3) // 3-pixel soft edge
				d.alpha[y*2*d.r+x] = uint8(a * 255)
			}
		}
		s.discs = append(s.discs, d)
	}
	return s
}

// bounce maps a free-running position onto 0..1, reflecting at the ends.
func bounce(p float64) float64 {
	p = math.Mod(p, 2)
	if p < 0 {
		p += 2
	}
	if p > 1 {
		p = 2 - p
	}
	return p
}

// Frame draws frame n into img (allocated when nil) and returns it.
func (s *Scene) Frame(n int, img *image.YCbCr) *image.YCbCr {
	if img == nil {
		img = image.NewYCbCr(image.Rect(0, 0, s.w, s.h), image.YCbCrSubsampleRatio420)
	}
	t := float64(n)
	// A slow pan with a little shake, whole even pixels (chroma follows at half).
	px := s.margin + int(float64(s.margin-2)*math.Sin(t*0.021))&^1
	py := s.margin + int(float64(s.margin-2)*math.Sin(t*0.013+1))&^1
	for y := 0; y < s.h; y++ {
		copy(img.Y[y*img.YStride:y*img.YStride+s.w], s.wy[(y+py)*s.ww+px:])
	}
	cw := s.ww / 2
	for y := 0; y < s.h/2; y++ {
		copy(img.Cb[y*img.CStride:y*img.CStride+s.w/2], s.wcb[(y+py/2)*cw+px/2:])
		copy(img.Cr[y*img.CStride:y*img.CStride+s.w/2], s.wcr[(y+py/2)*cw+px/2:])
	}
	for _, d := range s.discs {
		cx := int(bounce(d.x0+d.vx*t) * float64(s.w-2*d.r))
		cy := int(bounce(d.y0+d.vy*t) * float64(s.h-2*d.r))
		blend(img, d, cx, cy)
	}
	k := int(uint32(n)*2654435761) % 4096
	for y := 0; y < s.h; y++ {
		row := img.Y[y*img.YStride : y*img.YStride+s.w]
		x := 0
		for ; x+8 <= len(row); x += 8 {
			binary.LittleEndian.PutUint64(row[x:], binary.LittleEndian.Uint64(row[x:])^s.noise[k])
			k++
		}
		for ; x < len(row); x++ {
			row[x] ^= byte(s.noise[k])
		}
		k++
	}
	return img
}

func blend(img *image.YCbCr, d disc, x0, y0 int) {
	side := 2 * d.r
	for y := 0; y < side; y++ {
		row := img.Y[(y0+y)*img.YStride+x0:]
		al := d.alpha[y*side : (y+1)*side]
		for x, a := range al {
			if a != 0 {
				row[x] = uint8((int(row[x])*(255-int(a)) + int(d.y)*int(a)) / 255)
			}
		}
	}
	for y := 0; y < side/2; y++ {
		ci := (y0/2+y)*img.CStride + x0/2
		for x := 0; x < side/2; x++ {
			a := int(d.alpha[(2*y)*side+2*x])
			if a != 0 {
				img.Cb[ci+x] = uint8((int(img.Cb[ci+x])*(255-a) + int(d.cb)*a) / 255)
				img.Cr[ci+x] = uint8((int(img.Cr[ci+x])*(255-a) + int(d.cr)*a) / 255)
			}
		}
	}
}

// NoiseBars draws frame n of the pattern mediadevices' test camera shows: colour bars at
// 75 %, a grey ramp below, and a block of black-and-white noise (new every frame) in the
// bottom right corner, a seventh of the picture that no codec can compress. Rate control
// must hold its budget on it too, by lowering the quality rather than overspending.
func NoiseBars(w, h, n int, img *image.YCbCr) *image.YCbCr {
	if img == nil {
		img = image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		colors := [][3]uint8{{235, 128, 128}, {210, 16, 146}, {170, 166, 16}, {145, 54, 34}, {107, 202, 222}, {82, 90, 240}, {41, 240, 110}}
		barEnd, rampEnd := h*3/4, w*5/7
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := [3]uint8{0, 128, 128}
				if y < barEnd {
					c = colors[x*7/w]
					c[0] = uint8(int(c[0]) * 75 / 100)
				} else if x < rampEnd {
					c[0] = uint8(x * 255 / rampEnd)
				}
				img.Y[img.YOffset(x, y)] = c[0]
				img.Cb[img.COffset(x, y)] = c[1]
				img.Cr[img.COffset(x, y)] = c[2]
			}
		}
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for y := h * 3 / 4; y < h; y++ {
		row := img.Y[y*img.YStride:]
		for x := w * 5 / 7; x < w; x += 64 {
			bits := rng.Uint64()
			for i := 0; i < 64 && x+i < w; i++ {
				row[x+i] = uint8(bits>>i&1) * 255
			}
		}
	}
	return img
}
