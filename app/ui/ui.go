// Package ui is Dazaar Vision's desktop window (Fyne): Home, the Go live wizard, the live
// view, the watch view and Settings, one file each. It draws the sessions of app/session and
// adds no logic a test without a display could not reach: every screen shows what a session's
// Snapshot, Events and methods give.
//
// Threading: Fyne's objects are touched only on its event goroutine. Anything that may wait
// (the network, a Lightning node, the disk, a session's Start or Stop) runs on a goroutine
// owned by the screen that started it (screen.goDo), and hands its result back with fyne.Do.
// Closing a screen cancels its context; UI.Close waits for every goroutine.
package ui

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
)

// Options are what the window needs from the composition root.
type Options struct {
	Data session.DataDir
	// Store is an open secret store; when nil, OpenStore opens one (on a goroutine, asking for
	// the secrets file's passphrase in a dialog if it needs one).
	Store     *secrets.Store
	OpenStore func(ctx context.Context, passphrase func() ([]byte, error)) (*secrets.Store, error)
	Network   session.NetworkConfig
	Logger    *slog.Logger
	// Card, when set, opens the watch view on it at start (dazaar-vision ui CARD).
	Card string

	// Title replaces the window's title ("Dazaar Vision").
	Title string
	// GoLive, when set, goes live with these answers at start, as the wizard's last step
	// would (the demo's broadcaster window).
	GoLive *session.GoLive
	// OnLive is told the card once the broadcast started from GoLive is live.
	OnLive func(card string)
	// BuyMinutes, with Card, asks the seller for an invoice for this many minutes as soon as
	// the watch view is connected (the demo's viewer window).
	BuyMinutes uint32
	// Payer, when set, adds "Pay with the demo wallet" beside a Lightning invoice. Only the
	// demo program (tools/demo) sets it; a normal build's window has no such button.
	Payer Payer
}

// Payer pays a Lightning invoice from a wallet the window was handed (the demo's simnet test
// wallet). Pay returns once the payment settled or failed, in words a person can act on.
type Payer interface {
	Pay(ctx context.Context, bolt11 string) error
}

// UI is the app's window and the screen it shows.
type UI struct {
	app  fyne.App
	win  fyne.Window
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the UI started

	// do runs a function on Fyne's goroutine: fyne.Do (tests replace it with a queue their
	// goroutine drains, standing in for Fyne's event loop); Run's loop.do.
	do func(func())
	// loop is Run's: once the event loop has ended, Close runs what do was handed.
	loop *afterLoop

	// Touched on Fyne's goroutine only.
	cur          screen
	store        *secrets.Store
	storeErr     error // why the last attempt to open the store failed (it is tried again)
	storeWait    []storeWaiter
	storeOpening bool
	storeLater   bool // Run opens the store once the window is drawn: withStoreOr waits for that
	ownStore     bool
}

// screen is one of the window's screens.
type screen interface {
	// content is the screen's widgets (built once).
	content() fyne.CanvasObject
	// close cancels the screen's goroutines and stops its session; it does not wait.
	close()
}

// New makes the window (not shown yet) with the Home screen.
func New(a fyne.App, opts Options) *UI { return newUI(a, opts, fyne.Do) }

func newUI(a fyne.App, opts Options, do func(func())) *UI { return newUIStore(a, opts, do, false) }

// newUIStore is newUI; with later, the secret store is not opened: the caller calls openStore
// once the window is up (Run does, so that opening it does not slow the first frame).
func newUIStore(a fyne.App, opts Options, do func(func()), later bool) *UI {
	return newUIWindow(a, newWindow(a, opts), opts, do, later)
}

// newWindow makes the app's window, not shown yet.
func newWindow(a fyne.App, opts Options) fyne.Window {
	title := opts.Title
	if title == "" {
		title = "Dazaar Vision"
	}
	w := a.NewWindow(title)
	w.Resize(fyne.NewSize(1100, 720))
	return w
}

// newUIWindow is newUIStore in a window made by newWindow (Run shows it before the screen is
// built: see there).
func newUIWindow(a fyne.App, win fyne.Window, opts Options, do func(func()), later bool) *UI {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	u := &UI{app: a, opts: opts, log: opts.Logger, do: do}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.win = win
	u.store = opts.Store
	if u.store == nil && (!later || opts.OpenStore == nil) {
		u.openStore(0)
	} else if u.store == nil {
		u.storeLater = true
	}
	switch {
	case opts.GoLive != nil:
		u.showGoLive("")
		g := u.cur.(*goLiveScreen)
		g.startForm(*opts.GoLive)
	case opts.Card != "":
		u.showWatch(opts.Card)
	default:
		u.showHome()
	}
	return u
}

// Window is the app's window.
func (u *UI) Window() fyne.Window { return u.win }

// show replaces the current screen.
func (u *UI) show(s screen) {
	if u.cur != nil {
		u.cur.close()
	}
	u.cur = s
	u.win.SetContent(s.content())
	s.content().Refresh() // lays wrapped text out again now that it knows its width
	u.win.Canvas().SetOnTypedKey(nil)
	if k, ok := s.(interface{ typedKey(*fyne.KeyEvent) }); ok {
		u.win.Canvas().SetOnTypedKey(k.typedKey)
	}
}

// Close stops the current screen's session and waits for every goroutine of the UI. Call it
// after the window's event loop ended (or, in tests, from the test goroutine).
func (u *UI) Close() {
	if u.cur != nil {
		u.cur.close()
		u.cur = nil
	}
	u.cancel()
	if u.loop == nil {
		u.wg.Wait()
	} else {
		// Run's goroutine, where the event loop ran: what the UI's goroutines hand to Fyne's
		// goroutine from now on (a screen's last release of its pictures) runs here while they end.
		done := make(chan struct{})
		go func() {
			u.wg.Wait()
			close(done)
		}()
		for end := false; !end; {
			select {
			case <-u.loop.ready:
			case <-done:
				end = true
			}
			u.loop.runQueued()
		}
	}
	if u.ownStore && u.store != nil {
		u.store.Close()
	}
}

// goDo runs fn on a goroutine owned by the UI (waited for in Close).
func (u *UI) goDo(fn func()) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		fn()
	}()
}

// withStoreOr runs fn once the secret store is open (at once if it is). A store not open yet
// is opened (asking for the secrets file's passphrase again after a wrong one or Cancel); when
// it cannot be, fn is not run: the error was shown in a dialog (unless the passphrase was
// declined) and failed, when set, is told why (on Fyne's goroutine), so a screen that waited
// for the store does not wait for good.
func (u *UI) withStoreOr(fn func(*secrets.Store), failed func(error)) {
	if u.store != nil {
		fn(u.store)
		return
	}
	u.storeWait = append(u.storeWait, storeWaiter{ok: fn, failed: failed})
	if !u.storeOpening && !u.storeLater {
		u.openStore(0)
	}
}

// storeWaiter is what withStoreOr was asked to run once the store is open, or not.
type storeWaiter struct {
	ok     func(*secrets.Store)
	failed func(error)
}

// openStore opens the secret store on a goroutine, after delay; the passphrase of a secrets
// file is asked for in a dialog (or taken from $DAZAAR_VISION_PASSPHRASE). Whatever needs the
// store waits for it (withStoreOr). A store that cannot be opened stays closed: the next
// withStoreOr tries again.
func (u *UI) openStore(delay time.Duration) {
	u.storeLater = false
	if u.storeOpening || u.store != nil {
		return
	}
	if u.opts.OpenStore == nil {
		u.storeFailed(errNoStore)
		return
	}
	u.storeOpening = true
	ctx := u.ctx
	u.goDo(func() {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
		}
		s, err := u.opts.OpenStore(ctx, func() ([]byte, error) { return u.askPassphrase(ctx) })
		u.do(func() {
			u.storeOpening = false
			if ctx.Err() != nil {
				if s != nil {
					s.Close()
				}
				return
			}
			if err != nil || s == nil {
				if err == nil {
					err = errNoStore
				}
				u.storeFailed(err)
				return
			}
			u.store, u.storeErr, u.ownStore = s, nil, true
			waits := u.storeWait
			u.storeWait = nil
			for _, w := range waits {
				w.ok(s)
			}
			u.refreshHomeStore()
		})
	})
}

// storeFailed keeps why the store could not be opened (Home shows it), says it in a dialog
// unless the passphrase was declined, and tells whatever waited for the store.
func (u *UI) storeFailed(err error) {
	u.log.Warn("the secret store was not opened", "err", err)
	u.storeErr = err
	waits := u.storeWait
	u.storeWait = nil
	// A declined passphrase needs no dialog, nor does a window without a store until
	// something needs one (Home says so).
	if !errors.Is(err, errLocked) && (len(waits) > 0 || !errors.Is(err, errNoStore)) {
		dialog.ShowError(errors.New(storeMessage(err)), u.win)
	}
	for _, w := range waits {
		if w.failed != nil {
			w.failed(err)
		}
	}
	u.refreshHomeStore()
}

// refreshHomeStore shows the store's state on Home, when Home shows.
func (u *UI) refreshHomeStore() {
	if h, ok := u.cur.(*homeScreen); ok {
		h.refreshStore()
	}
}

var (
	// errLocked: the passphrase dialog was cancelled.
	errLocked = errors.New("no passphrase given")
	// errNoStore: the window was given no way to open a secret store.
	errNoStore = errors.New("no secret store is configured")
)

// storeMessage says in plain words why the secret store is not open (the errors of
// OpenStore name files and wrap one another).
func storeMessage(err error) string {
	switch {
	case errors.Is(err, secrets.ErrWrongPassphrase):
		return "Wrong passphrase. Try again."
	case errors.Is(err, secrets.ErrEmptyPassphrase):
		return "The passphrase is empty. Try again."
	case errors.Is(err, errLocked):
		return "Your secrets are locked: streams cannot be signed or paid until you unlock them. You will be asked for the passphrase again when they are needed."
	case errors.Is(err, secrets.ErrCorrupt):
		return "The secrets file is damaged or was altered, so it cannot be opened. Restore it from a backup."
	case errors.Is(err, errNoStore):
		return "No secret store is configured."
	}
	// The innermost error: the outer ones add the file's path and what was being done.
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	return "The secret store could not be opened: " + err.Error()
}

// EnvPassphrase supplies the secrets file's passphrase without a dialog.
const EnvPassphrase = "DAZAAR_VISION_PASSPHRASE"

func (u *UI) askPassphrase(ctx context.Context) ([]byte, error) {
	if p := os.Getenv(EnvPassphrase); p != "" {
		return []byte(p), nil
	}
	answer := make(chan []byte, 1)
	u.do(func() {
		e := widget.NewPasswordEntry()
		items := []*widget.FormItem{widget.NewFormItem("Passphrase", e)}
		d := dialog.NewForm("Unlock your secrets", "Unlock", "Cancel", items, func(ok bool) {
			if ok {
				answer <- []byte(e.Text)
			} else {
				answer <- nil
			}
		}, u.win)
		d.Resize(fyne.NewSize(420, 160))
		d.Show()
		u.win.Canvas().Focus(e)
	})
	select {
	case p := <-answer:
		if p == nil {
			return nil, errLocked
		}
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// worker is a screen's goroutine owner: goroutines started with goDo end when the screen
// closes (its context is cancelled) and are waited for by UI.Close.
type worker struct {
	u      *UI
	ctx    context.Context
	cancel context.CancelFunc
}

func newWorker(u *UI) worker {
	ctx, cancel := context.WithCancel(u.ctx)
	return worker{u: u, ctx: ctx, cancel: cancel}
}

// goDo runs fn on a goroutine under the screen's context.
func (w worker) goDo(fn func(ctx context.Context)) { w.u.goDo(func() { fn(w.ctx) }) }

// async runs work on a goroutine and then done on Fyne's goroutine, unless the screen was
// closed meanwhile.
func async[T any](w worker, work func(ctx context.Context) (T, error), done func(T, error)) {
	w.goDo(func(ctx context.Context) {
		v, err := work(ctx)
		w.u.do(func() {
			if ctx.Err() == nil {
				done(v, err)
			}
		})
	})
}

// afterLoop hands functions to Fyne's goroutine (fyne.Do) while the event loop runs, and, once
// it has ended, to UI.Close, which runs them on the goroutine the loop ran on. Fyne itself
// runs a function handed to it after its loop on the caller's goroutine, and logs "Error in
// Fyne call thread" for each widget it touches there (every live or watch view released its
// picture so on each exit). The queue is unbounded: it holds only what the UI's goroutines hand
// over while they end (about one function each), and Close drains it until they have.
type afterLoop struct {
	mu    sync.Mutex
	ended bool
	fns   []func()
	ready chan struct{} // one slot: something was queued since Close last looked
}

func newAfterLoop() *afterLoop { return &afterLoop{ready: make(chan struct{}, 1)} }

func (q *afterLoop) do(fn func()) {
	q.mu.Lock()
	if !q.ended {
		q.mu.Unlock()
		fyne.Do(fn)
		return
	}
	q.fns = append(q.fns, fn)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// end is called on the loop's goroutine when the event loop has returned.
func (q *afterLoop) end() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
}

// runQueued runs what was handed over since the last call, in order.
func (q *afterLoop) runQueued() {
	for {
		q.mu.Lock()
		fns := q.fns
		q.fns = nil
		q.mu.Unlock()
		if len(fns) == 0 {
			return
		}
		for _, fn := range fns {
			fn()
		}
	}
}
