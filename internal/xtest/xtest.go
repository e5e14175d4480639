// Package xtest is the one home for the tests' real-window helpers: a virtual X display of
// their own (Xvfb), screenshots of it (ImageMagick's import) and the pixel counts the tests
// judge them by; and zbarimg's reading of a QR code (DecodeQR). Used by app/ui, app/cli, media/capture, tools/demo and the installer tests under
// packaging.
package xtest

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Need fails t unless every tool is on PATH, saying how to get it.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `make deps-test` (the Makefile's APT_TEST installs it)", tool)
		}
	}
}

// Xvfb starts an X server of its own, w×h at 24 bits, stopped when t ends, and returns its
// display name (":N"). The server never resets (-noreset): by default Xvfb resets when its last
// client leaves, and a screenshot taken before the app under test has connected would
// otherwise leave it resetting while the next client connects. args are added to the
// server's (e.g. "-wr" for a white root window).
func Xvfb(t testing.TB, w, h int, args ...string) string {
	t.Helper()
	Need(t, "Xvfb")
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", append([]string{"-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp", "-noreset"}, args...)...)
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

// Screenshot captures the whole display.
func Screenshot(t testing.TB, display string) image.Image {
	t.Helper()
	Need(t, "import")
	var out []byte
	var err error
	for try := 0; ; try++ {
		var stderr bytes.Buffer
		cmd := exec.Command("import", "-display", display, "-window", "root", "png:-")
		cmd.Stderr = &stderr
		if out, err = cmd.Output(); err == nil {
			break
		}
		if try == 2 {
			t.Fatalf("import (a screenshot of %s): %v: %s", display, err, strings.TrimSpace(stderr.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	return img
}

// Colours counts the distinct colours in r of img (up to 1000), every other pixel.
func Colours(img image.Image, r image.Rectangle) int {
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

// Differs counts the pixels of r (every other one) that differ between a and b.
func Differs(a, b image.Image, r image.Rectangle) int {
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
