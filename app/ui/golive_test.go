package ui

import (
	"bytes"
	"context"
	"hash/fnv"
	"image"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	xtestext "github.com/jezek/xgb/xtest"

	"github.com/dazaarvision/dazaar-vision/media/capture"
)

// selectPrefix selects s's first option starting with prefix.
func selectPrefix(t *testing.T, s *widget.Select, prefix string) {
	t.Helper()
	for i, o := range s.Options {
		if strings.HasPrefix(o, prefix) {
			s.SetSelectedIndex(i)
			return
		}
	}
	t.Fatalf("no option %q in %q", prefix, s.Options)
}

// pictureHash is a hash of the picture the preview draws now (Fyne's goroutine: the test's).
func (g *goLiveScreen) pictureHash() uint64 {
	if g.preview.cur == nil {
		return 0
	}
	h := fnv.New64a()
	h.Write(g.preview.cur.Image.Pix)
	return h.Sum64()
}

// checkReleased waits until the wizard's device check let go of its devices.
func (h *harness) checkReleased(g *goLiveScreen) {
	h.t.Helper()
	done := g.checkDone
	h.waitFor("the device check to end", func() bool {
		if done == nil {
			return true
		}
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}

// The "Picture and sound" step shows the chosen camera's picture, moving, and the test
// microphone's level on the meter; leaving the step stops both (the devices are released and
// no picture arrives); coming back starts them again; "No picture" and "No sound" hide and
// empty them; and nothing is left running once the screen closes.
func TestGoLivePreviewAndMeter(t *testing.T) {
	defer checkLeaks(t)()
	h := newHarness(t, test.NewTempApp(t), Options{})
	defer h.close()
	h.u.showGoLive("")
	g := h.u.cur.(*goLiveScreen)
	h.waitFor("the devices", func() bool { return len(g.video.Options) > 1 })
	if g.checkStop != nil {
		t.Fatal("the devices are checked on the first step")
	}
	test.Tap(g.next)
	selectPrefix(t, g.video, "Test camera")
	selectPrefix(t, g.audio, "Test microphone")
	h.mustShow("Preview: ", "Microphone level: ", "The test camera's moving colour bars.")

	h.waitFor("pictures in the preview and the tone on the meter", func() bool {
		return g.preview.shown.Load() >= 5 && g.meter.Value > 0.5
	})
	// The test tone is a 0.25 sine: RMS −15 dBFS, 0.75 of the meter's 60 dB.
	if g.meter.Value < 0.7 || g.meter.Value > 0.8 {
		t.Errorf("the meter shows %.2f for the test tone, want 0.75 (−15 dBFS on 60 dB)", g.meter.Value)
	}
	if txt := g.meterText(); txt != "-15 dBFS (peak -12)" {
		t.Errorf("the meter says %q", txt)
	}
	first := g.pictureHash()
	h.waitFor("the preview to change", func() bool { return g.pictureHash() != first })

	// Leaving the step stops the check.
	test.Tap(g.back)
	h.checkReleased(g)
	h.pump()
	shown := g.preview.shown.Load()
	h.pumpFor(300 * time.Millisecond)
	if n := g.preview.shown.Load(); n != shown {
		t.Errorf("%d pictures drawn after leaving the step", n-shown)
	}
	if g.meter.Value != 0 {
		t.Errorf("the meter shows %.2f after leaving the step", g.meter.Value)
	}

	// Back on the step, it runs again.
	test.Tap(g.next)
	h.waitFor("pictures and level again", func() bool {
		return g.preview.shown.Load() >= shown+5 && g.meter.Value > 0.5
	})

	// No sound: the meter empties and says so; no picture: the preview hides.
	g.audio.SetSelected(optNoAudio)
	h.waitFor("the meter to empty", func() bool { return g.meter.Value == 0 })
	h.pumpFor(200 * time.Millisecond)
	if g.meter.Value != 0 || g.meterText() != "No sound" {
		t.Errorf("with no sound the meter shows %.2f, %q", g.meter.Value, g.meterText())
	}
	g.video.SetSelected(optNoVideo)
	h.pump()
	if g.previewBox.Visible() {
		t.Error("the preview shows with no picture chosen")
	}
	selectPrefix(t, g.audio, "Test microphone")
	h.waitFor("the tone again", func() bool { return g.meter.Value > 0.5 })
}

// The screen as the picture: its preview shows, with a word that it will be shared.
func TestGoLiveScreenPreview(t *testing.T) {
	defer checkLeaks(t)()
	display := xvfb(t, 800, 600)
	defer wizardHoldDisplay(t, display)() // closed before the goroutine check
	t.Setenv("DISPLAY", display)
	// The screens are registered for the whole process: forget this one afterwards, so the
	// other tests list no screen.
	t.Cleanup(func() { os.Setenv("DISPLAY", ""); capture.RescanScreens() })
	h := newHarness(t, test.NewTempApp(t), Options{})
	defer h.close()
	h.u.showGoLive("")
	g := h.u.cur.(*goLiveScreen)
	h.waitFor("the devices", func() bool { return len(g.video.Options) > 1 })
	// The screen is listed (first, as there is no camera) but not chosen for the broadcaster.
	if !strings.HasPrefix(g.video.Options[0], "Screen: ") {
		t.Fatalf("the screen is not listed first: %q", g.video.Options)
	}
	if !strings.HasPrefix(g.video.Selected, "Test camera") {
		t.Errorf("the wizard starts on %q, want the test camera", g.video.Selected)
	}
	test.Tap(g.next)
	selectPrefix(t, g.video, "Screen: ")
	g.audio.SetSelected(optNoAudio)
	h.mustShow("Your screen will be shared")
	h.waitFor("the screen's pictures", func() bool {
		if strings.HasPrefix(g.errLabel.Text, previewFailed) {
			t.Fatal(g.errLabel.Text)
		}
		return g.preview.shown.Load() >= 3
	})
	if b := g.preview.cur.Image.Rect; b.Dx() != 640 || b.Dy() != 480 {
		t.Errorf("the 800×600 screen previewed at %v, want 640×480", b)
	}
}

// focusables is every control under o that Tab can reach: visible, enabled, focusable.
func focusables(o fyne.CanvasObject) []fyne.Focusable {
	var out []fyne.Focusable
	walkVisible(o, func(o fyne.CanvasObject) bool {
		if d, ok := o.(fyne.Disableable); ok && d.Disabled() {
			return false
		}
		if f, ok := o.(fyne.Focusable); ok {
			out = append(out, f)
		}
		return true
	})
	return out
}

// tabThrough presses Tab as a window does (a control that accepts Tab keeps it; otherwise
// the focus moves on) from nothing focused, twice round, and fails for each control it never
// reached or that kept the Tab key.
func tabThrough(t *testing.T, c fyne.Canvas, what string, after ...func(fyne.Focusable)) {
	t.Helper()
	c.Unfocus()
	want := focusables(c.Content())
	reached := map[fyne.Focusable]bool{}
	for i := 0; i < 2*len(want)+2; i++ {
		if f, ok := c.Focused().(fyne.Tabbable); ok && f.AcceptsTab() {
			t.Errorf("%s: Tab is kept by %T and the focus cannot leave it", what, f)
			return
		}
		c.FocusNext()
		if f := c.Focused(); f != nil {
			reached[f] = true
			for _, fn := range after {
				fn(f)
			}
		}
	}
	for _, f := range want {
		if !reached[f] {
			t.Errorf("%s: Tab never reaches %T %v", what, f, f)
		}
	}
	if len(want) < 3 {
		t.Errorf("%s: only %d controls found", what, len(want))
	}
	t.Logf("%s: Tab reaches all %d controls", what, len(want))
}

// Tab reaches every control of each of the wizard's steps (the description, a multi-line
// entry, gives Tab back instead of typing a tab), with every part of the payment step shown.
func TestGoLiveKeyboard(t *testing.T) {
	defer checkLeaks(t)()
	h := newHarness(t, test.NewTempApp(t), Options{})
	defer h.close()
	h.u.showGoLive("")
	g := h.u.cur.(*goLiveScreen)
	h.waitFor("the devices", func() bool { return len(g.video.Options) > 1 })
	c := h.u.win.Canvas()
	tabThrough(t, c, "step 1")
	test.Tap(g.next)
	tabThrough(t, c, "step 2")
	test.Tap(g.next)
	tabThrough(t, c, "step 3, free")
	g.pay.SetSelected(payPaid)
	g.useChain.SetChecked(true)
	// The payment step is taller than the window: the focused control is scrolled into view.
	d := fyne.CurrentApp().Driver()
	hidden := 0
	inView := func(f fyne.Focusable) {
		g.showFocused()
		o := f.(fyne.CanvasObject)
		if o == g.next || o == g.back || o == g.home {
			return
		}
		y := d.AbsolutePositionForObject(o).Y - d.AbsolutePositionForObject(g.scroll).Y
		if y < 0 || y+o.Size().Height > g.scroll.Size().Height {
			hidden++
			t.Errorf("the focused %T %q is out of view: %.1f to %.1f in a %.1f-high view (offset %.1f of %.1f)", o, entryText(o), y, y+o.Size().Height, g.scroll.Size().Height, g.scroll.Offset.Y, g.scroll.Content.Size().Height)
		}
	}
	for _, how := range []string{lnByDir, lnByFiles} {
		g.lnHow.SetSelected(how)
		h.pump()
		tabThrough(t, c, "step 3, paid, Lightning by "+how+" and on-chain", inView)
	}
	if g.scroll.Content.Size().Height <= g.scroll.Size().Height {
		t.Errorf("the payment step (%.0f high) fits its %.0f-high view: nothing was checked", g.scroll.Content.Size().Height, g.scroll.Size().Height)
	}
	// The keyboard walks the wizard: Tab to Next, space presses it.
	test.Tap(g.back)
	test.Tap(g.back)
	c.Unfocus()
	for i := 0; i < 20 && c.Focused() != fyne.Focusable(g.next); i++ {
		c.FocusNext()
	}
	if c.Focused() != fyne.Focusable(g.next) {
		t.Fatal("Tab never reaches Next on step 1")
	}
	g.next.TypedKey(&fyne.KeyEvent{Name: fyne.KeySpace})
	if g.step != 1 {
		t.Fatalf("space on Next left the wizard at step %d", g.step+1)
	}
}

// xkeys types on an X display through the XTEST extension, as a keyboard would.
type xkeys struct {
	t    *testing.T
	c    *xgb.Conn
	root xproto.Window
	code map[xproto.Keysym]xproto.Keycode
}

const (
	keysymTab   xproto.Keysym = 0xff09
	keysymRight xproto.Keysym = 0xff53
	keysymSpace xproto.Keysym = 0x0020
)

func newXKeys(t *testing.T, display string) *xkeys {
	t.Helper()
	xgb.Logger = log.New(io.Discard, "", 0) // not "Could not get authority info": Xvfb has none
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connecting to %s: %v", display, err)
	}
	t.Cleanup(c.Close)
	if err := xtestext.Init(c); err != nil {
		t.Fatalf("the X server has no XTEST: %v", err)
	}
	setup := xproto.Setup(c)
	n := byte(setup.MaxKeycode - setup.MinKeycode + 1)
	km, err := xproto.GetKeyboardMapping(c, setup.MinKeycode, n).Reply()
	if err != nil {
		t.Fatal(err)
	}
	k := &xkeys{t: t, c: c, root: setup.DefaultScreen(c).Root, code: map[xproto.Keysym]xproto.Keycode{}}
	per := int(km.KeysymsPerKeycode)
	for i := 0; i < int(n); i++ {
		for j := 0; j < per; j++ {
			if s := km.Keysyms[i*per+j]; s != 0 {
				if _, ok := k.code[s]; !ok {
					k.code[s] = setup.MinKeycode + xproto.Keycode(i)
				}
			}
		}
	}
	// The pointer over the window: with no window manager the keyboard follows it.
	if err := xtestext.FakeInputChecked(c, xproto.MotionNotify, 0, 0, k.root, 500, 300, 0).Check(); err != nil {
		t.Fatal(err)
	}
	return k
}

// press presses and releases the key of sym n times, 150 ms apart (a window on a busy
// machine takes its time to move the focus).
func (k *xkeys) press(sym xproto.Keysym, n int) {
	k.t.Helper()
	code, ok := k.code[sym]
	if !ok {
		k.t.Fatalf("no key for keysym %#x", sym)
	}
	for i := 0; i < n; i++ {
		for _, ev := range []byte{xproto.KeyPress, xproto.KeyRelease} {
			if err := xtestext.FakeInputChecked(k.c, ev, byte(code), 0, k.root, 0, 0, 0).Check(); err != nil {
				k.t.Fatal(err)
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// TestGoLiveOptionsWindow: the built binary under Xvfb, driven by the keyboard alone (XTEST):
// Tab to Go live, space; Tab to Next, space; Tab to the picture, → to the test camera. The
// step's preview shows the test camera's moving bars (the region changes between two
// screenshots) and the level meter is drawn; the screenshot is docs/screenshots/golive-options.png.
func TestGoLiveOptionsWindow(t *testing.T) {
	bin := buildBinary(t)
	display := xvfb(t, 1280, 800)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := appCmd(ctx, t, bin, home, display)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	win := image.Rect(0, 0, 1100, 720)
	waitShot := func(what string, ok func(image.Image) bool) image.Image {
		t.Helper()
		for {
			img := screenshot(t, display)
			if ok(img) {
				return img
			}
			if ctx.Err() != nil {
				savePNG(t, img, "golive-options-failed.png")
				t.Fatalf("timed out waiting for %s; the app said:\n%s", what, out.String())
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitShot("the Home window", func(img image.Image) bool { return colours(img, win) > 50 })
	time.Sleep(time.Second) // the secret store opens and Home's lists load
	keys := newXKeys(t, display)
	keys.press(keysymTab, 1) // Home: Go live is the first control
	keys.press(keysymSpace, 1)
	// The wizard lists the devices, then enables Next (drawn blue at the bottom right).
	next := image.Rect(1030, 685, 1090, 710)
	waitShot("the wizard's Next enabled", func(img image.Image) bool { return blues(img, next) > 50 })
	keys.press(keysymTab, 5) // the stream, title, description, Home, Next
	keys.press(keysymSpace, 1)
	time.Sleep(time.Second)
	keys.press(keysymTab, 1)                  // from Next round to the picture's list
	keys.press(keysymRight, 1)                // the screen is listed first under X; next: the test camera
	preview := image.Rect(330, 100, 690, 300) // inside the 400×225 preview at (311, 88)
	var a, b image.Image
	waitShot("the test camera's preview", func(img image.Image) bool {
		a, b = b, img
		// The bars: saturated colours and grey steps (hundreds after scaling and noise), and
		// a picture that moves.
		return a != nil && colours(a, preview) > 100 && colours(b, preview) > 100 && differs(a, b, preview) > 500
	})
	// The meter: the bar's fill (the theme's primary blue) over about 0.75 of its width.
	if n, all := blues(b, image.Rect(320, 405, 1090, 415)), 770*10; n < all/2 {
		t.Errorf("the level meter is blue in %d of %d pixels", n, all)
	}
	savePNG(t, b.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(win), "golive-options.png")
}

// blues counts the pixels of r in img of the theme's primary blue (the meter's fill, a
// high-importance button).
func blues(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cb>>8 > 200 && cr>>8 < 80 && cg>>8 < 150 {
				n++
			}
		}
	}
	return n
}

func entryText(o fyne.CanvasObject) string {
	if e, ok := o.(*widget.Entry); ok {
		return e.Text + "|" + e.PlaceHolder
	}
	return ""
}

// wizardHoldDisplay keeps a connection to the display until t ends: Xvfb resets when its last
// client leaves, and a screen opened during the reset fails ("failed to open display"), as
// when the preview closes the screen and opens it again. It returns what closes the connection.
func wizardHoldDisplay(t *testing.T, display string) func() {
	t.Helper()
	xgb.Logger = log.New(io.Discard, "", 0)
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connecting to %s: %v", display, err)
	}
	return c.Close
}

// A credential field names a file or holds the credential itself: a file is read up to a
// credential's size (a device that never ends is refused, not read into memory), a folder
// is said as such, and pasted hex or PEM is taken as it is.
func TestReadBytes(t *testing.T) {
	dir := t.TempDir()
	mac := filepath.Join(dir, "invoice.macaroon")
	if err := os.WriteFile(mac, []byte{2, 1, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text, want, err string
	}{
		{mac, "\x02\x01\x03", ""},
		{"0201", "0201", ""},
		{"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", ""},
		{"/dev/zero", "", "larger than 1024 KiB"},
		{dir, "", "it is a folder"},
		{filepath.Join(dir, "missing"), "", "no such file"},
	}
	for _, tt := range tests {
		b, err := readBytes(tt.text)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("readBytes(%q): %v, want an error saying %q", tt.text, err, tt.err)
			}
			continue
		}
		if err != nil || string(b) != tt.want {
			t.Errorf("readBytes(%q) = %q, %v; want %q", tt.text, b, err, tt.want)
		}
	}
}
