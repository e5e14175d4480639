package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
)

// overlayText is what the window's top overlay (a dialog) shows, or "" without one.
func (h *harness) overlayText() string {
	o := h.u.win.Canvas().Overlays().Top()
	if o == nil {
		return ""
	}
	return texts(o)
}

// answerPassphrase waits for the passphrase dialog, types pass into it and taps Unlock, or
// Cancel when pass is "".
func (h *harness) answerPassphrase(pass string) {
	h.t.Helper()
	h.waitFor("the passphrase dialog", func() bool { return strings.Contains(h.overlayText(), "Unlock your secrets") })
	o := h.u.win.Canvas().Overlays().Top()
	var entry *widget.Entry
	walkVisible(o, func(o fyne.CanvasObject) bool {
		if e, ok := o.(*widget.Entry); ok && entry == nil {
			entry = e
			return false
		}
		return true
	})
	if entry == nil {
		h.t.Fatalf("no passphrase field in the dialog:\n%s", h.overlayText())
	}
	want := "Cancel"
	if pass != "" {
		test.Type(entry, pass)
		want = "Unlock"
	}
	for _, b := range buttons(o) {
		if b.Text == want {
			test.Tap(b)
			h.pump()
			return
		}
	}
	h.t.Fatalf("no %s button in the dialog:\n%s", want, h.overlayText())
}

// dismiss taps the OK of the error dialog on top.
func (h *harness) dismiss() {
	h.t.Helper()
	o := h.u.win.Canvas().Overlays().Top()
	for _, b := range buttons(o) {
		if b.Text == "OK" {
			test.Tap(b)
			return
		}
	}
	h.t.Fatalf("no OK button on top:\n%s", h.overlayText())
}

// A wrong passphrase or Cancel leaves the secret store closed, in plain words; the next action
// that needs the store asks again (the watch view goes back to its card instead of looking
// for the seller for ever), and the right passphrase then opens it.
func TestStoreAskedAgain(t *testing.T) {
	defer checkLeaks(t)()
	t.Setenv(EnvPassphrase, "")
	var calls atomic.Int32
	open := func(ctx context.Context, passphrase func() ([]byte, error)) (*secrets.Store, error) {
		calls.Add(1)
		// As cli's openSecretsWith and secrets.OpenFile wrap their errors.
		p, err := passphrase()
		if err != nil {
			return nil, fmt.Errorf("cannot open the secret store: asking for the secrets passphrase: %w", err)
		}
		if string(p) != "right" {
			return nil, fmt.Errorf("cannot open the secret store: opening secrets file /home/me/.config/dazaar-vision/secrets.enc: %w", secrets.ErrWrongPassphrase)
		}
		return secrets.NewMemory(), nil
	}
	h := newHarness(t, test.NewTempApp(t), Options{OpenStore: open})
	defer h.close()

	// At start: a mistyped passphrase.
	h.answerPassphrase("wrong")
	h.waitFor("the error dialog", func() bool { return strings.Contains(h.overlayText(), "Wrong passphrase. Try again.") })
	if text := h.overlayText(); strings.Contains(text, "secrets.enc") || strings.Contains(text, "cannot open") {
		t.Errorf("the dialog shows a Go error chain:\n%s", text)
	}
	h.dismiss()
	h.mustShow("Wrong passphrase. Try again.")
	if h.u.store != nil {
		t.Fatal("a store is open after a wrong passphrase")
	}

	// Watching needs the store: it is asked for again; Cancel goes back to the card.
	h.u.showWatch(paidCard(t).String())
	h.answerPassphrase("")
	h.waitFor("the watch view to give up", func() bool { return strings.Contains(h.screenText(), "Your secrets are locked") })
	if strings.Contains(h.screenText(), "Looking for the seller") {
		t.Fatalf("the watch view still looks for the seller:\n%s", h.screenText())
	}
	h.mustShow("[Watch]")
	if h.overlayText() != "" {
		t.Errorf("Cancel shows a dialog:\n%s", h.overlayText())
	}

	// Settings needs it too: asked a third time, the right passphrase opens it.
	h.u.showSettings()
	h.answerPassphrase("right")
	h.waitFor("the store", func() bool { return strings.Contains(h.screenText(), "In use: memory") })
	if n := calls.Load(); n != 3 {
		t.Errorf("OpenStore was called %d times, want 3", n)
	}
	h.u.showHome()
	h.mustShow("Secrets: memory")
	if errors.Is(h.u.storeErr, secrets.ErrWrongPassphrase) {
		t.Error("the wrong passphrase is still kept once the store is open")
	}
}
