package ui

import (
	"hash/fnv"
	"os"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

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
	h.capture("golive-options-widget.png")

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
	t.Setenv("DISPLAY", display)
	// The screens are registered for the whole process: forget this one afterwards, so the
	// other tests list no screen.
	t.Cleanup(func() { os.Setenv("DISPLAY", ""); capture.RescanScreens() })
	h := newHarness(t, test.NewTempApp(t), Options{})
	defer h.close()
	h.u.showGoLive("")
	g := h.u.cur.(*goLiveScreen)
	h.waitFor("the devices", func() bool { return len(g.video.Options) > 1 })
	test.Tap(g.next)
	selectPrefix(t, g.video, "Screen: ")
	g.audio.SetSelected(optNoAudio)
	h.mustShow("Your screen will be shared")
	h.waitFor("the screen's pictures", func() bool { return g.preview.shown.Load() >= 3 })
	if b := g.preview.cur.Image.Rect; b.Dx() != 640 || b.Dy() != 480 {
		t.Errorf("the 800×600 screen previewed at %v, want 640×480", b)
	}
}

// focusables is every control under o that Tab can reach: visible, enabled, focusable.
func focusables(o fyne.CanvasObject) []fyne.Focusable {
	var out []fyne.Focusable
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil || !o.Visible() {
			return
		}
		if d, ok := o.(fyne.Disableable); ok && d.Disabled() {
			return
		}
		if f, ok := o.(fyne.Focusable); ok {
			out = append(out, f)
		}
		switch w := o.(type) {
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(w).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}

// tabThrough presses Tab as a window does (a control that accepts Tab keeps it; otherwise
// the focus moves on) from nothing focused, twice round, and fails for each control it never
// reached or that kept the Tab key.
func tabThrough(t *testing.T, c fyne.Canvas, what string) {
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
	for _, how := range []string{lnByDir, lnByFiles} {
		g.lnHow.SetSelected(how)
		h.pump()
		tabThrough(t, c, "step 3, paid, Lightning by "+how+" and on-chain")
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
