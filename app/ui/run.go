package ui

import (
	"context"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/theme"

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
	// Start-up: the window and its GL context are made (Show, on this goroutine: GLFW's
	// window on the display, the GL painter) while the theme's fonts load on another
	// goroutine; the first screen is built once both are done (its text is measured with
	// those fonts), before the event loop paints it. Nothing else touches the fonts meanwhile:
	// the window has no content until newUIWindow.
	win := newWindow(a, opts)
	fonts := warmFonts()
	win.Show()
	<-fonts
	u := newUIWindow(a, win, opts, fyne.Do, true)
	u.win.SetMaster()
	a.Lifecycle().SetOnStarted(func() {
		u.log.Info("window started", "since process start", time.Since(processStart).Round(time.Millisecond))
		time.AfterFunc(100*time.Millisecond, stopProfile) // before the store opens
		if u.store == nil && u.storeErr == nil {
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
	stop := context.AfterFunc(ctx, func() { fyne.Do(a.Driver().Quit) })
	a.Run()
	stop()
	stopProfile()
	u.Close()
	return nil
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
