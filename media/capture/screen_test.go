package capture

import (
	"context"
	"image/color"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/pion/mediadevices/pkg/prop"
)

// TestScreenSourceUnderXvfb captures a real X11 screen (Xvfb, white root window with a red
// xlogo window on it), encodes the captures to VP8 and checks the decoded pictures show
// both.
func TestScreenSourceUnderXvfb(t *testing.T) {
	for _, tc := range []struct {
		name               string
		w, h, wantW, wantH int
	}{
		{"one screen", 640, 480, 640, 480},
		// Wider than a viewer's decoder takes: scaled down to fit (TestScreenFitsTheDecoder).
		{"two monitors side by side", 5120, 1440, 4096, 1152},
	} {
		t.Run(tc.name, func(t *testing.T) { screenUnderXvfb(t, tc.w, tc.h, tc.wantW, tc.wantH) })
	}
}

func screenUnderXvfb(t *testing.T, w, h, wantW, wantH int) {
	// -wr: a white root window, which the test looks for in the captures.
	t.Setenv("DISPLAY", xtest.Xvfb(t, w, h, "-wr"))
	if _, err := exec.LookPath("xlogo"); err != nil {
		t.Fatalf("xlogo is not installed (make test installs x11-apps): %v", err)
	}
	logo := exec.Command("xlogo", "-geometry", "200x160+40+60", "-bg", "red", "-fg", "red")
	if err := logo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logo.Process.Kill()
		logo.Wait()
	})
	RescanScreens()
	var screen *Device
	for _, d := range Devices() {
		if d.Kind == Screen {
			screen = &d
			break
		}
	}
	if screen == nil {
		t.Fatalf("no screen found on %s; devices %+v", os.Getenv("DISPLAY"), Devices())
	}
	src, err := OpenVideo(*screen, VideoWant{FrameRate: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	enc := &vp8.Builder{Config: vp8.Config{BitRate: 800_000}}
	rc, err := enc.BuildVideoEncoder(src, prop.Media{Video: prop.Video{Width: src.Width, Height: src.Height}})
	if err != nil {
		t.Fatal(err)
	}
	re := rc.(*vp8.ReadEncoder)
	defer re.Close()
	dec, _ := vp8.NewDecoder()
	defer dec.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; ctx.Err() == nil; i++ {
		f, err := re.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		img, err := dec.Decode(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		if img.Rect.Dx() != wantW || img.Rect.Dy() != wantH {
			t.Fatalf("screen picture is %v, want %d×%d", img.Rect, wantW, wantH)
		}
		// Red (BT.601 limited: Y≈81, Cr≈240) inside the window, white (Y≈235) outside, at
		// the screen's (140, 140) and (500, 400) in the picture's scale.
		at := func(x, y int) color.YCbCr { return img.YCbCrAt(x*wantW/w, y*wantH/h) }
		in, out := at(140, 140), at(500, 400)
		if in.Cr > 200 && in.Y < 110 && out.Y > 220 && out.Cr > 118 && out.Cr < 138 {
			t.Logf("frame %d: window Y=%d Cr=%d, root Y=%d", i, in.Y, in.Cr, out.Y)
			return
		}
		// The window may take a few frames to be mapped and drawn.
		time.Sleep(50 * time.Millisecond)
		if i > 100 {
			t.Fatalf("the screen capture never showed the red window: inside %+v outside %+v", in, out)
		}
	}
	t.Fatal("timed out")
}
