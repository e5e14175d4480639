package capture

import (
	"image"
	"testing"

	"github.com/pion/mediadevices/pkg/io/video"

	"github.com/dazaarvision/dazaar-vision/media/vp8"
)

// A screen larger than a viewer's decoder takes (two monitors side by side) is scaled down to
// fit, keeping its shape; others pass untouched.
func TestScreenFitsTheDecoder(t *testing.T) {
	for _, tc := range []struct {
		w, h, wantW, wantH int
	}{
		{1920, 1080, 1920, 1080},
		{vp8.MaxWidth, vp8.MaxHeight, vp8.MaxWidth, vp8.MaxHeight},
		{5120, 1440, 4096, 1152}, // two 2560×1440 side by side
		{3840, 2400, 3686, 2304}, // 16:10 4K, too tall
		{7680, 2160, 4096, 1152}, // two 4K side by side
		{2560, 4096, 1440, 2304}, // portrait
	} {
		src := video.ReaderFunc(func() (image.Image, func(), error) {
			return image.NewRGBA(image.Rect(0, 0, tc.w, tc.h)), func() {}, nil
		})
		r, w, h := fitDecoder(src, tc.w, tc.h)
		if w != tc.wantW || h != tc.wantH {
			t.Errorf("%d×%d: fitted to %d×%d, want %d×%d", tc.w, tc.h, w, h, tc.wantW, tc.wantH)
		}
		img, release, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Errorf("%d×%d: a picture of %v, the source says %d×%d", tc.w, tc.h, b, w, h)
		}
		release()
	}
}
