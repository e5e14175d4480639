//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/wallet/nodetest"
)

// world is the demo's chain and wallets: btcd simnet, the seller's LND (invoice macaroon only)
// and the buyer's LND (the demo wallet) with a funded channel to the seller.
type world struct {
	dir          string
	payer, payee *nodetest.LND
	payeeCert    string
	payerCert    string
}

// channelSats is the demo wallet's channel to the seller.
const channelSats = 1_000_000

// startWorld starts the nodes; tb's cleanups stop them and remove their folders.
func startWorld(tb testing.TB) *world {
	_, payer, payee := nodetest.LightningPair(tb, channelSats)
	w := &world{dir: tb.TempDir(), payer: payer, payee: payee}
	w.payeeCert = filepath.Join(w.dir, "seller-lnd.cert")
	w.payerCert = filepath.Join(w.dir, "wallet-lnd.cert")
	for _, f := range []struct {
		path string
		b    []byte
	}{{w.payeeCert, payee.TLSCert()}, {w.payerCert, payer.TLSCert()}} {
		if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
			tb.Fatalf("cannot write a node's certificate: %v", err)
		}
	}
	return w
}

// sellerArgs are the broadcaster window's command line.
func (w *world) sellerArgs(c config) []string {
	return []string{"-role", "seller", "-dir", filepath.Join(w.dir, "seller"), "-price", c.price,
		"-lnd-host", w.payee.REST, "-lnd-macaroon", w.payee.MacaroonPath("invoice"), "-lnd-cert", w.payeeCert,
		"-card-file", filepath.Join(w.dir, "card.txt"), "-v=" + strconv.FormatBool(c.verbose)}
}

// viewerArgs are the viewer window's command line.
func (w *world) viewerArgs(c config) []string {
	return []string{"-role", "viewer", "-dir", filepath.Join(w.dir, "viewer"), "-minutes", strconv.FormatUint(uint64(c.minutes), 10),
		"-card-file", filepath.Join(w.dir, "card.txt"),
		"-pay-host", w.payer.REST, "-pay-macaroon", w.payer.MacaroonPath("admin"), "-pay-cert", w.payerCert,
		"-v=" + strconv.FormatBool(c.verbose)}
}

// waitCard waits for the broadcaster window to write its card (it does once it is live).
func (w *world) waitCard(ctx context.Context, seller *child) (string, error) {
	path := filepath.Join(w.dir, "card.txt")
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			if c, err := card.Parse(string(b)); err == nil {
				return c.String(), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-seller.done:
			return "", fmt.Errorf("the broadcaster window closed before going live: %v", seller.err)
		case <-t.C:
		}
	}
}

// child is a window process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// launch starts the demo program exe with args, its output going to out. The window ends
// with the demo: SIGTERM if the demo dies, SIGINT from stop.
func launch(exe, name string, args, env []string, out io.Writer) (*child, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the %s window: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	return c, nil
}

// stop asks the window to close (SIGINT), and kills it after grace.
func (c *child) stop(grace time.Duration) {
	if c == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// runDemo is `make demo`.
func runDemo(ctx context.Context, c config, stdout, stderr io.Writer) (err error) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("no display to open the windows on ($DISPLAY is not set); the paid flow runs headless in `go test ./app/e2e -run TestPaidLightningStream`")
	}
	start := time.Now()
	tb := &demoTB{log: stdout}
	defer tb.cleanup()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(string(f))
		}
	}()
	fmt.Fprintln(stdout, "Starting a bitcoin simnet node and two Lightning nodes (the seller's, and the demo wallet with a channel to it)…")
	w := startWorld(tb)
	fmt.Fprintf(stdout, "Nodes ready in %v. Opening the broadcaster's window (test camera and microphone, %s, paid through the seller's LND)…\n",
		time.Since(start).Round(100*time.Millisecond), c.price)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the demo program to start its windows: %w", err)
	}
	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(w.dir, "config")}
	seller, err := launch(exe, "broadcaster", w.sellerArgs(c), env, stderr)
	if err != nil {
		return err
	}
	var viewer *child
	defer func() {
		var wg sync.WaitGroup
		for _, ch := range []*child{viewer, seller} {
			wg.Add(1)
			go func() { defer wg.Done(); ch.stop(20 * time.Second) }()
		}
		wg.Wait()
		fmt.Fprintln(stdout, "Stopping the nodes…")
	}()
	cardText, err := w.waitCard(ctx, seller)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	fmt.Fprintf(stdout, "Live after %v. Opening the viewer's window with the card pasted (%d characters)…\n",
		time.Since(start).Round(100*time.Millisecond), len(cardText))
	if viewer, err = launch(exe, "viewer", w.viewerArgs(c), env, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "In the viewer's window, press \"Pay with the demo wallet\" (%d min of video), and the video starts.\n", c.minutes)
	fmt.Fprintln(stdout, "Close either window, or press Ctrl+C here, to end the demo.")
	select {
	case <-ctx.Done():
	case <-seller.done:
	case <-viewer.done:
	}
	return nil
}

// fatal is what demoTB's Fatal panics with; runDemo turns it into its error.
type fatal string

// demoTB lets the demo use the wallet's node harnesses (wallet/nodetest) outside a test: a
// failure ends the demo with the harness's message, cleanups stop the nodes and remove their
// folders. The harnesses use only the methods below.
type demoTB struct {
	testing.TB // nil: any other method is a programming error
	log        io.Writer
	mu         sync.Mutex
	cleanups   []func()
}

func (t *demoTB) Helper()                   {}
func (t *demoTB) Name() string              { return "demo" }
func (t *demoTB) Fatal(args ...any)         { panic(fatal(strings.TrimSpace(fmt.Sprintln(args...)))) }
func (t *demoTB) Fatalf(f string, a ...any) { panic(fatal(fmt.Sprintf(f, a...))) }
func (t *demoTB) Log(args ...any)           { fmt.Fprintln(t.log, args...) }
func (t *demoTB) Logf(f string, a ...any)   { fmt.Fprintf(t.log, f+"\n", a...) }

func (t *demoTB) TempDir() string {
	d, err := os.MkdirTemp("", "dazaar-vision-demo-")
	if err != nil {
		t.Fatalf("cannot make a temporary folder: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (t *demoTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// cleanup runs the cleanups, last first.
func (t *demoTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
