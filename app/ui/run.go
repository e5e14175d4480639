package ui

import (
	"context"
	"io"
	"log"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver"
	"fyne.io/fyne/v2/theme"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	// Before Fyne's packages initialise: no "Error parsing user locale C" under LANG=C.UTF-8.
	_ "github.com/dazaarvision/dazaar-vision/app/ui/internal/localeenv"
	"github.com/dazaarvision/dazaar-vision/assets"
)

// AppID is the app's identifier (FyneApp.toml's ID): it names the preferences and the
// desktop entry.
const AppID = "vision.dazaar.app"

// processStart is when this package was initialised: close to the process's start (after the
// runtime and the packages it depends on), for the start-up figure.
var processStart = time.Now()

// storeDelay is how long after the event loop starts Run opens the secret store: the first
// frame is drawn within a few ticks of the loop (60 a second).
const storeDelay = 150 * time.Millisecond

// Run opens the window and returns when it is closed or ctx ends; the screen's session is
// stopped and every goroutine waited for before it returns.
func Run(ctx context.Context, opts Options) error {
	stopProfile := startProfile()
	a := app.NewWithID(AppID)
	a.SetIcon(assets.Icon)
	// Start-up: the theme's fonts load on another goroutine while the window is made (GLFW's
	// initialisation); the first screen is built once they are loaded (its text is measured
	// with them), and Show then makes the GL window and paints it at once. Nothing else
	// touches the fonts meanwhile: the window has no content until newUIWindow.
	fonts := warmFonts()
	win := newWindow(a, opts)
	<-fonts
	loop := newAfterLoop()
	u := newUIWindow(a, win, opts, loop.do, true)
	u.loop = loop
	u.win.SetMaster()
	win.Show()
	visCtx, visStop := context.WithCancel(ctx)
	visDone := watchVisibility(visCtx, win)
	a.Lifecycle().SetOnStarted(func() {
		u.log.Info("window started", "since process start", time.Since(processStart).Round(time.Millisecond))
		time.AfterFunc(100*time.Millisecond, stopProfile) // before the store opens
		if u.store == nil && u.storeErr == nil && !u.storeOpening {
			// Once the first frames are drawn: a secrets file's key derivation (Argon2, a few
			// hundred milliseconds on every core) or the keyring's D-Bus probe would otherwise
			// compete with the window's start (GL set-up, fonts, the first paint).
			u.openStore(storeDelay)
		}
	})
	// The driver's Quit, as Fyne's own SIGINT/SIGTERM handler does: it ends the event loop and
	// does nothing once the loop has ended. app.Quit would close the windows first, and raced
	// with that handler: when Fyne's loop ended first, fyne.Do ran it on this goroutine after
	// GLFW terminated (a panic), and a pointer event polled while the window closed crashed in
	// GLFW (two start-up runs in five, stopped with SIGINT as soon as drawn).
	// From the moment the loop is asked to stop, what goroutines hand to Fyne's goroutine waits
	// for Close (loop.end): Fyne, draining, would run it on their goroutines.
	a.Lifecycle().SetOnStopped(loop.end)
	stop := context.AfterFunc(ctx, func() {
		loop.end()
		fyne.Do(a.Driver().Quit)
	})
	a.Run()
	loop.end()
	stop()
	visStop()
	<-visDone
	stopProfile()
	u.Close()
	return nil
}

// visibilityPoll is how often watchVisibility asks the display whether the window is viewable.
const visibilityPoll = 250 * time.Millisecond

// watchVisibility keeps windowHidden up to date: every visibilityPoll it asks the platform
// whether win is shown. On X11 it asks the X server whether the window is viewable (mapped,
// and so are its ancestors: a minimised window is unmapped by the window manager, a hidden one
// by the app); on Windows, whether it is minimised (IsIconic) or hidden (IsWindowVisible).
// Fyne does not tell, and paints a minimised window as it does a shown one. Elsewhere (macOS,
// Wayland) it does nothing. The goroutine is Run's; the channel closes when it has ended
// (after ctx).
func watchVisibility(ctx context.Context, win fyne.Window) <-chan struct{} {
	done := make(chan struct{})
	var probe *hiddenProbe
	if nw, ok := win.(driver.NativeWindow); ok {
		nw.RunNative(func(c any) {
			if x, ok := c.(driver.X11WindowContext); ok {
				probe = x11Probe(xproto.Window(x.WindowHandle))
			} else {
				probe = nativeProbe(c)
			}
		})
	}
	if probe == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		defer probe.close()
		defer windowHidden.Store(false)
		t := time.NewTicker(visibilityPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			hidden, err := probe.hidden()
			if err != nil {
				return // the window is gone
			}
			windowHidden.Store(hidden)
		}
	}()
	return done
}

// hiddenProbe asks the platform whether the window is hidden; close releases what it holds.
type hiddenProbe struct {
	hidden func() (bool, error)
	close  func()
}

// x11Probe asks the X server whether window id is viewable (nil when the server cannot be
// reached).
func x11Probe(id xproto.Window) *hiddenProbe {
	if id == 0 {
		return nil
	}
	xgb.Logger = log.New(io.Discard, "", 0) // not "Could not get authority info" on stderr
	conn, err := xgb.NewConn()
	if err != nil {
		return nil
	}
	return &hiddenProbe{
		hidden: func() (bool, error) {
			attr, err := xproto.GetWindowAttributes(conn, id).Reply()
			if err != nil {
				return false, err
			}
			return attr.MapState != xproto.MapStateViewable, nil
		},
		close: conn.Close,
	}
}

// warmFonts loads the theme's fonts for the first screen's text styles (regular, and bold
// for headings and buttons) on a goroutine, and closes the channel it returns when done. Run
// waits for it before building the screen; it owns the goroutine.
func warmFonts() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, s := range []fyne.TextStyle{{}, {Bold: true}} {
			fyne.MeasureText("Dazaar Vision", theme.TextSize(), s)
		}
	}()
	return done
}

// EnvCPUProfile names a file for a CPU profile of the window's start: from Run to 100 ms
// after the event loop started (for measuring start-up; package initialisation is not in it:
// GODEBUG=inittrace=1 shows that).
const EnvCPUProfile = "DV_UI_CPUPROFILE"

func startProfile() (stop func()) {
	name := os.Getenv(EnvCPUProfile)
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
}
