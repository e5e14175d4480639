package ui

import (
	"crypto/ed25519"
	"image"
	"math/big"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"go.uber.org/goleak"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// leakOptions ignores goroutines that libp2p's dependencies, the capture drivers and Fyne's
// test driver start once per process and never stop.
func leakOptions() []goleak.Option {
	return xtest.LeakOptions(
		goleak.IgnoreAnyFunction("fyne.io/fyne/v2/internal/animation.(*Runner).runAnimations"),
		goleak.IgnoreAnyFunction("fyne.io/fyne/v2/test.(*app).Run"),
		goleak.IgnoreAnyFunction("fyne.io/fyne/v2/internal/async.(*UnboundedChan[...]).processing"),
	)
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leakOptions()...) }

// checkLeaks fails t if goroutines started during the test are still running (deferred first).
func checkLeaks(t *testing.T) func() {
	opts := append(leakOptions(), goleak.IgnoreCurrent())
	return func() { goleak.VerifyNone(t, opts...) }
}

var loopback = session.NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, LAN: true, Public: true}

// harness is a UI on Fyne's test driver. Work the UI hands to Fyne's goroutine (fyne.Do) is
// queued and run on the test's goroutine by pump and waitFor, as Fyne's event loop would.
type harness struct {
	t *testing.T
	u *UI
	q chan func()
}

func newHarness(t *testing.T, a fyne.App, opts Options) *harness {
	t.Helper()
	if opts.Data.Root == "" {
		d, err := session.OpenDataDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		opts.Data = d
	}
	if opts.Store == nil && opts.OpenStore == nil {
		opts.Store = secrets.NewMemory()
	}
	if len(opts.Network.Listen) == 0 {
		opts.Network = loopback
	}
	a.Settings().SetTheme(theme.DefaultTheme()) // the app's own theme, so captures look like the app
	h := &harness{t: t, q: make(chan func(), 4096)}
	h.u = newUI(a, opts, func(fn func()) { h.q <- fn })
	h.u.win.Resize(fyne.NewSize(1100, 720))
	return h
}

// pump runs what is queued for Fyne's goroutine.
func (h *harness) pump() {
	for {
		select {
		case fn := <-h.q:
			fn()
		default:
			return
		}
	}
}

// waitFor pumps until cond holds (within a minute: the machine may be loaded).
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		h.pump()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case fn := <-h.q:
			fn()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// close closes the UI, pumping while its goroutines finish.
func (h *harness) close() {
	if h.u.cur != nil {
		h.u.cur.close()
		h.u.cur = nil
	}
	h.u.cancel()
	waited := make(chan struct{})
	go func() { h.u.wg.Wait(); close(waited) }()
	for {
		select {
		case fn := <-h.q:
			fn()
		case <-waited:
			h.pump()
			h.u.Close()
			return
		}
	}
}

// texts is every label, entry, button and rich text under o.
func texts(o fyne.CanvasObject) string {
	var b strings.Builder
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil || !o.Visible() {
			return
		}
		switch w := o.(type) {
		case *widget.Label:
			b.WriteString(w.Text + "\n")
		case *widget.Button:
			b.WriteString("[" + w.Text + "]\n")
		case *widget.Entry:
			b.WriteString(w.Text + "\n")
		case *widget.RichText:
			b.WriteString(w.String() + "\n")
		case *widget.Select:
			b.WriteString("<" + w.Selected + ">\n")
		case *widget.Check:
			b.WriteString("{" + w.Text + "}\n")
		case *widget.RadioGroup:
			b.WriteString("(" + w.Selected + ")\n")
		case *widget.Form:
			for _, it := range w.Items {
				b.WriteString(it.Text + ": ")
				walk(it.Widget)
			}
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
		case fyne.Widget:
			r := test.WidgetRenderer(w)
			for _, c := range r.Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return b.String()
}

// screenText is what the window shows.
func (h *harness) screenText() string { return texts(h.u.win.Content()) }

func (h *harness) mustShow(want ...string) {
	h.t.Helper()
	s := h.screenText()
	for _, w := range want {
		if !strings.Contains(s, w) {
			h.t.Fatalf("the screen does not show %q; it shows:\n%s", w, s)
		}
	}
}

// peerID is the libp2p peer ID of an Ed25519 key (the identity multihash of its protobuf
// public key, base58btc), so tests can write cards without a network node.
func peerID(seed byte) string {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	pub := ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
	b := append([]byte{0x00, 36, 0x08, 0x01, 0x12, 0x20}, pub...)
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod, base := new(big.Int), big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// paidCard is a paid stream's card (the seller is not running).
func paidCard(t *testing.T) card.Card {
	t.Helper()
	c := card.Card{Name: "Alice's garden, live", Description: "Tomatoes growing in real time.", Seller: peerID(1),
		Addrs: []string{"/ip4/127.0.0.1/tcp/9"}, Price: price.Price{Sats: 1000, Interval: 1, Unit: price.Hour},
		Methods: []card.Method{card.Lightning, card.OnChain}, Network: "simnet"}
	c.Feed[0] = 7
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// walkVisible calls visit for o and every visible object under it (containers' objects and
// widgets' renderer objects), descending below an object only when visit says so.
func walkVisible(o fyne.CanvasObject, visit func(fyne.CanvasObject) (descend bool)) {
	if o == nil || !o.Visible() || !visit(o) {
		return
	}
	switch w := o.(type) {
	case *fyne.Container:
		for _, c := range w.Objects {
			walkVisible(c, visit)
		}
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(w).Objects() {
			walkVisible(c, visit)
		}
	}
}

// buttons lists the visible buttons under o.
func buttons(o fyne.CanvasObject) []*widget.Button {
	var out []*widget.Button
	walkVisible(o, func(o fyne.CanvasObject) bool {
		if b, ok := o.(*widget.Button); ok {
			out = append(out, b)
			return false
		}
		return true
	})
	return out
}

// button is the visible button labelled text.
func (h *harness) button(text string) *widget.Button {
	h.t.Helper()
	for _, b := range buttons(h.u.win.Content()) {
		if b.Text == text {
			return b
		}
	}
	h.t.Fatalf("no button %q on the screen:\n%s", text, h.screenText())
	return nil
}

var fyneKeySpace = fyne.KeyEvent{Name: fyne.KeySpace}

// capture renders the window with Fyne's software painter and saves it (see savePNG).
func (h *harness) capture(name string) image.Image {
	h.t.Helper()
	img := h.u.win.Canvas().Capture()
	savePNG(h.t, img, name)
	return img
}

// mustNotShow fails when the window shows any of text.
func (h *harness) mustNotShow(text ...string) {
	h.t.Helper()
	s := h.screenText()
	for _, w := range text {
		if strings.Contains(s, w) {
			h.t.Fatalf("the screen shows %q; it shows:\n%s", w, s)
		}
	}
}
