package playback

import (
	"image"
	"time"
)

// FramePool makes Frames from pictures that do not come out of the player (a camera's
// preview before going live), so that anything drawing a FrameSink draws them too. The
// pictures are RGBA of one size and are recycled: a Frame's Release gives its picture back
// for the next one, so a steady stream of pictures allocates none once the pool has as
// many as are held at a time.
type FramePool struct{ pool *framePool }

// NewFramePool makes a pool of w×h pictures that keeps up to spare released ones.
func NewFramePool(w, h, spare int) *FramePool {
	return &FramePool{pool: newFramePool(w, h, max(spare, 1))}
}

// Size is the pool's picture size.
func (p *FramePool) Size() (w, h int) { return p.pool.w, p.pool.h }

// Convert paints src into a picture of the pool's size (scaled by nearest sampling when the
// sizes differ) and returns it as a Frame at pts. YCbCr (4:2:0, 4:2:2, 4:4:4) and RGBA have
// fast paths; other images go through the generic image.Image interface.
func (p *FramePool) Convert(src image.Image, pts time.Duration) *Frame {
	dst := p.pool.get()
	Paint(dst, src)
	return &Frame{Image: dst, PTS: pts, pool: p.pool}
}

// FitSize is w×h scaled down, keeping its aspect ratio, to fit maxW×maxH (never up), with
// even sides.
func FitSize(w, h, maxW, maxH int) (int, int) {
	if w <= 0 || h <= 0 {
		return 0, 0
	}
	if w > maxW {
		h, w = h*maxW/w, maxW
	}
	if h > maxH {
		w, h = w*maxH/h, maxH
	}
	return max(2, w&^1), max(2, h&^1)
}

// Paint converts src into dst, scaling by nearest sampling when their sizes differ.
func Paint(dst *image.RGBA, src image.Image) {
	db, sb := dst.Rect, src.Bounds()
	dw, dh, sw, sh := db.Dx(), db.Dy(), sb.Dx(), sb.Dy()
	if dw <= 0 || dh <= 0 || sw <= 0 || sh <= 0 {
		return
	}
	// xs[x] is the source column of destination column x (relative to sb.Min.X).
	var xsBuf [4096]int
	xs := xsBuf[:0]
	if dw > len(xsBuf) {
		xs = make([]int, 0, dw)
	}
	for x := 0; x < dw; x++ {
		xs = append(xs, x*sw/dw)
	}
	switch s := src.(type) {
	case *image.YCbCr:
		paintYCbCr(dst, s, xs)
	case *image.RGBA:
		for y := 0; y < dh; y++ {
			sy := sb.Min.Y + y*sh/dh
			srow := s.Pix[s.PixOffset(sb.Min.X, sy):]
			drow := dst.Pix[y*dst.Stride : y*dst.Stride+4*dw]
			if sw == dw {
				copy(drow, srow[:4*dw])
				continue
			}
			for x, sx := range xs {
				copy(drow[4*x:4*x+4], srow[4*sx:4*sx+4])
			}
		}
		// Screens give 32-bit pixels whose alpha byte is unset: the preview is opaque.
		for i := 3; i < len(dst.Pix); i += 4 {
			dst.Pix[i] = 0xff
		}
	default:
		for y := 0; y < dh; y++ {
			sy := sb.Min.Y + y*sh/dh
			drow := dst.Pix[y*dst.Stride:]
			for x, sx := range xs {
				r, g, b, _ := src.At(sb.Min.X+sx, sy).RGBA()
				drow[4*x], drow[4*x+1], drow[4*x+2], drow[4*x+3] = uint8(r>>8), uint8(g>>8), uint8(b>>8), 0xff
			}
		}
	}
}

// paintYCbCr converts with the JFIF (full-range BT.601) integer arithmetic that image/color's
// YCbCrToRGB uses, one row of the destination at a time.
func paintYCbCr(dst *image.RGBA, s *image.YCbCr, xs []int) {
	sb := s.Rect
	dw, dh, sh := dst.Rect.Dx(), dst.Rect.Dy(), sb.Dy()
	var hx, vy int // chroma subsampling shifts
	switch s.SubsampleRatio {
	case image.YCbCrSubsampleRatio420:
		hx, vy = 1, 1
	case image.YCbCrSubsampleRatio422:
		hx = 1
	case image.YCbCrSubsampleRatio444:
	default:
		for y := 0; y < dh; y++ {
			sy := sb.Min.Y + y*sh/dh
			drow := dst.Pix[y*dst.Stride:]
			for x, sx := range xs {
				c := s.YCbCrAt(sb.Min.X+sx, sy)
				r, g, b, _ := c.RGBA()
				drow[4*x], drow[4*x+1], drow[4*x+2], drow[4*x+3] = uint8(r>>8), uint8(g>>8), uint8(b>>8), 0xff
			}
		}
		return
	}
	for y := 0; y < dh; y++ {
		sy := sb.Min.Y + y*sh/dh
		yrow := s.Y[(sy-sb.Min.Y)*s.YStride:]
		crow := (sy>>vy - sb.Min.Y>>vy) * s.CStride
		cb, cr := s.Cb[crow:], s.Cr[crow:]
		drow := dst.Pix[y*dst.Stride : y*dst.Stride+4*dw]
		for x, sx := range xs {
			ax := sb.Min.X + sx
			ci := ax>>hx - sb.Min.X>>hx
			yy := int32(yrow[sx]) * 0x10101
			cbv := int32(cb[ci]) - 128
			crv := int32(cr[ci]) - 128
			r := yy + 91881*crv
			g := yy - 22554*cbv - 46802*crv
			b := yy + 116130*cbv
			drow[4*x] = clamp16(r)
			drow[4*x+1] = clamp16(g)
			drow[4*x+2] = clamp16(b)
			drow[4*x+3] = 0xff
		}
	}
}

func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	if v < 0 {
		return 0
	}
	return 0xff
}
