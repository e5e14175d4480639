package playback

import (
	"context"
	"errors"
	"image"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"

	"github.com/filecoin-project/go-clock"
	"go.uber.org/goleak"
)

// startClock is the real clock, remembering its first reading: the broadcaster reads it
// once, as its capture clock's zero, so capture() is the broadcaster's capture clock.
type startClock struct {
	clock.Clock
	mu    sync.Mutex
	first time.Time
}

func (c *startClock) Now() time.Time {
	t := c.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.IsZero() {
		c.first = t
	}
	return t
}

func (c *startClock) capture() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Clock.Since(c.first)
}

// live starts a broadcaster from the test drivers into a memfeed; stop ends it.
func live(t *testing.T, preset broadcast.Preset, clock clock.Clock) (feed *memfeed.Feed, p *testpattern.Painter, stop func()) {
	t.Helper()
	vd, _ := capture.TestDevice(capture.Camera)
	ad, _ := capture.TestDevice(capture.Microphone)
	vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: preset.Width, Height: preset.Height, FrameRate: float64(preset.FrameRate)})
	if err != nil {
		t.Fatal(err)
	}
	as, err := capture.OpenAudio(ad, capture.AudioWant{SampleRate: 48000, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	p = &testpattern.Painter{Keep: true}
	vs.Reader = p.Wrap(vs.Reader)
	feed = memfeed.New()
	b, err := broadcast.New(broadcast.Config{Preset: preset, Video: vs, Audio: as, Sink: feed, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	return feed, p, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("broadcast: %v", err)
		}
		feed.Close()
	}
}

type shown struct {
	pts     time.Duration
	counter uint32
	ok      bool
	at      time.Duration // capture clock when shown
	clock   time.Duration // player's master clock when shown
	psnr    float64
	img     *image.RGBA
}

// collector is a FrameSink that keeps a copy of each picture; get checks them against
// their sources afterwards, so that ShowFrame stays fast (a slow sink makes frames late).
type collector struct {
	mu     sync.Mutex
	p      *testpattern.Painter
	player *Player
	clock  func() time.Duration
	frames []shown
}

func (c *collector) ShowFrame(f *Frame) {
	defer f.Release()
	s := shown{pts: f.PTS}
	if c.clock != nil {
		s.at = c.clock()
	}
	if c.player != nil {
		s.clock, _ = c.player.clock()
	}
	img := *f.Image
	img.Pix = append([]byte(nil), f.Image.Pix...)
	s.img = &img
	c.mu.Lock()
	c.frames = append(c.frames, s)
	c.mu.Unlock()
}

// check reads the counters and measures PSNR against the sources.
func (c *collector) check() []shown {
	frames := c.get()
	for i := range frames {
		f := &frames[i]
		f.counter, f.ok = testpattern.ReadCounter(f.img)
		if src := c.p.Source(f.counter); f.ok && src != nil {
			// Compare with the source converted to RGBA by the same BT.601 formula, since
			// both clip the test pattern's out-of-gamut colours alike.
			b := f.img.Rect
			f.psnr = testpattern.PSNR(f.img, testpattern.ToRGBA(src), image.Rect(0, 0, b.Dx(), b.Dy()*3/4))
		}
		f.img = nil
	}
	return frames
}

func (c *collector) get() []shown {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]shown(nil), c.frames...)
}

// tap is a silent output that keeps what it played.
type tap struct {
	*audioout.Silent
	mu  sync.Mutex
	pcm []float32
}

func newTap() *tap {
	t := &tap{Silent: audioout.NewSilent()}
	t.Silent.Tap = func(b []float32) {
		t.mu.Lock()
		t.pcm = append(t.pcm, b...)
		t.mu.Unlock()
	}
	return t
}

func (t *tap) played() []float32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]float32(nil), t.pcm...)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestJoinLiveStream joins a running broadcast: playback starts at the newest key frame,
// stays within a second of the live edge, keeps pictures on the audio clock, and plays the
// test tone.
func TestJoinLiveStream(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // goroutines running before the test are not its own
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	sc := &startClock{Clock: clock.New()}
	clock := sc.capture
	preset := broadcast.Medium
	preset.KeyFrameInterval = 2 * time.Second
	feed, painter, stop := live(t, preset, sc)
	defer stop()
	time.Sleep(3 * time.Second) // the newest key frame is now up to 2 s old

	out := newTap()
	col := &collector{p: painter, clock: clock}
	player, err := New(Config{Source: feed, Frames: col, Audio: out})
	if err != nil {
		t.Fatal(err)
	}
	col.player = player
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	joined := time.Now()
	go func() { done <- player.Run(ctx) }()
	// Play 3 s, longer (up to 10 s) until 20 pictures are shown: the frames from the key frame
	// to the live edge are decoded but not shown, and on a loaded machine (the race detector,
	// other test binaries beside it) that catch-up takes a larger part of the 3 s. What is
	// shown is judged the same either way.
	for t0 := time.Now(); time.Since(t0) < 10*time.Second; time.Sleep(100 * time.Millisecond) {
		if time.Since(t0) >= 3*time.Second && len(col.get()) >= 20 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := player.Stats()
	frames := col.check()
	t.Logf("stats %+v; %d frames shown", st, len(frames))
	if !feed.IsSync(st.StartBlock) || st.StartBlock < 2 {
		t.Fatalf("started at block %d (sync %v), not at the newest key frame", st.StartBlock, feed.IsSync(st.StartBlock))
	}
	if st.BlocksDamaged != 0 {
		t.Fatalf("%d damaged blocks", st.BlocksDamaged)
	}
	if len(frames) < 20 {
		t.Fatalf("only %d frames shown", len(frames))
	}
	var lags, skew []time.Duration
	for i, f := range frames {
		if !f.ok {
			t.Fatalf("frame %d: counter unreadable", i)
		}
		if f.psnr < 35 {
			t.Fatalf("frame %d (counter %d): PSNR %.1f dB", i, f.counter, f.psnr)
		}
		if i > 0 && f.counter <= frames[i-1].counter {
			t.Fatalf("frames out of order: %d after %d", f.counter, frames[i-1].counter)
		}
		lags = append(lags, f.at-f.pts)
		d := f.clock - f.pts
		if d < 0 {
			d = -d
		}
		skew = append(skew, d)
	}
	firstAt := frames[0].at - clock() + time.Since(joined) // capture-clock time of the first frame, from joining
	t.Logf("first picture %v after joining; lag behind capture p50 %v, max %v; |audio clock - picture| p50 %v",
		firstAt, median(lags), slicesMax(lags), median(skew))
	if m := median(lags); m > time.Second {
		t.Fatalf("playback lags the live edge by %v (median)", m)
	}
	if m := median(skew); m > 50*time.Millisecond {
		t.Fatalf("pictures are %v off the audio clock (median)", m)
	}
	pcm := out.played()
	if f := testpattern.ToneFrequency(pcm[len(pcm)/2:], 48000); math.Abs(f-480) > 3 {
		t.Fatalf("played tone %.1f Hz, want 480", f)
	}
	if rms := testpattern.RMS(pcm[len(pcm)/2:]); rms < 0.1 {
		t.Fatalf("played sound RMS %.3f: mostly silence", rms)
	}
}

func slicesMax(d []time.Duration) time.Duration {
	m := d[0]
	for _, v := range d {
		m = max(m, v)
	}
	return m
}

// TestDamagedBlocks plays a recorded stream in which blocks are truncated, bit-flipped,
// oversized, out of place and garbage: each is skipped with a clear error, no broken
// picture is shown, and playback resumes at the next key frame.
func TestDamagedBlocks(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // goroutines running before the test are not its own
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	preset := broadcast.Medium
	preset.KeyFrameInterval = 500 * time.Millisecond
	rec, painter, stop := live(t, preset, nil)
	time.Sleep(2500 * time.Millisecond)
	stop()

	// Copy the recording, damaging some delta-frame blocks in the middle.
	n := rec.Len()
	feed := memfeed.New()
	var damagedAt []uint64
	var keyAfter []uint64
	for i := uint64(0); i < n; i++ {
		b, _ := rec.Block(context.Background(), i)
		b = append([]byte(nil), b...)
		switch {
		case i == n/4:
			b = b[:len(b)/2] // truncated
		case i == n/4+2:
			b[len(b)/2] ^= 0x40 // bit flip
		case i == n/2:
			b = make([]byte, block.MaxBlockSize+1) // oversized
		case i == n/2+1:
			b = []byte("not a media block at all")
		case i == 3*n/4:
			other, _ := rec.Block(context.Background(), i-1) // a valid block out of place
			b = append([]byte(nil), other...)
		}
		if i == n/4 || i == n/4+2 || i == n/2 || i == n/2+1 || i == 3*n/4 {
			damagedAt = append(damagedAt, i)
		}
		feed.Append(context.Background(), b, rec.IsSync(i))
	}
	feed.Close()
	for _, d := range damagedAt {
		for j := d + 1; j < n; j++ {
			if rec.IsSync(j) {
				keyAfter = append(keyAfter, j)
				break
			}
		}
	}

	col := &collector{p: painter}
	player, err := New(Config{Source: feed, Frames: col, Audio: newTap(), FromBlock: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := player.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := player.Stats()
	frames := col.check()
	t.Logf("%d blocks, damaged at %v, next key frames at %v; stats %+v; %d frames shown", n, damagedAt, keyAfter, st, len(frames))
	if st.BlocksDamaged < int64(len(damagedAt)) {
		t.Fatalf("%d damaged blocks noticed, want %d", st.BlocksDamaged, len(damagedAt))
	}
	if st.FramesSkipped == 0 {
		t.Fatal("no delta frames were skipped after damage")
	}
	for i, f := range frames {
		if !f.ok || f.psnr < 35 {
			t.Fatalf("frame %d shown broken: counter ok %v, PSNR %.1f", i, f.ok, f.psnr)
		}
	}
	// Playback went on to the end of the stream.
	last, _ := rec.Block(context.Background(), n-1)
	m, err := block.DecodeMedia(last)
	if err != nil {
		t.Fatal(err)
	}
	lastPTS := m.Units[len(m.Units)-1].PTS
	if got := frames[len(frames)-1].pts; lastPTS-got > time.Second {
		t.Fatalf("playback stopped at %v, the stream ends at %v", got, lastPTS)
	}
}

// TestBadHeader: a stream whose block 0 is not a header fails with a clear error.
func TestBadHeader(t *testing.T) {
	feed := memfeed.New()
	feed.Append(context.Background(), []byte("DZVHxxxxxxxxxxxxx"), true)
	p, _ := New(Config{Source: feed, Audio: newTap()})
	err := p.Run(context.Background())
	if !errors.Is(err, block.ErrUnsupportedVersion) && !errors.Is(err, block.ErrChecksum) {
		t.Fatalf("err = %v", err)
	}
	h := &block.Header{Video: &block.VideoParams{Codec: "H264", Width: 64, Height: 64, FrameRateNum: 30, FrameRateDen: 1}}
	hb, _ := h.MarshalBinary()
	feed = memfeed.New()
	feed.Append(context.Background(), hb, true)
	p, _ = New(Config{Source: feed, Audio: newTap()})
	if err := p.Run(context.Background()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("H264 stream: %v", err)
	}
}

// TestJitterBuffer drives the buffer with a fake clock.
func TestJitterBuffer(t *testing.T) {
	now := clock.NewMock()
	j := newJitterBuffer(1000, 1, 100*time.Millisecond, 300*time.Millisecond, true, now)
	chunk := func(pts time.Duration) {
		pcm := make([]float32, 20)
		for i := range pcm {
			pcm[i] = float32(pts/time.Millisecond) + float32(i)
		}
		j.push(pts, pcm, false)
	}
	out := make([]float32, 10)
	// Below target: silence, no clock.
	chunk(0)
	j.fill(out)
	if _, ok := j.clock(); ok || out[0] != 0 {
		t.Fatal("played before reaching the target")
	}
	for pts := 20 * time.Millisecond; pts < 100*time.Millisecond; pts += 20 * time.Millisecond {
		chunk(pts)
	}
	j.fill(out)
	if c, ok := j.clock(); !ok || c != 0 || out[0] != 0 || out[9] != 9 {
		t.Fatalf("first fill: clock %v %v, out %v", c, ok, out)
	}
	now.Add(5 * time.Millisecond)
	if c, _ := j.clock(); c != 5*time.Millisecond {
		t.Fatalf("clock mid-fill %v", c)
	}
	now.Add(50 * time.Millisecond)
	if c, _ := j.clock(); c != 10*time.Millisecond {
		t.Fatalf("clock must not run past what was handed out: %v", c)
	}
	// Overflow: 90 ms are buffered; 220 ms more pass the 300 ms bound, and the oldest
	// are dropped down to the 100 ms target.
	for pts := 100 * time.Millisecond; pts <= 300*time.Millisecond; pts += 20 * time.Millisecond {
		chunk(pts)
	}
	_, dropped, buffered := j.stats()
	if buffered != 100*time.Millisecond || dropped != 210*time.Millisecond {
		t.Fatalf("after overflow: buffered %v dropped %v", buffered, dropped)
	}
	j.fill(out)
	if c, _ := j.clock(); c != 220*time.Millisecond {
		t.Fatalf("after overflow the clock jumps to the kept sound: %v", c)
	}
	// Run dry: silence, one underrun, frozen clock.
	big := make([]float32, 200)
	j.fill(big)
	under, _, _ := j.stats()
	if under != 1 || big[199] != 0 || j.isPlaying() {
		t.Fatalf("underrun not handled: %d", under)
	}
	c1, _ := j.clock()
	now.Add(time.Second)
	if c2, _ := j.clock(); c2 != c1 {
		t.Fatalf("clock ran while dry: %v -> %v", c1, c2)
	}
}

// TestVideoOnlyStream plays a stream without sound on the wall clock: every picture is
// shown, in order, at its pace.
func TestVideoOnlyStream(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // goroutines running before the test are not its own
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	vd, _ := capture.TestDevice(capture.Camera)
	vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: 640, Height: 360, FrameRate: 15})
	if err != nil {
		t.Fatal(err)
	}
	p := &testpattern.Painter{Keep: true}
	vs.Reader = p.Wrap(vs.Reader)
	feed := memfeed.New()
	preset := broadcast.Low
	b, _ := broadcast.New(broadcast.Config{Preset: preset, Video: vs, Sink: feed})
	// 3 s, 45 pictures: one stall of a loaded machine (a few hundred ms) makes a handful late,
	// which over the 22 pictures of 1.5 s was a third of them (5 of 15 once, with race
	// builds beside the test).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if err := b.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	feed.Close()

	col := &collector{p: p}
	player, _ := New(Config{Source: feed, Frames: col, FromBlock: 1})
	start := time.Now()
	if err := player.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	frames := col.check()
	st := player.Stats()
	t.Logf("%d frames shown in %v; %+v", len(frames), took, st)
	// Every picture is shown, save the few a loaded machine makes late (counted).
	if st.FramesDecoded < 15 || int64(len(frames)) < st.FramesDecoded*3/4 || int64(len(frames))+st.FramesLate != st.FramesDecoded {
		t.Fatalf("%d of %d frames shown, %d late", len(frames), st.FramesDecoded, st.FramesLate)
	}
	for i, f := range frames {
		if !f.ok || f.psnr < 35 || (i > 0 && f.counter <= frames[i-1].counter) {
			t.Fatalf("frame %d: counter %d ok %v PSNR %.1f", i, f.counter, f.ok, f.psnr)
		}
	}
	span := frames[len(frames)-1].pts - frames[0].pts
	if took < span {
		t.Fatalf("%v of pictures played in %v: not paced", span, took)
	}
}

// TestJitterBufferCatchUp: while the reader is behind the live edge, sound beyond the
// target is dropped at once and playing waits; at the edge it starts.
func TestJitterBufferCatchUp(t *testing.T) {
	now := clock.NewMock()
	j := newJitterBuffer(1000, 1, 100*time.Millisecond, 300*time.Millisecond, true, now)
	for pts := time.Duration(0); pts < 250*time.Millisecond; pts += 10 * time.Millisecond {
		j.push(pts, make([]float32, 10), true)
	}
	if _, _, buffered := j.stats(); buffered != 100*time.Millisecond {
		t.Fatalf("catching up: %v buffered, want the 100 ms target", buffered)
	}
	j.fill(make([]float32, 10))
	if j.isPlaying() {
		t.Fatal("playing started while catching up")
	}
	j.push(250*time.Millisecond, make([]float32, 10), false)
	j.fill(make([]float32, 10))
	// The newest 100 ms were kept: playing starts at 150 ms.
	if c, ok := j.clock(); !j.isPlaying() || !ok || c != 150*time.Millisecond {
		t.Fatalf("at the live edge: playing %v, clock %v", j.isPlaying(), c)
	}

	// A reader that never reaches the edge (slower than real time): once the target has
	// waited max, playing starts from what is held.
	j = newJitterBuffer(1000, 1, 100*time.Millisecond, 300*time.Millisecond, true, now)
	for pts := time.Duration(0); pts < 150*time.Millisecond; pts += 10 * time.Millisecond {
		j.push(pts, make([]float32, 10), true)
	}
	j.fill(make([]float32, 10))
	now.Add(299 * time.Millisecond)
	j.fill(make([]float32, 10))
	if j.isPlaying() {
		t.Fatal("a behind reader's sound started before waiting max")
	}
	now.Add(time.Millisecond)
	j.fill(make([]float32, 10))
	if c, ok := j.clock(); !j.isPlaying() || !ok || c != 50*time.Millisecond {
		t.Fatalf("a reader behind for good: playing %v, clock %v", j.isPlaying(), c)
	}
}

// TestCatchUp: two live players join one broadcast, each with a throttled per-picture hook
// (a draw on the reader's goroutine that takes twice the picture's own duration, so each
// decodes at half real time, as a starved machine does). The one with catch-up turned off
// falls further behind every second; the default one jumps to the newest key frame held
// whenever it is more than DefaultCatchUp behind, so it stays near the live edge, and
// keeps showing pictures in order.
func TestCatchUp(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // goroutines running before the test are not its own
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	sc := &startClock{Clock: clock.New()}
	preset := broadcast.Medium
	preset.KeyFrameInterval = time.Second
	feed, _, stop := live(t, preset, sc)
	defer stop()
	time.Sleep(1500 * time.Millisecond)

	type arm struct {
		name   string
		player *Player
		mu     sync.Mutex
		lags   []time.Duration // capture clock - picture, as each is decoded
		shown  []time.Duration
		last   time.Duration
	}
	arms := []*arm{{name: "catch-up off"}, {name: "catch-up"}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for k, a := range arms {
		cfg := Config{Source: feed, Audio: newTap(),
			Frames: FrameSinkFunc(func(f *Frame) {
				a.mu.Lock()
				a.shown = append(a.shown, f.PTS)
				a.mu.Unlock()
				f.Release()
			}),
			OnDecoded: func(pts time.Duration, _ *image.RGBA) {
				a.mu.Lock()
				a.lags = append(a.lags, sc.capture()-pts)
				d := pts - a.last
				a.last = pts
				a.mu.Unlock()
				if d > 0 && d <= 100*time.Millisecond {
					// The throttle: half real time (not across a jump's gap).
					time.Sleep(2 * d)
				}
			}}
		if k == 0 {
			cfg.CatchUp = -1
		}
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		a.player = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(ctx); err != nil {
				t.Errorf("%s: %v", a.name, err)
			}
		}()
	}
	time.Sleep(8 * time.Second)
	cancel()
	wg.Wait()

	// The lag over the last 2 s of each run.
	tail := func(a *arm) time.Duration {
		a.mu.Lock()
		defer a.mu.Unlock()
		n := len(a.lags)
		if n < 8 {
			t.Fatalf("%s: only %d pictures decoded", a.name, n)
		}
		return median(a.lags[n*3/4:])
	}
	off, on := tail(arms[0]), tail(arms[1])
	so, sn := arms[0].player.Stats(), arms[1].player.Stats()
	t.Logf("lag over the last quarter: catch-up off %v (%d jumps), on %v (%d jumps, %v skipped); stats on %+v", off, so.CatchUps, on, sn.CatchUps, sn.CatchUpSkipped, sn)
	if so.CatchUps != 0 {
		t.Fatalf("the player with catch-up off jumped %d times", so.CatchUps)
	}
	if sn.CatchUps == 0 || sn.CatchUpSkipped <= 0 {
		t.Fatalf("the player never jumped: %+v", sn)
	}
	// Off, the lag grows by half a second each second; on, it stays within the limit plus
	// a key-frame interval. Compared with each other, not with a time.
	if on*2 > off {
		t.Fatalf("catching up: lag %v, against %v without", on, off)
	}
	a := arms[1]
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.shown) < 10 {
		t.Fatalf("only %d pictures shown while catching up", len(a.shown))
	}
	for i := 1; i < len(a.shown); i++ {
		if a.shown[i] <= a.shown[i-1] {
			t.Fatalf("picture %d shown at %v after %v", i, a.shown[i], a.shown[i-1])
		}
	}
}

// watchSink is a collector whose window is hidden for the Watched calls in [from, to).
type watchSink struct {
	*collector
	calls, no atomic.Int64
	from, to  int64
}

func (w *watchSink) Watched() bool {
	n := w.calls.Add(1) - 1
	if n >= w.from && n < w.to {
		w.no.Add(1)
		return false
	}
	return true
}

// While the sink says nobody watches, pictures are not decoded; watched again, the first
// picture shown is the next one, whole (the kept pictures bring the decoder to it), unless the
// kept pictures passed their bound: then it waits for the next key frame. Every picture shown
// is checked against its source (counter and PSNR).
func TestUnwatchedPicturesAreNotDecoded(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	preset := broadcast.Low // 15 pictures a second
	preset.KeyFrameInterval = time.Second
	feed, painter, stop := live(t, preset, clock.New())
	time.Sleep(4 * time.Second)
	stop()

	play := func(t *testing.T, frames FrameSink, limit int) Stats {
		player, err := New(Config{Source: feed, Frames: frames, Audio: newTap(), FromBlock: 1})
		if err != nil {
			t.Fatal(err)
		}
		if limit > 0 {
			player.unwatchedCap = limit
		}
		if err := player.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return player.Stats()
	}
	checkShown := func(t *testing.T, c *collector) int64 {
		frames := c.check()
		for i, f := range frames {
			if !f.ok || f.psnr < 35 || (i > 0 && f.counter <= frames[i-1].counter) {
				t.Fatalf("picture %d shown: counter %d ok %v PSNR %.1f", i, f.counter, f.ok, f.psnr)
			}
		}
		return int64(len(frames))
	}
	base := &collector{p: painter}
	bst := play(t, base, 0)
	baseOut := checkShown(t, base) + bst.FramesLate
	if bst.FramesDecoded < 20 || bst.FramesUnwatched != 0 {
		t.Fatalf("watched throughout: %+v", bst)
	}
	// Where the key frames are, counted in pictures (a loaded machine captures fewer).
	var keys []int64
	var pics int64
	for i := uint64(1); i < feed.Len(); i++ {
		b, err := feed.Block(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		m, err := block.DecodeMedia(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range m.Units {
			if u.Track == block.Video {
				if u.Key {
					keys = append(keys, pics)
				}
				pics++
			}
		}
	}
	if len(keys) < 3 || keys[0] != 0 || keys[1] < 4 {
		t.Fatalf("key frames at pictures %v of %d", keys, pics)
	}
	// Watched throughout, every picture of the stream is shown or late, the last one too
	// (the stream ends on it when its sound has played out).
	if baseOut != pics || bst.FramesSkipped != 0 {
		t.Fatalf("watched throughout: %d of %d pictures shown or late: %+v", baseOut, pics, bst)
	}
	tests := []struct {
		name     string
		from, to int64
		limit    int
		// want: every picture shown or unwatched (none waited for a key frame), and fewer
		// pictures decoded than watching throughout (a key frame came while hidden).
		whole, saves bool
	}{
		{"hidden within a key-frame interval", 1, keys[1] - 1, 0, true, false},
		{"hidden across a key frame", 1, keys[1] + 2, 0, true, true},
		{"hidden from the first picture", 0, keys[1] + 2, 0, true, true},
		// One byte: nothing can be kept, so each hidden answer sends the player to the next
		// key frame (asked again there): pictures 1 and keys[1] unwatched, shown from keys[2].
		{"kept pictures over their bound", 1, 3, 1, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each plays in real time
			w := &watchSink{collector: &collector{p: painter}, from: tc.from, to: tc.to}
			st := play(t, w, tc.limit)
			out := checkShown(t, w.collector) + st.FramesLate
			t.Logf("%+v; shown or late %d of %d", st, out, baseOut)
			if st.FramesUnwatched != w.no.Load() || st.FramesUnwatched == 0 {
				t.Fatalf("%d pictures unwatched; the sink said no %d times", st.FramesUnwatched, w.no.Load())
			}
			if out < 2 {
				t.Fatalf("%d pictures shown: the picture did not come back", out)
			}
			if whole := out+st.FramesUnwatched == baseOut && st.FramesSkipped == bst.FramesSkipped; whole != tc.whole {
				t.Fatalf("every picture shown or unwatched: %v, want %v (%d + %d of %d; skipped %d, watched throughout %d)",
					whole, tc.whole, out, st.FramesUnwatched, baseOut, st.FramesSkipped, bst.FramesSkipped)
			}
			if saves := st.FramesDecoded < bst.FramesDecoded; saves != tc.saves {
				t.Fatalf("decoded %d pictures, %d watched throughout", st.FramesDecoded, bst.FramesDecoded)
			}
		})
	}
}

// leadSink reports a display latency and records how long before its due time each
// picture was handed to it.
type leadSink struct {
	lat   time.Duration
	mu    sync.Mutex
	early []time.Duration
}

func (s *leadSink) DisplayLatency() time.Duration { return s.lat }

func (s *leadSink) ShowFrame(f *Frame) {
	defer f.Release()
	s.mu.Lock()
	s.early = append(s.early, time.Until(f.Due))
	s.mu.Unlock()
}

// TestDisplayLatencyHandsEarly: a sink that takes time to put a picture on screen gets each
// picture that much before it is due (bounded), and a sink that says nothing gets it when
// due. The bound below allows for a loaded machine's late timers; handing over early is
// never more than the lead.
func TestDisplayLatencyHandsEarly(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	vd, _ := capture.TestDevice(capture.Camera)
	vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: 320, Height: 240, FrameRate: 15})
	if err != nil {
		t.Fatal(err)
	}
	feed := memfeed.New()
	b, _ := broadcast.New(broadcast.Config{Preset: broadcast.Low, Video: vs, Sink: feed})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	if err := b.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	feed.Close()

	const slack = 25 * time.Millisecond // a loaded machine's timer lateness, at the median
	for _, tc := range []struct {
		name      string
		sinkSays  time.Duration
		wantEarly time.Duration
	}{
		{"no latency", 0, 0},
		{"40 ms to the screen", 40 * time.Millisecond, 40 * time.Millisecond},
		{"beyond the bound", time.Second, maxDisplayLead},
		{"negative", -time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &leadSink{lat: tc.sinkSays}
			player, _ := New(Config{Source: feed, Frames: sink, FromBlock: 1})
			if err := player.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			sink.mu.Lock()
			early := sink.early
			sink.mu.Unlock()
			if len(early) < 10 {
				t.Fatalf("%d pictures shown", len(early))
			}
			m := median(early)
			t.Logf("%d pictures, handed %v before due (median)", len(early), m)
			if m > tc.wantEarly+time.Millisecond || m < tc.wantEarly-slack {
				t.Fatalf("pictures handed %v before due (median), want %v (at most %v less)", m, tc.wantEarly, slack)
			}
		})
	}
}
