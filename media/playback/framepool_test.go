package playback

import (
	"image"
	"image/color"
	"image/draw"
	"testing"
	"time"
)

func testYCbCr(w, h int, r image.YCbCrSubsampleRatio) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), r)
	for i := range img.Y {
		img.Y[i] = uint8(i * 7)
	}
	for i := range img.Cb {
		img.Cb[i] = uint8(i * 13)
		img.Cr[i] = uint8(255 - i*5)
	}
	return img
}

// Paint gives what image/draw gives (nearest sampling when scaling), for each kind of picture
// a capture device hands over.
func TestPaint(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 3)
	}
	gray := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i)
	}
	for _, tc := range []struct {
		name string
		src  image.Image
		w, h int
	}{
		{"420 same size", testYCbCr(64, 48, image.YCbCrSubsampleRatio420), 64, 48},
		{"420 halved", testYCbCr(64, 48, image.YCbCrSubsampleRatio420), 32, 24},
		{"422 scaled", testYCbCr(64, 48, image.YCbCrSubsampleRatio422), 40, 30},
		{"444 same size", testYCbCr(64, 48, image.YCbCrSubsampleRatio444), 64, 48},
		{"440 (generic YCbCr)", testYCbCr(64, 48, image.YCbCrSubsampleRatio440), 32, 24},
		{"420 sub-image", testYCbCr(64, 48, image.YCbCrSubsampleRatio420).SubImage(image.Rect(6, 4, 54, 40)), 48, 36},
		{"rgba halved", rgba, 32, 24},
		{"rgba same size", rgba, 64, 48},
		{"gray", gray, 32, 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
			Paint(got, tc.src)
			sb := tc.src.Bounds()
			for y := 0; y < tc.h; y++ {
				for x := 0; x < tc.w; x++ {
					sx, sy := sb.Min.X+x*sb.Dx()/tc.w, sb.Min.Y+y*sb.Dy()/tc.h
					want := color.RGBAModel.Convert(tc.src.At(sx, sy)).(color.RGBA)
					want.A = 0xff
					if g := got.RGBAAt(x, y); g != want {
						t.Fatalf("pixel (%d,%d) from (%d,%d): %v, want %v", x, y, sx, sy, g, want)
					}
				}
			}
		})
	}
	// Same size and format: exactly image/draw.
	src := testYCbCr(64, 48, image.YCbCrSubsampleRatio420)
	a, b := image.NewRGBA(src.Rect), image.NewRGBA(src.Rect)
	Paint(a, src)
	draw.Draw(b, b.Rect, src, image.Point{}, draw.Src)
	for i := range a.Pix {
		if a.Pix[i] != b.Pix[i] {
			t.Fatalf("byte %d: %d, image/draw %d", i, a.Pix[i], b.Pix[i])
		}
	}
}

// A released frame's picture is the next one's: a steady stream allocates no pictures.
func TestFramePoolRecycles(t *testing.T) {
	p := NewFramePool(32, 24, 2)
	src := testYCbCr(64, 48, image.YCbCrSubsampleRatio420)
	f := p.Convert(src, 0)
	first := f.Image
	f.Release()
	f.Release() // twice is harmless
	g := p.Convert(src, 1)
	if g.Image != first {
		t.Fatal("the released picture was not reused")
	}
	allocs := testing.AllocsPerRun(50, func() {
		f := p.Convert(src, 2)
		f.Release()
	})
	if allocs > 1 { // the Frame itself
		t.Fatalf("%.1f allocations a frame", allocs)
	}
}

func TestFitSize(t *testing.T) {
	for _, tc := range []struct{ w, h, mw, mh, ww, wh int }{
		{640, 480, 640, 480, 640, 480},
		{1920, 1080, 640, 480, 640, 360},
		{1280, 720, 640, 360, 640, 360},
		{480, 640, 640, 480, 360, 480},
		{320, 240, 640, 480, 320, 240},
		{0, 0, 640, 480, 0, 0},
	} {
		w, h := FitSize(tc.w, tc.h, tc.mw, tc.mh)
		if w != tc.ww || h != tc.wh {
			t.Errorf("FitSize(%d, %d, %d, %d) = %d×%d, want %d×%d", tc.w, tc.h, tc.mw, tc.mh, w, h, tc.ww, tc.wh)
		}
	}
}

// An empty queue's next hands out the channel the next push closes, taken with the look at
// the queue: a frame pushed right after the look wakes the presenter.
func TestVideoQueueNextWakesOnThePushAfterIt(t *testing.T) {
	q := newVideoQueue(4)
	for i := range 3 {
		f, _, pushed := q.next()
		if f != nil {
			t.Fatalf("round %d: a frame in an empty queue", i)
		}
		select {
		case <-pushed:
			t.Fatalf("round %d: woken before a push", i)
		default:
		}
		q.push(&Frame{PTS: time.Duration(i)})
		select {
		case <-pushed:
		default:
			t.Fatalf("round %d: the push after the look did not wake it", i)
		}
		f, _, pushed = q.next()
		if f == nil || f.PTS != time.Duration(i) || pushed != nil {
			t.Fatalf("round %d: next gives %v, %v", i, f, pushed)
		}
		q.remove(f)
	}
}
