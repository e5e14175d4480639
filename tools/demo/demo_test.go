//go:build linux

package main

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// Where the parts of the viewer's 1100×720 window lie on the display (no window manager: the
// window is at 0,0). The video region is inside the picture whether the buy panel shows or
// not; the countdown is the right end of the controls row, left of Top up.
var (
	videoRegion     = image.Rect(60, 200, 700, 600)
	countdownRegion = image.Rect(770, 620, 1005, 670)
)

// TestPaidDemoWindows is `make demo` as a person meets it, under Xvfb: btcd simnet, the
// seller's LND and the demo wallet's, the broadcaster's window and the viewer's as two
// processes on two displays. The viewer's invoice QR decodes to exactly the invoice; "Open in
// wallet" runs xdg-open with the invoice's URI; Space on the focused "Pay with the demo wallet"
// pays it; the video region then changes between
// screenshots and the countdown moves; when the bought minute is used up the video region
// stops changing. Both windows close cleanly on SIGINT.
func TestPaidDemoWindows(t *testing.T) {
	need(t, "Xvfb", "import", "zbarimg")
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := xtest.GoCommand(t.Context(), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w := startWorld(t)
	sellerDisplay, viewerDisplay := xvfb(t, 1280, 800), xvfb(t, 1280, 800)
	c := config{price: "60 sats per minute", minutes: 1, verbose: true}
	// The viewer's "Open in wallet" hands the invoice to the OS: on Linux, Fyne runs xdg-open
	// with it. The one on the viewer's PATH writes down what it was given.
	bindir, opened := t.TempDir(), filepath.Join(w.dir, "opened.txt")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" >> " + opened + "\n"
	if err := os.WriteFile(filepath.Join(bindir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := func(display string) []string {
		return []string{"DISPLAY=" + display, "XDG_CONFIG_HOME=" + filepath.Join(w.dir, "config"+display), "LANG=en_US.UTF-8", "FYNE_SCALE=1",
			"PATH=" + bindir + string(os.PathListSeparator) + os.Getenv("PATH")}
	}
	var sellerOut, viewerOut xtest.SyncBuffer
	seller, err := launch(bin, "broadcaster", w.sellerArgs(c), env(sellerDisplay), &sellerOut)
	if err != nil {
		t.Fatal(err)
	}
	var viewer *child
	defer func() {
		if t.Failed() {
			t.Logf("the broadcaster's window said:\n%s\nthe viewer's window said:\n%s", sellerOut.String(), viewerOut.String())
		}
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			viewer.stop(20 * time.Second)
			seller.stop(20 * time.Second)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := w.waitCard(ctx, seller); err != nil {
		t.Fatal(err)
	}
	if viewer, err = launch(bin, "viewer", w.viewerArgs(c), env(viewerDisplay), &viewerOut); err != nil {
		t.Fatal(err)
	}

	// The invoice: the viewer's log says what it shows; the QR on the screen holds exactly that.
	uri := waitFor(t, ctx, "the invoice", func() []string {
		return regexp.MustCompile(`msg="invoice shown" .*uri=(\S+)`).FindStringSubmatch(viewerOut.String())
	})[1]
	var shot image.Image
	waitFor(t, ctx, "the invoice's QR on the screen", func() []string {
		shot = screenshot(t, viewerDisplay)
		return qrCodes(t, shot)
	})
	// The QR holds the invoice's URI in upper case (wallet/paymentqr: QR's alphanumeric mode,
	// which BOLT11 and BIP21 allow), character for character.
	if codes := qrCodes(t, shot); len(codes) != 1 || codes[0] != strings.ToUpper(uri) {
		t.Fatalf("the QR on the screen holds %q, the invoice is %q", codes, uri)
	}
	if n := colours(shot, shot.Bounds()); n < 50 {
		t.Fatalf("the viewer's screen has %d colours", n)
	}
	savePNG(t, shot, "demo-viewer-invoice.png")

	// "Open in wallet" (the blue button of the buy panel) hands the invoice's URI to the OS.
	at, n := centre(shot, image.Rect(766, 160, 1100, 600), func(r, g, b uint32) bool { return b > 200 && r < 90 && g > 70 && g < 160 })
	if n < 200 {
		t.Fatalf("no blue \"Open in wallet\" button in the buy panel (%d pixels)", n)
	}
	click(t, viewerDisplay, int16(at.X), int16(at.Y))
	got := waitFor(t, ctx, "xdg-open to be run", func() []string {
		b, err := os.ReadFile(opened)
		if err != nil || len(b) == 0 {
			return nil
		}
		return []string{strings.TrimSpace(string(b))}
	})[0]
	if got != uri {
		t.Fatalf("Open in wallet handed the OS %q, the invoice is %q", got, uri)
	}
	t.Logf("Open in wallet ran xdg-open %.40s…", got)

	// One key: Space on the pay button, which has the keyboard.
	pressKey(t, viewerDisplay, 400, 400, 0x20)
	paidAt := time.Now()
	var a, b image.Image
	waitFor(t, ctx, "the video after paying", func() []string {
		a = screenshot(t, viewerDisplay)
		time.Sleep(700 * time.Millisecond)
		b = screenshot(t, viewerDisplay)
		if colours(a, videoRegion) > 200 && colours(b, videoRegion) > 200 && differs(a, b, videoRegion) > 500 {
			return []string{"playing"}
		}
		return nil
	})
	t.Logf("paid → video region changing after %v; %d of %d sampled pixels changed in 0.7 s",
		time.Since(paidAt).Round(100*time.Millisecond), differs(a, b, videoRegion), videoRegion.Dx()*videoRegion.Dy()/4)
	a = screenshot(t, viewerDisplay)
	time.Sleep(1600 * time.Millisecond)
	b = screenshot(t, viewerDisplay)
	if colours(b, countdownRegion) < 3 || differs(a, b, countdownRegion) == 0 {
		savePNG(t, b, "failed-countdown.png")
		t.Fatalf("the countdown did not move in 1.6 s (%d colours, %d pixels changed)", colours(b, countdownRegion), differs(a, b, countdownRegion))
	}
	savePNG(t, b, "demo-viewer-playing.png")
	savePNG(t, screenshot(t, sellerDisplay), "demo-broadcaster-live.png")

	// The minute bought runs out: the seller stops sending and the picture stands still. It
	// moved until close to the minute's end (the seller bills video delivered, which runs a
	// little ahead of what is shown) and stands still for good after it.
	lastChange := time.Now()
	prev := b
	for still := time.Duration(0); still < 6*time.Second; {
		if time.Since(paidAt) > 110*time.Second {
			savePNG(t, prev, "failed-expiry.png")
			t.Fatalf("the video region still changes %v after paying for a minute", time.Since(paidAt).Round(time.Second))
		}
		time.Sleep(time.Second)
		cur := screenshot(t, viewerDisplay)
		if differs(prev, cur, videoRegion) > 0 {
			lastChange, still = time.Now(), 0
		} else {
			still = time.Since(lastChange)
		}
		prev = cur
	}
	played := lastChange.Sub(paidAt)
	t.Logf("the video region last changed %v after paying for a minute", played.Round(100*time.Millisecond))
	if played < 40*time.Second {
		savePNG(t, prev, "failed-expiry.png")
		t.Fatalf("the video stopped %v after paying for a minute", played.Round(100*time.Millisecond))
	}
	savePNG(t, prev, "demo-viewer-expired.png")

	// Both windows close cleanly.
	stopped = true
	viewer.stop(20 * time.Second)
	seller.stop(20 * time.Second)
	for _, ch := range []*child{viewer, seller} {
		if ch.err != nil {
			t.Errorf("the %s window did not end cleanly on SIGINT: %v", ch.name, ch.err)
		}
	}
}

// waitFor polls fn until it returns something, failing the test when ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, fn func() []string) []string {
	t.Helper()
	for {
		if m := fn(); m != nil {
			return m
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s in time", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestMain(m *testing.M) {
	// The windows are this package's program, built by the test; nothing else runs here.
	os.Exit(m.Run())
}
