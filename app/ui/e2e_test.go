package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/dazaarvision/dazaar-vision/app/card"
)

// TestFreeStreamThroughTheWindow goes live from the wizard (test camera and microphone, a
// free stream: the one-click path), pastes the live view's card into a second window's watch
// view, waits for pictures drawn there and the viewer counted in the live view, then stops
// both and finds them listed on Home. Nothing is left running.
func TestFreeStreamThroughTheWindow(t *testing.T) {
	defer checkLeaks(t)()
	a := test.NewTempApp(t)
	seller := newHarness(t, a, Options{})
	defer seller.close()
	viewer := newHarness(t, a, Options{})
	defer viewer.close()

	// Go live.
	test.Tap(seller.button("Go live"))
	g := seller.u.cur.(*goLiveScreen)
	seller.waitFor("the devices", func() bool { return len(g.video.Options) > 1 })
	test.Type(g.name, "Garden")
	test.Type(g.desc, "Tomatoes, live")
	test.Tap(g.next)
	for i, o := range g.video.Options {
		if strings.HasPrefix(o, "Test camera") {
			g.video.SetSelectedIndex(i)
		}
	}
	for i, o := range g.audio.Options {
		if strings.HasPrefix(o, "Test microphone") {
			g.audio.SetSelectedIndex(i)
		}
	}
	g.quality.SetSelected("Low")
	test.Tap(g.next)
	seller.mustShow("(Free)")
	test.Tap(g.next) // "Go live"
	seller.waitFor("the live view", func() bool { _, ok := seller.u.cur.(*liveScreen); return ok })
	l := seller.u.cur.(*liveScreen)
	seller.mustShow("You are live: Garden", "Free", "[Copy card]", "[Stop broadcasting]", "A free stream: nothing to sell.")
	if l.qr.Resource == nil {
		t.Fatal("no QR code of the card")
	}
	// The preview: the stream as viewers get it, drawn in the live view.
	if l.preview == nil {
		t.Fatal("no preview in the live view of a stream with a camera")
	}
	seller.waitFor("the preview's pictures", func() bool { return l.preview.shown.Load() >= 5 })
	seller.mustShow("What viewers see")
	seller.capture("live.png")
	test.Tap(l.copyBtn)
	cardText := a.Clipboard().Content()
	if _, err := card.Parse(cardText); err != nil || cardText != l.cardText.Text {
		t.Fatalf("Copy card put %q on the clipboard: %v", cardText, err)
	}

	// Watch it in the other window: the card on the clipboard is offered.
	test.Tap(viewer.button("Watch"))
	viewer.mustShow("A card is on the clipboard: Garden (Free)")
	test.Tap(viewer.button("Watch it"))
	w := viewer.u.cur.(*watchScreen)
	viewer.mustShow("Garden", "Tomatoes, live", "[Stop watching]")
	viewer.waitFor("pictures drawn", func() bool { seller.pump(); return w.video.shown.Load() >= 10 })
	viewer.mustShow("Stream is free of charge")
	if w.video.overlay.Visible() {
		t.Fatalf("the overlay hides the video: %q", w.video.overlay.Text)
	}
	seller.waitFor("the viewer counted", func() bool { viewer.pump(); return strings.Contains(l.figures.Text, "Viewers: 1") })
	seller.capture("live-viewer.png")
	// Pause with the space bar, then play again: the key as the window hands it on when no
	// field has the keyboard.
	if f := viewer.u.win.Canvas().Focused(); f != nil {
		t.Fatalf("%T has the keyboard: the space bar would not reach the player", f)
	}
	space := viewer.u.win.Canvas().OnTypedKey()
	space(&fyneKeySpace)
	viewer.waitFor("paused", func() bool { return strings.Contains(viewer.screenText(), "[Play]") })
	space(&fyneKeySpace)
	viewer.waitFor("playing", func() bool { return strings.Contains(viewer.screenText(), "[Pause]") })
	shown := w.video.shown.Load()
	viewer.waitFor("pictures after resuming", func() bool { seller.pump(); return w.video.shown.Load() > shown+5 })

	// Stop both; Home lists them.
	test.Tap(viewer.button("Stop watching"))
	viewer.waitFor("home", func() bool { _, ok := viewer.u.cur.(*homeScreen); return ok })
	viewer.waitFor("the watched stream", func() bool { return strings.Contains(viewer.screenText(), "[Watch again]") })
	test.Tap(l.stopBtn)
	seller.waitFor("home", func() bool { _, ok := seller.u.cur.(*homeScreen); return ok })
	seller.waitFor("my stream", func() bool { return strings.Contains(seller.screenText(), "[Resume]") })
	seller.mustShow("Stopped. The stream holds", "Garden")
	if !l.preview.closed.Load() || l.preview.cur != nil {
		t.Fatal("the live view's preview kept its last picture after Stop broadcasting")
	}

	// Resume preselects the stream and keeps its price.
	test.Tap(seller.button("Resume"))
	g = seller.u.cur.(*goLiveScreen)
	seller.waitFor("the stream list", func() bool { return g.resumed() != nil })
	if g.name.Text != "Garden" || !g.pay.Disabled() {
		t.Fatalf("resume: name %q, price fields enabled %v", g.name.Text, !g.pay.Disabled())
	}
}
