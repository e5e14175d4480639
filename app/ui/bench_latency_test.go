package ui

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/playback"
)

// Capture -> painted: a command-line broadcaster and the window watching it, two processes on
// loopback under Xvfb, the window writing its frame log (EnvFrameLog). A picture's capture
// time is the stream header's Start plus its PTS, read by a viewer in the test process; the
// window logs when each picture was due ("decoded": the player's clock reached the picture,
// which was decoded before; the player hands it to the view earlier by the view's measured
// display latency, playback.DisplayLatency), when it was handed over, and when the paint
// that took it was on screen. All on this machine's clock.

// liveBroadcaster starts `dazaar-vision live` (test camera, no sound, free) at preset and
// returns its card; it is stopped when tb ends.
func liveBroadcaster(ctx context.Context, tb testing.TB, bin, preset string) string {
	tb.Helper()
	home := tb.TempDir()
	cardFile := filepath.Join(home, "card.txt")
	cmd := appCmd(ctx, tb, bin, home, "", "live", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0",
		"-video", "test", "-audio", "none", "-preset", preset, "-card-file", cardFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	for {
		if c, err := os.ReadFile(cardFile); err == nil && len(bytes.TrimSpace(c)) > 0 {
			return string(bytes.TrimSpace(c))
		}
		if ctx.Err() != nil {
			tb.Fatalf("the broadcaster printed no card:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamStart joins the stream in this process until it has the stream header, and returns
// the header's Start: the wall time of the capture clock's zero.
func streamStart(ctx context.Context, tb testing.TB, cardText string) time.Time {
	tb.Helper()
	c, err := card.Parse(cardText)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := session.OpenDataDir(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	v, err := session.NewViewer(session.ViewerConfig{Data: d, Secrets: secrets.NewMemory(), Card: c,
		Network: session.NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, LAN: true},
		Frames:  playback.FrameSinkFunc(func(f *playback.Frame) { f.Release() }),
		Audio:   func() playback.AudioOutput { return audioout.NewSilent() },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := v.Start(vctx); err != nil {
		tb.Fatalf("the test's viewer does not start: %v", err)
	}
	defer v.Stop()
	for {
		if h := v.Header(); h != nil {
			return h.Start
		}
		if ctx.Err() != nil {
			tb.Fatal("no stream header")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// frameEvents reads a frame log: for each kind, PTS -> wall time.
func frameEvents(tb testing.TB, name string) map[byte]map[time.Duration]time.Time {
	tb.Helper()
	ev := map[byte]map[time.Duration]time.Time{}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return ev // no picture yet
	}
	if err != nil {
		tb.Fatalf("reading the window's frame log: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || len(fields[0]) != 1 {
			continue
		}
		pts, err1 := strconv.ParseInt(fields[1], 10, 64)
		at, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		k := fields[0][0]
		if ev[k] == nil {
			ev[k] = map[time.Duration]time.Time{}
		}
		if _, seen := ev[k][time.Duration(pts)]; !seen {
			ev[k][time.Duration(pts)] = time.Unix(0, at)
		}
	}
	return ev
}

// watchWindow starts the window on cardText with a frame log; stop ends it.
func watchWindow(ctx context.Context, tb testing.TB, bin, display, cardText, frameLog string) (cmd *exec.Cmd, out *bytes.Buffer, stop func()) {
	tb.Helper()
	out = &bytes.Buffer{}
	cmd = appCmd(ctx, tb, bin, tb.TempDir(), display, "-v", "ui", "-lan", cardText)
	cmd.Env = append(cmd.Env, EnvFrameLog+"="+frameLog)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd, out, func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
}

// BenchmarkPaintLatency: capture -> painted in the window against capture -> decoded (due
// on screen by the player's clock) in the same process, same pictures, 640×480 (DV_UI_BENCH_PRESET, default
// medium), DV_UI_LATENCY_SECS seconds (default 20) after 8 s of playing. b.N is ignored
// (-benchtime 1x).
func BenchmarkPaintLatency(b *testing.B) {
	preset := os.Getenv("DV_UI_BENCH_PRESET")
	if preset == "" {
		preset = "medium"
	}
	secs := 20
	if s, err := strconv.Atoi(os.Getenv("DV_UI_LATENCY_SECS")); err == nil && s > 0 {
		secs = s
	}
	bin := buildBinary(b)
	display := xvfb(b, 1280, 800)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cardText := liveBroadcaster(ctx, b, bin, preset)
	start := streamStart(ctx, b, cardText)
	logName := filepath.Join(b.TempDir(), "frames.log")
	_, out, stop := watchWindow(ctx, b, bin, display, cardText, logName)
	time.Sleep(8 * time.Second) // connected and playing
	from := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	to := time.Now()
	stop()
	ev := frameEvents(b, logName)
	var decoded, painted, gen, extra []time.Duration
	handed := 0
	for pts, h := range ev['h'] {
		if h.Before(from) || h.After(to) {
			continue
		}
		handed++
		captured := start.Add(pts)
		p, ok := ev['p'][pts]
		if !ok {
			continue // replaced before drawing
		}
		due := h // a player that hands pictures over when due
		if d, ok := ev['d'][pts]; ok {
			due = d // handed over early by the view's display latency
		}
		decoded = append(decoded, due.Sub(captured))
		painted = append(painted, p.Sub(captured))
		extra = append(extra, p.Sub(h))
		if g, ok := ev['g'][pts]; ok {
			gen = append(gen, g.Sub(captured))
		}
	}
	if len(painted) == 0 {
		b.Fatalf("no picture was painted in %d s (%d handed to the view); the window said:\n%s", secs, handed, out.String())
	}
	d50, p50 := percentile(decoded, 50), percentile(painted, 50)
	b.ReportMetric(ms(d50), "decoded-p50-ms")
	b.ReportMetric(ms(percentile(decoded, 99)), "decoded-p99-ms")
	b.ReportMetric(ms(p50), "painted-p50-ms")
	b.ReportMetric(ms(percentile(painted, 99)), "painted-p99-ms")
	b.ReportMetric(ms(percentile(gen, 50)), "paint-start-p50-ms")
	b.ReportMetric(ms(p50-d50), "p50-diff-ms")
	b.ReportMetric(ms(percentile(extra, 50)), "handed-to-painted-p50-ms")
	b.ReportMetric(ms(percentile(extra, 99)), "handed-to-painted-p99-ms")
	b.ReportMetric(float64(len(painted))/float64(secs), "painted-fps")
	b.ReportMetric(float64(handed)/float64(secs), "handed-fps")
	b.Logf("%s: %d pictures handed to the view in %d s, %d painted; capture->decoded p50 %.1f ms, capture->painted p50 %.1f ms",
		preset, handed, secs, len(painted), ms(d50), ms(p50))
}
