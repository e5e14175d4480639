package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// Real windows: the built binary under Xvfb, screenshots taken with ImageMagick's import
// (Makefile APT_TEST: xvfb, xauth, imagemagick). DV_UPDATE_SCREENSHOTS=1 copies them to
// docs/screenshots.

// buildBinary builds dazaar-vision once per test binary.
var builtBinary string

func buildBinary(t testing.TB) string {
	t.Helper()
	if builtBinary != "" {
		return builtBinary
	}
	dir, err := os.MkdirTemp("", "dv-ui-bin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dazaar-vision")
	cmd := xtest.GoCommand(context.Background(), "build", "-o", bin, "../..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	builtBinary = bin
	return bin
}

func need(t testing.TB, tools ...string) { xtest.Need(t, tools...) }

func xvfb(t testing.TB, w, h int) string { return xtest.Xvfb(t, w, h) }

func screenshot(t *testing.T, display string) image.Image { return xtest.Screenshot(t, display) }

func colours(img image.Image, r image.Rectangle) int { return xtest.Colours(img, r) }

func differs(a, b image.Image, r image.Rectangle) int { return xtest.Differs(a, b, r) }

func savePNG(t *testing.T, img image.Image, name string) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	dir := screenshotDir()
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// screenshotDir is where screenshots go: docs/screenshots with DV_UPDATE_SCREENSHOTS=1.
func screenshotDir() string {
	if os.Getenv("DV_UPDATE_SCREENSHOTS") != "" {
		return filepath.Join("..", "..", "docs", "screenshots")
	}
	return filepath.Join(os.TempDir(), "dv-ui-screenshots")
}

// app runs the binary with its own data directory and secrets file.
func appCmd(ctx context.Context, t testing.TB, bin, home, display string, args ...string) *exec.Cmd {
	full := append([]string{"-data-dir", filepath.Join(home, "data"), "-secrets", "file", "-secrets-file", filepath.Join(home, "secrets.enc")}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"DAZAAR_VISION_PASSPHRASE=window test passphrase", "DISPLAY="+display, "LANG=en_US.UTF-8", "FYNE_SCALE=1")
	if display == "" {
		cmd.Env = append(cmd.Env, "DISPLAY=", "WAYLAND_DISPLAY=")
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	return cmd
}

// TestWindowOpens starts the built binary with no command under Xvfb: the Home window is
// drawn (not a uniform image) and closes on SIGINT. It reports the start-up time: process
// start to the first of the display's pictures, read every 10 ms over X11, that shows the
// window, and, for reference in the same run, a bare Fyne window's (testdata/barefyne;
// BenchmarkStartup compares the two over many interleaved starts).
func TestWindowOpens(t *testing.T) {
	bin := buildBinary(t)
	display := xvfb(t, 1280, 800)
	holdDisplay(t, display)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := appCmd(ctx, t, bin, home, display, "-v")
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	drawn, err := firstDrawn(ctx, display)
	if err != nil {
		t.Fatalf("%v; the app said:\n%s", err, stderr.String())
	}
	t.Logf("start-up: process start to window drawn in %v", drawn.Sub(start).Round(time.Millisecond))
	// Let the lists load and the store open.
	time.Sleep(2 * time.Second)
	img := screenshot(t, display)
	if n := colours(img, img.Bounds()); n < 50 {
		t.Fatalf("the screen has %d colours: nothing was drawn", n)
	}
	savePNG(t, img, "home.png")
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the app did not end cleanly on SIGINT: %v\n%s", err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "window started") {
			t.Logf("%s", l)
		}
	}
	if err := waitEmpty(ctx, display); err != nil {
		t.Fatal(err)
	}
	bare := appCmd(ctx, t, bin, t.TempDir(), display)
	bare.Path, bare.Args = buildBare(t), []string{"barefyne"}
	d, err := startOnce(ctx, bare, display)
	if err != nil {
		t.Fatalf("bare Fyne: %v", err)
	}
	t.Logf("reference: a bare Fyne window drawn in %v (its first start with this $HOME)", d.Round(time.Millisecond))
}

// TestNoDisplay: without a display the app says so and points at the command line.
func TestNoDisplay(t *testing.T) {
	bin := buildBinary(t)
	home := t.TempDir()
	var out bytes.Buffer
	cmd := appCmd(context.Background(), t, bin, home, "")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil || !strings.Contains(out.String(), "no display") || !strings.Contains(out.String(), "dazaar-vision help") {
		t.Fatalf("without a display: %v\n%s", err, out.String())
	}
}

// TestWindowWatchesALiveStream: a broadcaster (the command line, test camera, free) and the
// window as two processes on loopback. The window opened on the card shows the video: the
// video region changes between two screenshots.
func TestWindowWatchesALiveStream(t *testing.T) {
	bin := buildBinary(t)
	display := xvfb(t, 1280, 800)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sellerHome := t.TempDir()
	cardFile := filepath.Join(sellerHome, "card.txt")
	var sellerOut bytes.Buffer
	seller := appCmd(ctx, t, bin, sellerHome, "", "live", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0",
		"-video", "test", "-audio", "test", "-preset", "low", "-name", "Garden, live",
		"-description", "Tomatoes growing in real time", "-card-file", cardFile)
	seller.Stdout, seller.Stderr = &sellerOut, &sellerOut
	if err := seller.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { seller.Process.Signal(os.Interrupt); seller.Wait() }()
	var cardText string
	for cardText == "" {
		if b, err := os.ReadFile(cardFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			cardText = string(bytes.TrimSpace(b))
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the broadcaster printed no card:\n%s", sellerOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var viewerOut bytes.Buffer
	viewer := appCmd(ctx, t, bin, t.TempDir(), display, "ui", "-lan", cardText)
	viewer.Stdout, viewer.Stderr = &viewerOut, &viewerOut
	if err := viewer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if viewer.ProcessState == nil {
			viewer.Process.Signal(os.Interrupt)
			viewer.Wait()
		}
	}()
	video := image.Rect(250, 220, 850, 520) // inside the picture area of the 1100×720 window
	var a, b image.Image
	for {
		a = screenshot(t, display)
		time.Sleep(700 * time.Millisecond)
		b = screenshot(t, display)
		// Both show pictures (the test pattern has hundreds of colours; black with the overlay's
		// text a few dozen), and they differ.
		if colours(a, video) > 200 && colours(b, video) > 200 && differs(a, b, video) > 500 {
			break
		}
		if ctx.Err() != nil {
			savePNG(t, b, "failed-watch.png")
			t.Fatalf("the video region did not change; the viewer said:\n%s\nthe broadcaster said:\n%s", viewerOut.String(), sellerOut.String())
		}
	}
	t.Logf("video region: %d of %d sampled pixels changed in 0.7 s", differs(a, b, video), video.Dx()*video.Dy()/4)
	savePNG(t, b, "watch-free.png")
	// Closed while playing: the watch view releases its pictures after Fyne's event loop has
	// ended, on the loop's goroutine (Fyne logs each widget touched on another one).
	viewer.Process.Signal(os.Interrupt)
	if err := viewer.Wait(); err != nil {
		t.Fatalf("the window did not end cleanly on SIGINT: %v\n%s", err, viewerOut.String())
	}
	if strings.Contains(viewerOut.String(), "Error in Fyne call thread") {
		t.Errorf("the window touched Fyne off its goroutine as it closed:\n%s", viewerOut.String())
	}
}

// cpuSeconds is the CPU time process pid has used (Linux /proc).
func cpuSeconds(t testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("cannot read the process's CPU time: %v", err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) / 100 // USER_HZ
}

// BenchmarkWatchWindow measures what drawing the video costs: a command-line broadcaster
// (the test scene, which the encoder keeps at the preset's full frame rate where the test
// camera's noise strip makes rate control drop a third of the pictures at 720p; preset
// DV_UI_BENCH_PRESET, default medium) is watched for 10 s by the command
// line (which decodes every picture but draws none) and then by the window under Xvfb; the
// difference in CPU is the window's. The window logs how many pictures it drew of those the
// player handed it.
func BenchmarkWatchWindow(b *testing.B) {
	preset := os.Getenv("DV_UI_BENCH_PRESET")
	if preset == "" {
		preset = "medium"
	}
	bin := buildBinary(b)
	display := xvfb(b, 1920, 1080)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sellerHome := b.TempDir()
	cardFile := filepath.Join(sellerHome, "card.txt")
	seller := appCmd(ctx, nil, bin, sellerHome, "", "live", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0",
		"-video", "scene", "-audio", "none", "-preset", preset, "-card-file", cardFile)
	var sellerOut bytes.Buffer
	seller.Stdout, seller.Stderr = &sellerOut, &sellerOut
	if err := seller.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { seller.Process.Signal(os.Interrupt); seller.Wait() }()
	var cardText string
	for cardText == "" {
		if c, err := os.ReadFile(cardFile); err == nil && len(bytes.TrimSpace(c)) > 0 {
			cardText = string(bytes.TrimSpace(c))
		} else if ctx.Err() != nil {
			b.Fatalf("no card:\n%s", sellerOut.String())
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	measure := func(args ...string) (float64, string) {
		var out bytes.Buffer
		cmd := appCmd(ctx, nil, bin, b.TempDir(), display, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(8 * time.Second) // connected and playing
		c0, t0 := cpuSeconds(b, cmd.Process.Pid), time.Now()
		time.Sleep(10 * time.Second)
		c1, t1 := cpuSeconds(b, cmd.Process.Pid), time.Now()
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		return (c1 - c0) / t1.Sub(t0).Seconds(), out.String()
	}
	cli, _ := measure("watch", "-lan", cardText)
	win, log := measure("-v", "ui", "-lan", cardText)
	b.ReportMetric(cli, "cli-cores")
	b.ReportMetric(win, "window-cores")
	b.ReportMetric(win-cli, "drawing-cores")
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "watch view closed") {
			b.Logf("%s", l)
		}
	}
}

// TestQuietLocale: under a C locale with an encoding (C.UTF-8, many containers' default),
// plain C, or none, the program prints no Fyne locale error, for a command or --version.
func TestQuietLocale(t *testing.T) {
	bin := buildBinary(t)
	for _, lang := range []string{"C.UTF-8", "C", "POSIX", ""} {
		for _, args := range [][]string{{"--version"}, {"card", "inspect", "x"}} {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "LANG="+lang, "LC_ALL=", "LC_MESSAGES=", "LANGUAGE=")
			out, _ := cmd.CombinedOutput()
			if strings.Contains(string(out), "Fyne") || strings.Contains(string(out), "locale") {
				t.Errorf("LANG=%q dazaar-vision %s said:\n%s", lang, strings.Join(args, " "), out)
			}
		}
	}
}

// firstDrawn reads the display's root window over X11 (GetImage, a few milliseconds where
// ImageMagick's import takes 0.5-2 s) every 10 ms until it shows more than 50 colours, and
// returns when it first did (the end of the read that saw it).
func firstDrawn(ctx context.Context, display string) (time.Time, error) {
	return firstDrawnRows(ctx, display, 0)
}

// firstDrawnRows is firstDrawn reading only the top rows of the display (all of it when rows
// is 0): a smaller read is quicker and takes less of the CPU the starting program needs.
func firstDrawnRows(ctx context.Context, display string, rows uint16) (time.Time, error) {
	xgb.Logger = log.New(io.Discard, "", 0) // not "Could not get authority info": Xvfb has none
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		return time.Time{}, fmt.Errorf("connecting to %s: %w", display, err)
	}
	defer c.Close()
	scr := xproto.Setup(c).DefaultScreen(c)
	h := scr.HeightInPixels
	if rows > 0 && rows < h {
		h = rows
	}
	for {
		im, err := xproto.GetImage(c, xproto.ImageFormatZPixmap, xproto.Drawable(scr.Root), 0, 0,
			scr.WidthInPixels, h, 0xffffffff).Reply()
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the display: %w", err)
		}
		now := time.Now()
		seen := map[uint32]bool{}
		for i := 0; i+4 <= len(im.Data) && len(seen) <= 50; i += 4 * 7 { // every 7th pixel, 32 bits each
			seen[uint32(im.Data[i])|uint32(im.Data[i+1])<<8|uint32(im.Data[i+2])<<16] = true
		}
		if len(seen) > 50 {
			return now, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, errors.New("the window was never drawn")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestWindowThemesAndScale draws the window as people with other settings see it: the watch
// view of a paid card (terms, the minutes presets and the calculator) in the light and the
// dark theme (FYNE_THEME), and Home at twice the scale (FYNE_SCALE=2). Light is light and dark
// is dark (mean brightness of the terms above the picture), both have text (many colours), and at 2× the window
// fills twice the width with content.
func TestWindowThemesAndScale(t *testing.T) {
	bin := buildBinary(t)
	cardText := paidCard(t).String()
	shot := func(display string, scale int, env []string, rect image.Rectangle, args ...string) image.Image {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var out bytes.Buffer
		cmd := appCmd(ctx, t, bin, t.TempDir(), display, args...)
		cmd.Env = append(cmd.Env, env...)
		cmd.Env = append(cmd.Env, fmt.Sprintf("FYNE_SCALE=%d", scale))
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
		if _, err := firstDrawn(ctx, display); err != nil {
			t.Fatalf("%v; the app said:\n%s", err, out.String())
		}
		time.Sleep(2 * time.Second) // the lists load, the store opens
		img := screenshot(t, display)
		return img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(rect)
	}
	win := image.Rect(0, 0, 1100, 720)
	display := xvfb(t, 1280, 800)
	light := shot(display, 1, []string{"FYNE_THEME=light"}, win, "ui", cardText)
	dark := shot(display, 1, []string{"FYNE_THEME=dark"}, win, "ui", cardText)
	head := image.Rect(0, 0, 1100, 160) // the terms above the picture
	lb, db := brightness(light, head), brightness(dark, head)
	t.Logf("mean brightness above the picture: light theme %.0f, dark theme %.0f (of 255)", lb, db)
	if lb < 150 || db > 100 {
		t.Errorf("the light theme's window has mean brightness %.0f, the dark one's %.0f", lb, db)
	}
	for _, img := range []image.Image{light, dark} {
		if n := colours(img, img.Bounds()); n < 50 {
			t.Errorf("a themed window has %d colours", n)
		}
	}
	savePNG(t, light, "watch-paid-light.png")
	savePNG(t, dark, "watch-paid-dark.png")

	big := xvfb(t, 2400, 1600)
	home2 := shot(big, 2, nil, image.Rect(0, 0, 2200, 1440))
	right := image.Rect(1300, 0, 2200, 1440)
	if n := colours(home2, right); n < 20 {
		t.Errorf("at 2× the window's right half has %d colours: it is not drawn twice as large", n)
	}
	savePNG(t, home2, "home-scale2.png")
}

// brightness is the mean luma (0-255) of r in img, every fourth pixel.
func brightness(img image.Image, r image.Rectangle) float64 {
	var sum, n float64
	for y := r.Min.Y; y < r.Max.Y; y += 4 {
		for x := r.Min.X; x < r.Max.X; x += 4 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sum += (0.299*float64(cr) + 0.587*float64(cg) + 0.114*float64(cb)) / 257
			n++
		}
	}
	return sum / n
}
