//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
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
)

// Real windows under Xvfb, looked at with ImageMagick's import and zbarimg (the Makefile's
// APT_TEST installs xvfb, imagemagick and zbar-tools), keys pressed through the XTEST
// extension.

func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `make deps-test` (the Makefile's APT_TEST installs it)", tool)
		}
	}
}

// xvfb starts a virtual display and returns its name (":N").
func xvfb(t testing.TB, w, h int) string {
	t.Helper()
	need(t, "Xvfb")
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{wr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		r.Close()
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb did not start")
		}
		return ":" + n
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not say its display number")
	}
	return ""
}

// screenshot captures the whole display.
func screenshot(t testing.TB, display string) image.Image {
	t.Helper()
	need(t, "import")
	out, err := exec.Command("import", "-display", display, "-window", "root", "png:-").Output()
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	return img
}

// colours counts the distinct colours in r of img (up to 1000), every other pixel.
func colours(img image.Image, r image.Rectangle) int {
	seen := map[[3]uint32]bool{}
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			seen[[3]uint32{cr >> 8, cg >> 8, cb >> 8}] = true
			if len(seen) >= 1000 {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// differs counts pixels of r (every other one) that differ between a and b.
func differs(a, b image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			if a.At(x, y) != b.At(x, y) {
				n++
			}
		}
	}
	return n
}

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
