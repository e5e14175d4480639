package ui

import (
	"context"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

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
	a := app.NewWithID(AppID)
	a.SetIcon(assets.Icon)
	u := newUIStore(a, opts, fyne.Do, true)
	u.win.SetMaster()
	a.Lifecycle().SetOnStarted(func() {
		u.log.Info("window started", "since process start", time.Since(processStart).Round(time.Millisecond))
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
	u.win.ShowAndRun()
	stop()
	u.Close()
	return nil
}
