package e2e

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/nodetest"
)

// The product's latency figures (issue 10, "## Figures"), measured with the built binary as
// the broadcaster (`live` with the test camera and microphone) in its own process and an
// app/session Viewer in this one, on loopback. scripts/bench.d/app.sh runs them with a
// benchtime that gives enough samples and prints each figure next to its goal; `make test`
// runs each once. Nothing here asserts a time: these are measurements.

var benchLoopback = session.NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, LAN: true, Public: true}

// liveProc is the broadcaster: the binary's `live` command in a child process.
type liveProc struct {
	cmd  *exec.Cmd
	card card.Card
	mu   sync.Mutex
	tail []string // its last output lines, for failure messages
	done chan struct{}
}

// startLive runs `dazaar-vision live` with the test devices at preset and waits for its card.
func startLive(b *testing.B, preset string, extra ...string) *liveProc {
	b.Helper()
	// Libraries log through the default logger; its lines would break the benchmark lines
	// scripts/bench.d/app.sh reads.
	slog.SetDefault(quietLog())
	dir := b.TempDir()
	cardFile := filepath.Join(dir, "card.txt")
	args := append([]string{"-data-dir", filepath.Join(dir, "data"), "-secrets", "file", "-secrets-file", filepath.Join(dir, "secrets.enc"),
		"live", "-video", "test", "-audio", "test", "-preset", preset, "-name", "bench", "-card-file", cardFile}, loopbackTC...)
	cmd := exec.Command(binary, append(args, extra...)...)
	cmd.Env = append(os.Environ(), "DAZAAR_VISION_PASSPHRASE=bench passphrase")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &liveProc{cmd: cmd, done: make(chan struct{})}
	cardC := make(chan string, 1)
	go func() { // owned by the child: ends when its output closes
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if m := cardRE.FindStringSubmatch(l); m != nil {
				select {
				case cardC <- m[1]:
				default:
				}
			}
			p.mu.Lock()
			p.tail = append(p.tail, l)
			if len(p.tail) > 40 { // bounded: the oldest lines are dropped
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
		cmd.Wait()
	}()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case text := <-cardC:
		if p.card, err = card.Parse(text); err != nil {
			b.Fatalf("the broadcaster's card does not parse: %v", err)
		}
	case <-p.done:
		b.Fatalf("the broadcaster exited:\n%s", p.output())
	case <-time.After(90 * time.Second):
		b.Fatalf("the broadcaster printed no card in 90 s:\n%s", p.output())
	}
	return p
}

func (p *liveProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// cpu is the child's CPU time so far (user + system, from /proc).
func (p *liveProc) cpu(b *testing.B) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("reading the broadcaster's CPU time: %v", err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		b.Fatalf("unexpected /proc stat line %q", s)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// runQueueWait is the time pid's threads have spent runnable but waiting for a CPU, summed
// over its threads (/proc/PID/task/*/schedstat, second field): how starved of CPU it was.
func runQueueWait(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		if f := strings.Fields(string(raw)); len(f) >= 2 {
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// selfCPU is this process's CPU time so far: the viewer's, as nothing else runs here.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// watcher is an in-process viewer whose decoded pictures are stamped with their latency.
type watcher struct {
	v       *session.Viewer
	cancel  context.CancelFunc
	decoded atomic.Int64
	lastAt  atomic.Int64 // Unix ns of the newest decode
	want    atomic.Int64 // a decode count to time...
	wantAt  atomic.Int64 // ...and when it was reached (Unix ns)

	mu      sync.Mutex
	start   time.Time // the stream header's Start: capture clock zero
	lat     []time.Duration
	keep    bool
	decAt   map[time.Duration]time.Time // decode time by PTS, while keeping
	arrAt   map[time.Duration]time.Time // verified arrival by PTS, while keeping
	late    int                         // pictures whose block arrived after a newer block
	firstAt time.Time
	first   chan struct{}
	more    chan struct{} // a latency was kept (capacity 1: a pending wake-up covers many)
}

func newWatcher(b *testing.B, c card.Card) *watcher {
	b.Helper()
	d, err := session.OpenDataDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	w := &watcher{first: make(chan struct{}), more: make(chan struct{}, 1)}
	var vp atomic.Pointer[session.Viewer]
	v, err := session.NewViewer(session.ViewerConfig{Data: d, Secrets: secrets.NewMemory(), Card: c, Network: benchLoopback,
		Audio: func() playback.AudioOutput { return audioout.NewSilent() }, Logger: quietLog(),
		OnDecoded: func(pts time.Duration, _ *image.RGBA) {
			now := time.Now()
			if w.decoded.Add(1) == w.want.Load() {
				w.wantAt.Store(now.UnixNano())
			}
			w.lastAt.Store(now.UnixNano())
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.firstAt.IsZero() {
				w.firstAt = now
				close(w.first)
			}
			if w.start.IsZero() {
				if v := vp.Load(); v != nil {
					if h := v.Header(); h != nil {
						w.start = h.Start
					}
				}
			}
			if w.keep && !w.start.IsZero() {
				w.lat = append(w.lat, now.Sub(w.start.Add(pts)))
				w.decAt[pts] = now
				select {
				case w.more <- struct{}{}:
				default:
				}
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	vp.Store(v)
	w.v = v
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	if err := v.Start(ctx); err != nil {
		cancel()
		b.Fatalf("the viewer does not start: %v", err)
	}
	return w
}

func (w *watcher) stop() {
	w.v.Stop()
	w.cancel()
}

// record starts (or stops) keeping latencies, dropping what was kept.
func (w *watcher) record(on bool) {
	w.mu.Lock()
	w.keep, w.lat, w.late = on, nil, 0
	w.decAt, w.arrAt = map[time.Duration]time.Time{}, map[time.Duration]time.Time{}
	w.mu.Unlock()
}

// traceArrivals records when each picture's block arrived verified, until ctx ends.
func (w *watcher) traceArrivals(ctx context.Context) {
	var newest uint64
	w.v.TraceArrivals(ctx, func(i uint64, pts time.Duration, at time.Time) {
		w.mu.Lock()
		if w.keep {
			w.arrAt[pts] = at
			if i < newest {
				w.late++
			}
		}
		newest = max(newest, i)
		w.mu.Unlock()
	})
}

// writeTrace writes one line a picture: PTS, then ms from capture to verified arrival and to
// decode (DV_BENCH_TRACE, for finding where time goes).
func (w *watcher) writeTrace(b *testing.B, path string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sb strings.Builder
	sb.WriteString("pts_ms,verified_ms,decoded_ms\n")
	keys := make([]time.Duration, 0, len(w.decAt))
	for pts := range w.decAt {
		keys = append(keys, pts)
	}
	slices.Sort(keys)
	for _, pts := range keys {
		c := w.start.Add(pts)
		arr := -1.0
		if a, ok := w.arrAt[pts]; ok {
			arr = ms(a.Sub(c))
		}
		fmt.Fprintf(&sb, "%.1f,%.2f,%.2f\n", ms(pts), arr, ms(w.decAt[pts].Sub(c)))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Logf("trace: %v", err)
	}
}

// split divides the kept latencies at the verified arrival: capture → verified at the viewer
// (broadcaster, network, verification) and verified → decoded (playback).
func (w *watcher) split() (toArrival, toDecode []time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for pts, d := range w.decAt {
		if a, ok := w.arrAt[pts]; ok {
			toArrival = append(toArrival, a.Sub(w.start.Add(pts)))
			toDecode = append(toDecode, d.Sub(a))
		}
	}
	slices.Sort(toArrival)
	slices.Sort(toDecode)
	return
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lat)
}

func (w *watcher) samples() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.lat)
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// pct is the p-quantile of sorted samples (nearest rank).
func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func reportQuantiles(b *testing.B, prefix string, s []time.Duration) {
	s = slices.Clone(s)
	slices.Sort(s)
	b.ReportMetric(ms(pct(s, 0.5)), prefix+"p50-ms")
	b.ReportMetric(ms(pct(s, 0.9)), prefix+"p90-ms")
	b.ReportMetric(ms(pct(s, 0.99)), prefix+"p99-ms")
	b.ReportMetric(ms(pct(s, 1)), prefix+"max-ms")
}

// BenchmarkGlassToGlass: capture (the picture's PTS plus the header's Start, stamped by the
// broadcaster process the moment the camera handed the picture over) → picture decoded at the
// viewer after verification, on the same machine and wall clock; one picture an iteration (b.Loop: the set-up runs once) after a 3 s
// warm-up (joining decodes the newest key frame's group quickly, which is not live latency).
// Also the CPU of each process over the same window, in % of one core.
func BenchmarkGlassToGlass(b *testing.B) {
	for _, p := range []struct{ preset, size string }{{"low", "640x360"}, {"medium", "640x480"}, {"high", "1280x720"}} {
		b.Run(p.size+"/"+p.preset, func(b *testing.B) {
			live := startLive(b, p.preset)
			w := newWatcher(b, live.card)
			defer w.stop()
			select {
			case <-w.first:
			case <-time.After(60 * time.Second):
				b.Fatalf("no picture decoded in 60 s; viewer %+v\nbroadcaster:\n%s", w.v.Snapshot(), live.output())
			}
			time.Sleep(3 * time.Second)
			tctx, tcancel := context.WithCancel(context.Background())
			var tw sync.WaitGroup
			tw.Add(1)
			go func() { defer tw.Done(); w.traceArrivals(tctx) }()
			defer func() { tcancel(); tw.Wait() }()
			w.record(true)
			bpid, vpid := live.cmd.Process.Pid, os.Getpid()
			n0, t0, bc0, vc0, bq0, vq0 := w.decoded.Load(), time.Now(), live.cpu(b), selfCPU(), runQueueWait(bpid), runQueueWait(vpid)
			k := 0
			for b.Loop() { // one picture an iteration
				k++
				for w.count() < k {
					select {
					case <-w.more:
					case <-time.After(60 * time.Second):
						b.Fatalf("only %d pictures in time; viewer %+v", w.count(), w.v.Snapshot())
					}
				}
			}
			wall, bc, vc, n := time.Since(t0), live.cpu(b)-bc0, selfCPU()-vc0, w.decoded.Load()-n0
			bq, vq := runQueueWait(bpid)-bq0, runQueueWait(vpid)-vq0
			s := w.samples()
			reportQuantiles(b, "", s)
			b.ReportMetric(float64(n)/wall.Seconds(), "decoded-fps")
			arr, dec := w.split()
			b.ReportMetric(ms(pct(arr, 0.5)), "to-verified-p50-ms")
			b.ReportMetric(ms(pct(arr, 0.99)), "to-verified-p99-ms")
			b.ReportMetric(ms(pct(dec, 0.5)), "verified-to-decoded-p50-ms")
			b.ReportMetric(ms(pct(dec, 0.99)), "verified-to-decoded-p99-ms")
			w.mu.Lock()
			b.ReportMetric(float64(w.late), "out-of-order-pictures")
			w.mu.Unlock()
			if path := os.Getenv("DV_BENCH_TRACE"); path != "" {
				w.writeTrace(b, path+"-"+p.preset+".csv")
			}
			b.ReportMetric(100*bc.Seconds()/wall.Seconds(), "bcast-cpu-%")
			b.ReportMetric(100*vc.Seconds()/wall.Seconds(), "viewer-cpu-%")
			// Thread time spent waiting for a CPU, per second: high values mean the machine,
			// not the pipeline, set the tail.
			b.ReportMetric(bq.Seconds()*1000/wall.Seconds(), "bcast-runq-ms/s")
			b.ReportMetric(vq.Seconds()*1000/wall.Seconds(), "viewer-runq-ms/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkFirstFrame: a card pasted into a new viewer (a new identity, an empty data
// directory) → its first decoded picture, once an iteration against one free 640×480 broadcast:
// parse, connect, handshake, the newest key frame, verification, decode.
func BenchmarkFirstFrame(b *testing.B) {
	live := startLive(b, "medium")
	text := live.card.String()
	time.Sleep(2 * time.Second) // the stream has its header and a key frame
	var total, started []time.Duration
	for b.Loop() {
		t0 := time.Now()
		c, err := card.Parse(text)
		if err != nil {
			b.Fatal(err)
		}
		w := newWatcher(b, c)
		started = append(started, time.Since(t0))
		select {
		case <-w.first:
		case <-time.After(60 * time.Second):
			b.Fatalf("no picture decoded in 60 s; viewer %+v\nbroadcaster:\n%s", w.v.Snapshot(), live.output())
		}
		w.mu.Lock()
		total = append(total, w.firstAt.Sub(t0))
		w.mu.Unlock()
		w.stop()
	}
	reportQuantiles(b, "", total)
	slices.Sort(started)
	b.ReportMetric(ms(pct(started, 0.5)), "start-p50-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPaidResume: a payment settled at the seller's LND → video flowing again at the
// viewer (its next decoded picture), once an iteration, with real btcd and two LND nodes. Each round
// buys 2 s of video in advance, watches it run out (the seller refuses and pictures stop), then
// pays. The settle moment is when the payee LND first reports the invoice SETTLED, polled
// while the payer's LND pays; "from-pay" counts from the moment the payment was sent instead.
func BenchmarkPaidResume(b *testing.B) {
	_, payer, payee := nodetest.LightningPair(b, 1_000_000)
	dir := b.TempDir()
	cert := filepath.Join(dir, "tls.cert")
	if err := os.WriteFile(cert, payee.TLSCert(), 0o600); err != nil {
		b.Fatal(err)
	}
	// 600 sats a minute: 20 sats buy 2 s.
	live := startLive(b, "medium", "-price", "600 sats per minute", "-network", "simnet", "-lnd-host", payee.REST,
		"-lnd-macaroon", payee.MacaroonPath("invoice"), "-lnd-cert", cert)
	w := newWatcher(b, live.card)
	defer w.stop()
	ctx := context.Background()
	var fromSettle, fromPay []time.Duration
	for i := 0; b.Loop(); i++ {
		inv, err := w.v.Buy(ctx, session.BuyRequest{Sats: 20})
		if err != nil {
			b.Fatalf("buying: %v", err)
		}
		var pr struct {
			Hash string `json:"payment_hash"`
		}
		payee.Do("GET", "/v1/payreq/"+inv.Bolt11, nil, &pr)
		// Wait until the paid time is used up and pictures have stopped (the first round
		// starts unpaid).
		deadline := time.Now().Add(60 * time.Second)
		for i > 0 && (w.v.Access().State != wire.Refused || time.Since(time.Unix(0, w.lastAt.Load())) < 500*time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("round %d: pictures did not stop after the paid time; viewer %+v", i, w.v.Snapshot())
			}
			time.Sleep(10 * time.Millisecond)
		}
		w.wantAt.Store(0)
		w.want.Store(w.decoded.Load() + 1)
		payErr := make(chan error, 1)
		paidAt := time.Now()
		go func() { payErr <- payer.Pay(inv.Bolt11) }()
		var settledAt time.Time
		for settledAt.IsZero() {
			asked := time.Now()
			var st struct {
				State string `json:"state"`
			}
			payee.Do("GET", "/v1/invoice/"+pr.Hash, nil, &st)
			if st.State == "SETTLED" {
				settledAt = asked
			} else {
				time.Sleep(2 * time.Millisecond)
			}
			if time.Since(paidAt) > 60*time.Second {
				b.Fatalf("round %d: the invoice was not settled in 60 s", i)
			}
		}
		if err := <-payErr; err != nil {
			b.Fatalf("round %d: %v", i, err)
		}
		for w.wantAt.Load() == 0 {
			if time.Since(paidAt) > 60*time.Second {
				b.Fatalf("round %d: no picture within 60 s of paying; viewer %+v\nbroadcaster:\n%s", i, w.v.Snapshot(), live.output())
			}
			time.Sleep(time.Millisecond)
		}
		at := time.Unix(0, w.wantAt.Load())
		fromSettle = append(fromSettle, at.Sub(settledAt))
		fromPay = append(fromPay, at.Sub(paidAt))
	}
	reportQuantiles(b, "", fromSettle)
	s := slices.Clone(fromPay)
	slices.Sort(s)
	b.ReportMetric(ms(pct(s, 0.5)), "from-pay-p50-ms")
	b.ReportMetric(ms(pct(s, 0.99)), "from-pay-p99-ms")
	b.ReportMetric(0, "ns/op")
}
