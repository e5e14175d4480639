//go:build linux

package main

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"

	xwin "github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// Real windows under Xvfb, looked at with ImageMagick's import and zbarimg (the Makefile's
// APT_TEST installs xvfb, imagemagick and zbar-tools), keys pressed through the XTEST
// extension.

func need(t testing.TB, tools ...string) { xwin.Need(t, tools...) }

func xvfb(t testing.TB, w, h int) string { return xwin.Xvfb(t, w, h) }

func screenshot(t testing.TB, display string) image.Image { return xwin.Screenshot(t, display) }

func colours(img image.Image, r image.Rectangle) int { return xwin.Colours(img, r) }

func differs(a, b image.Image, r image.Rectangle) int { return xwin.Differs(a, b, r) }

// qrCodes decodes the QR codes in img with zbarimg.
func qrCodes(t testing.TB, img image.Image) []string {
	t.Helper()
	need(t, "zbarimg")
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", "png:-")
	cmd.Stdin = &buf
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 4 { // no symbol found
			return nil
		}
		t.Fatalf("zbarimg: %v", err)
	}
	var codes []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			codes = append(codes, l)
		}
	}
	return codes
}

// windowRect is where a window lies on the display: with no window manager, at 0,0 in the
// size app/ui gives it.
var windowRect = image.Rect(0, 0, 1100, 720)

// savePNG keeps a screenshot: in docs/screenshots with DV_UPDATE_SCREENSHOTS=1, else in the
// system's temporary folder.
func savePNG(t testing.TB, img image.Image, name string) {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "dv-demo-screenshots")
	if os.Getenv("DV_UPDATE_SCREENSHOTS") != "" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	os.MkdirAll(dir, 0o755)
	if s, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok && !strings.HasPrefix(name, "failed-") {
		img = s.SubImage(windowRect) // the window, not the empty rest of the display
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// pressKey moves the pointer to (x, y) (with no window manager, keys go to the window under
// the pointer) and presses and releases the key whose keysym is sym, through XTEST.
func pressKey(t testing.TB, display string, x, y int16, sym xproto.Keysym) {
	t.Helper()
	xgb.Logger = log.New(io.Discard, "", 0) // not "Could not get authority info": Xvfb has none
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connecting to %s: %v", display, err)
	}
	defer c.Close()
	if err := xtest.Init(c); err != nil {
		t.Fatalf("the display has no XTEST: %v", err)
	}
	setup := xproto.Setup(c)
	root := setup.DefaultScreen(c).Root
	first, count := setup.MinKeycode, byte(setup.MaxKeycode-setup.MinKeycode+1)
	m, err := xproto.GetKeyboardMapping(c, first, count).Reply()
	if err != nil {
		t.Fatal(err)
	}
	code := xproto.Keycode(0)
	for i, s := range m.Keysyms {
		if s == sym {
			code = first + xproto.Keycode(i/int(m.KeysymsPerKeycode))
			break
		}
	}
	if code == 0 {
		t.Fatalf("no key has keysym %#x", sym)
	}
	for _, ev := range []struct {
		typ    byte
		detail byte
	}{{xproto.MotionNotify, 0}, {xproto.KeyPress, byte(code)}, {xproto.KeyRelease, byte(code)}} {
		if err := xtest.FakeInputChecked(c, ev.typ, ev.detail, 0, root, x, y, 0).Check(); err != nil {
			t.Fatalf("XTEST: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// click moves the pointer to (x, y) and clicks the left button, through XTEST.
func click(t testing.TB, display string, x, y int16) {
	t.Helper()
	xgb.Logger = log.New(io.Discard, "", 0)
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connecting to %s: %v", display, err)
	}
	defer c.Close()
	if err := xtest.Init(c); err != nil {
		t.Fatalf("the display has no XTEST: %v", err)
	}
	root := xproto.Setup(c).DefaultScreen(c).Root
	for _, ev := range []struct{ typ, detail byte }{{xproto.MotionNotify, 0}, {xproto.ButtonPress, 1}, {xproto.ButtonRelease, 1}} {
		if err := xtest.FakeInputChecked(c, ev.typ, ev.detail, 0, root, x, y, 0).Check(); err != nil {
			t.Fatalf("XTEST: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// centre is the centre of the pixels of r in img that match, and how many matched.
func centre(img image.Image, r image.Rectangle, match func(r, g, b uint32) bool) (image.Point, int) {
	var sx, sy, n int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if match(cr>>8, cg>>8, cb>>8) {
				sx, sy, n = sx+x, sy+y, n+1
			}
		}
	}
	if n == 0 {
		return image.Point{}, 0
	}
	return image.Pt(sx/n, sy/n), n
}
