package ui

import (
	"context"
	"io"
	"log"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// appWindow finds the app's top-level window on display (Xvfb has no window manager: it is a
// child of the root) by its title.
func appWindow(t testing.TB, c *xgb.Conn, title string) xproto.Window {
	t.Helper()
	root := xproto.Setup(c).DefaultScreen(c).Root
	tree, err := xproto.QueryTree(c, root).Reply()
	if err != nil {
		t.Fatalf("listing the display's windows: %v", err)
	}
	for _, w := range tree.Children {
		name, err := xproto.GetProperty(c, false, w, xproto.AtomWmName, xproto.AtomAny, 0, 256).Reply()
		if err == nil && string(name.Value) == title {
			return w
		}
	}
	t.Fatalf("no window titled %q on the display", title)
	return 0
}

// countIn counts the events of a frame log kind between from and to.
func countIn(ev map[byte]map[time.Duration]time.Time, kind byte, from, to time.Time) int {
	n := 0
	for _, at := range ev[kind] {
		if !at.Before(from) && !at.After(to) {
			n++
		}
	}
	return n
}

// TestHiddenWindowCostsLess: the window playing a live stream (a command-line broadcaster,
// 640×480 at 30 pictures a second, on loopback) costs much less CPU while it is hidden
// (unmapped, as a window manager does when minimising it) than while it is shown: it decodes
// and paints no picture meanwhile; shown again, it paints again. CPU is compared in the same
// run, shown then hidden then shown, 5 s each.
func TestHiddenWindowCostsLess(t *testing.T) {
	bin := buildBinary(t)
	display := xvfb(t, 1280, 800)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cardText := liveBroadcaster(ctx, t, bin, "medium")
	logName := t.TempDir() + "/frames.log"
	cmd, out, stop := watchWindow(ctx, t, bin, display, cardText, logName)
	defer stop()

	// Playing: pictures are painted.
	for {
		time.Sleep(time.Second)
		ev := frameEvents(t, logName)
		if len(ev['p']) > 30 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the window painted no video; it said:\n%s", out.String())
		}
	}
	xgb.Logger = log.New(io.Discard, "", 0)
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	win := appWindow(t, c, "Dazaar Vision")

	const span = 5 * time.Second
	pid := cmd.Process.Pid
	measure := func() (cores float64, from, to time.Time) {
		c0, t0 := cpuSeconds(t, pid), time.Now()
		time.Sleep(span)
		c1, t1 := cpuSeconds(t, pid), time.Now()
		return (c1 - c0) / t1.Sub(t0).Seconds(), t0, t1
	}
	shown, sFrom, sTo := measure()
	if err := xproto.UnmapWindowChecked(c, win).Check(); err != nil {
		t.Fatalf("hiding the window: %v", err)
	}
	time.Sleep(time.Second) // the app looks every 250 ms
	hidden, hFrom, hTo := measure()
	if err := xproto.MapWindowChecked(c, win).Check(); err != nil {
		t.Fatalf("showing the window again: %v", err)
	}
	time.Sleep(time.Second)
	again, aFrom, aTo := measure()

	ev := frameEvents(t, logName)
	sp, hp, ap := countIn(ev, 'p', sFrom, sTo), countIn(ev, 'p', hFrom, hTo), countIn(ev, 'p', aFrom, aTo)
	sh, hh := countIn(ev, 'h', sFrom, sTo), countIn(ev, 'h', hFrom, hTo)
	t.Logf("shown: %.2f core, %d pictures handed to the view and %d painted in %v; hidden: %.2f core (%.2f of shown), %d handed, %d painted; shown again: %.2f core, %d painted",
		shown, sh, sp, span, hidden, hidden/shown, hh, hp, again, ap)
	// A picture handed over just before the window was hidden may still be painted.
	if hp > 2 {
		t.Errorf("the hidden window painted %d pictures", hp)
	}
	if sh == 0 {
		t.Fatalf("no picture reached the view while shown: was the stream playing?")
	}
	// Hidden, the player decodes nothing (playback.Watched): pictures decoded just before
	// the window was hidden may still arrive.
	if hh > 2 {
		t.Errorf("the player handed %d pictures to the hidden view: it went on decoding", hh)
	}
	if ap < sp/3 {
		t.Errorf("shown again, the window painted %d pictures in %v (%d at first)", ap, span, sp)
	}
	// Receiving, verifying and the sound go on; decoding and painting pictures stop. On this
	// machine class that left a third of the shown window's CPU while only painting stopped
	// (BENCHMARKS.md), less now.
	if hidden >= 0.7*shown {
		t.Errorf("hidden, the window used %.2f core against %.2f shown (%.2f×): hiding saved too little", hidden, shown, hidden/shown)
	}
}
