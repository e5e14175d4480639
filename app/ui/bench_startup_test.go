package ui

import (
	"bytes"
	"context"
	"fmt"
	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// Start-up against a bare Fyne window (testdata/barefyne: a label and a small gradient, the
// app's window size), both started the same way on the same Xvfb, interleaved, so that the
// figure is a ratio measured in one run.

var builtBare string

// buildBare builds the bare Fyne reference once per test binary.
func buildBare(t testing.TB) string {
	t.Helper()
	if builtBare != "" {
		return builtBare
	}
	dir, err := os.MkdirTemp("", "dv-ui-bare")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "barefyne")
	if out, err := xtest.GoCommand(context.Background(), "build", "-o", bin, "./testdata/barefyne").CombinedOutput(); err != nil {
		t.Fatalf("go build barefyne: %v\n%s", err, out)
	}
	builtBare = bin
	return bin
}

// startOnce starts cmd on display (which must show nothing), returns the time from the
// process's start to the first picture of the display that shows its window, then stops it
// with SIGINT and waits for it to end and the screen to be empty again.
func startOnce(ctx context.Context, cmd *exec.Cmd, display string) (time.Duration, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	// The top 120 rows: Home's icon and title, the bare window's label and gradient (a read
	// of the whole 1280×800 display, 4 MB every 10 ms, competed with the programs starting).
	drawn, err := firstDrawnRows(ctx, display, 120)
	cmd.Process.Signal(os.Interrupt)
	werr := cmd.Wait()
	if err != nil {
		return 0, fmt.Errorf("%w; it said:\n%s", err, out.String())
	}
	if werr != nil {
		return 0, fmt.Errorf("it did not end cleanly on SIGINT: %w\n%s", werr, out.String())
	}
	if err := waitEmpty(ctx, display); err != nil {
		return 0, err
	}
	return drawn.Sub(start), nil
}

// waitEmpty waits until the display shows no window (50 colours or fewer).
func waitEmpty(ctx context.Context, display string) error {
	xgb.Logger = log.New(io.Discard, "", 0)
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", display, err)
	}
	defer c.Close()
	for {
		n, err := screenColours(c)
		if err != nil {
			return err
		}
		if n <= 50 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the display still shows a window (%d colours)", n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// screenColours counts the colours of every 7th pixel of the display, stopping past 50.
func screenColours(c *xgb.Conn) (int, error) {
	scr := xproto.Setup(c).DefaultScreen(c)
	im, err := xproto.GetImage(c, xproto.ImageFormatZPixmap, xproto.Drawable(scr.Root), 0, 0,
		scr.WidthInPixels, scr.HeightInPixels, 0xffffffff).Reply()
	if err != nil {
		return 0, fmt.Errorf("reading the display: %w", err)
	}
	seen := map[uint32]bool{}
	for i := 0; i+4 <= len(im.Data) && len(seen) <= 50; i += 4 * 7 { // 32 bits a pixel
		seen[uint32(im.Data[i])|uint32(im.Data[i+1])<<8|uint32(im.Data[i+2])<<16] = true
	}
	return len(seen), nil
}

// holdDisplay keeps a connection to display open until t ends: Xvfb resets (and refuses
// connections for a moment) when its last client leaves, as it does between two starts.
func holdDisplay(t testing.TB, display string) {
	t.Helper()
	xgb.Logger = log.New(io.Discard, "", 0)
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connecting to %s: %v", display, err)
	}
	t.Cleanup(c.Close)
}

// percentile of ds (sorted in place), nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(p/100*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkStartup: process start to the window drawn under Xvfb, the app (Home, no
// command) and the bare Fyne window in turn, DV_UI_STARTUP_ROUNDS rounds (default 9) after
// one unmeasured start of each (Go's and Fyne's caches, the secrets file created). Each
// program keeps its $HOME across its starts, as a person's does. Reports both p50s and
// their ratio; b.N is ignored (run it with -benchtime 1x). DV_UI_STARTUP_OTHER names another
// build of the app (an earlier commit's, say) to start in each round as well ("other").
func BenchmarkStartup(b *testing.B) {
	rounds := 9
	if s := os.Getenv("DV_UI_STARTUP_ROUNDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			rounds = n
		}
	}
	bin, bare := buildBinary(b), buildBare(b)
	display := xvfb(b, 1280, 800)
	holdDisplay(b, display)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	appHome, bareHome := b.TempDir(), b.TempDir()
	appStart := func() *exec.Cmd { return appCmd(ctx, b, bin, appHome, display) }
	bareStart := func() *exec.Cmd {
		c := appCmd(ctx, b, bin, bareHome, display)
		c.Path, c.Args = bare, []string{"barefyne"}
		return c
	}
	other := os.Getenv("DV_UI_STARTUP_OTHER")
	otherHome := b.TempDir()
	var ours, ref, others []time.Duration
	for i := -1; i < rounds; i++ {
		o, err := startOnce(ctx, appStart(), display)
		if err != nil {
			b.Fatalf("the app: %v", err)
		}
		if other != "" {
			c := appCmd(ctx, b, other, otherHome, display)
			d, err := startOnce(ctx, c, display)
			if err != nil {
				b.Fatalf("%s: %v", other, err)
			}
			if i >= 0 {
				others = append(others, d)
				b.Logf("round %d: other %v", i+1, d.Round(time.Millisecond))
			}
		}
		r, err := startOnce(ctx, bareStart(), display)
		if err != nil {
			b.Fatalf("bare Fyne: %v", err)
		}
		if i >= 0 {
			ours, ref = append(ours, o), append(ref, r)
			b.Logf("round %d: app %v, bare Fyne %v", i+1, o.Round(time.Millisecond), r.Round(time.Millisecond))
		}
	}
	o50, r50 := percentile(ours, 50), percentile(ref, 50)
	b.ReportMetric(ms(o50), "p50-ms")
	b.ReportMetric(ms(percentile(ours, 90)), "p90-ms")
	b.ReportMetric(ms(r50), "bare-p50-ms")
	b.ReportMetric(ms(percentile(ref, 90)), "bare-p90-ms")
	b.ReportMetric(float64(o50)/float64(r50), "app/bare")
	b.ReportMetric(float64(rounds), "rounds")
	if other != "" {
		b.ReportMetric(ms(percentile(others, 50)), "other-p50-ms")
		b.ReportMetric(float64(percentile(others, 50))/float64(r50), "other/bare")
	}
}
