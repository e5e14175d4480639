package playback

import (
	"context"
	"image"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
	"github.com/dazaarvision/dazaar-vision/media/opus"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/filecoin-project/go-clock"
)

// silentOpus is a TOC-only Opus packet (CELT, fullband, 20 ms, mono, one empty frame): it
// decodes to 20 ms of sound without an encoder.
var silentOpus = []byte{0xF8}

// synthStream describes a stream made without the capture drivers: frames pictures at 30 a
// second of frameW×frameH under a header that declares headerW×headerH, and, when sound is
// set, 20 ms Opus packets in the blocks of the pictures for which sound(i) is true (framed
// with the picture they come before, in time order, or soundLag later).
type synthStream struct {
	headerW, headerH int
	frameW, frameH   int
	frames           int
	sound            func(i int) bool
	soundLag         time.Duration
}

func (s synthStream) feed(t *testing.T) *memfeed.Feed {
	t.Helper()
	if s.sound != nil {
		d, err := opus.NewDecoder(48000, 1)
		if err != nil {
			t.Fatal(err)
		}
		n, err := d.Decode(silentOpus, make([]float32, d.MaxSamples()))
		d.Close()
		if err != nil || n != 960 {
			t.Fatalf("the TOC-only Opus packet decodes to %d samples: %v", n, err)
		}
	}
	enc, err := vp8.NewEncoder(vp8.Config{Width: s.frameW, Height: s.frameH, FrameRateNum: 30, FrameRateDen: 1, BitRate: 200_000, KeyFrameInterval: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	h := &block.Header{Start: time.Now(), Preset: "test", Video: &block.VideoParams{Codec: block.CodecVP8,
		Width: s.headerW, Height: s.headerH, FrameRateNum: 30, FrameRateDen: 1, BitRate: 200_000, KeyFrameInterval: 60}}
	if s.sound != nil {
		h.Audio = &block.AudioParams{Codec: block.CodecOpus, SampleRate: 48000, Channels: 1, FrameDuration: 20 * time.Millisecond, BitRate: 24_000}
	}
	hb, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	feed := memfeed.New()
	feed.Append(context.Background(), hb, true)
	img := image.NewYCbCr(image.Rect(0, 0, s.frameW, s.frameH), image.YCbCrSubsampleRatio420)
	var apts time.Duration
	for i := 0; i < s.frames; i++ {
		vpts := time.Duration(i) * time.Second / 30
		img.Y[(i*7)%len(img.Y)] ^= 0xff // every picture differs
		fr, err := enc.EncodeAt(img, vpts)
		if err != nil || len(fr.Data) == 0 {
			t.Fatalf("encoding picture %d: %v", i, err)
		}
		var units []block.Unit
		upTo := vpts + time.Second/30 - s.soundLag
		if i == s.frames-1 {
			upTo = vpts + time.Second/30
		}
		for ; s.sound != nil && apts < upTo; apts += 20 * time.Millisecond {
			if s.sound(i) {
				units = append(units, block.Unit{Track: block.Audio, PTS: apts, Duration: 20 * time.Millisecond, Payload: silentOpus})
			}
		}
		units = append(units, block.Unit{Track: block.Video, Key: fr.Key, PTS: vpts, Duration: time.Second / 30, Payload: fr.Data})
		b, err := (&block.Media{Seq: uint64(i + 1), Units: units}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		feed.Append(context.Background(), b, fr.Key)
	}
	feed.Close()
	return feed
}

// TestVideoQueueRemove: remove takes a frame only while it is the oldest; one the reader
// dropped meanwhile is not taken again, nor is another frame taken in its place.
func TestVideoQueueRemove(t *testing.T) {
	for _, tc := range []struct {
		name string
		// meanwhile runs between the look (next) and remove; want is whether remove takes
		// the frame looked at, left how many frames stay queued.
		meanwhile func(q *videoQueue)
		want      bool
		left      int
	}{
		{"nothing", func(q *videoQueue) {}, true, 1},
		{"a push with room", func(q *videoQueue) { q.push(&Frame{PTS: 9}) }, true, 2},
		{"a push onto the full queue", func(q *videoQueue) { q.push(&Frame{PTS: 9}); q.push(&Frame{PTS: 10}) }, false, 3},
		{"a drain", func(q *videoQueue) { q.drain() }, false, 0},
		{"a drain and a push", func(q *videoQueue) { q.drain(); q.push(&Frame{PTS: 9}) }, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newVideoQueue(3)
			q.push(&Frame{PTS: 1})
			q.push(&Frame{PTS: 2})
			f, second, _ := q.next()
			if f == nil || f.PTS != 1 || second == nil || second.PTS != 2 {
				t.Fatalf("next gives %v, %v", f, second)
			}
			tc.meanwhile(q)
			if got := q.remove(f); got != tc.want {
				t.Fatalf("remove = %v, want %v", got, tc.want)
			}
			if n := q.len(); n != tc.left {
				t.Fatalf("%d frames left, want %d", n, tc.left)
			}
			if g := q.peek(); g == f {
				t.Fatal("the frame looked at is still queued")
			}
		})
	}
}

// TestPresenterKeepsOnlyFramesItTook: the presenter looks at the oldest frame, then takes it
// off the queue; in between the reader may drain the queue (a catch-up jump) or push onto a
// full one (which drops and releases the oldest). The presenter must then neither show a
// frame that was released (its picture is being reused) nor take another frame in its place
// (nor nothing: that was a nil dereference). Every frame here is due at once; the sink keeps
// what it is shown (never releases it), so a frame both shown and released is the race.
func TestPresenterKeepsOnlyFramesItTook(t *testing.T) {
	for _, tc := range []struct {
		name  string
		queue int
		// step pushes frames made by mk onto q the way the reader does.
		step func(q *videoQueue, mk func() *Frame)
	}{
		{"catch-up drain", frameQueue, func(q *videoQueue, mk func() *Frame) {
			q.push(mk())
			q.push(mk())
			q.drain()
		}},
		{"push onto a full queue", 1, func(q *videoQueue, mk func() *Frame) {
			q.push(mk())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{Source: memfeed.New()})
			if err != nil {
				t.Fatal(err)
			}
			p.vq = newVideoQueue(tc.queue)
			var mu sync.Mutex
			var shown, released []bool // by frame number (the picture's first pixel bytes)
			mark := func(s *[]bool, img *image.RGBA) {
				id := int(img.Pix[0]) | int(img.Pix[1])<<8 | int(img.Pix[2])<<16
				mu.Lock()
				for len(*s) <= id {
					*s = append(*s, false)
				}
				(*s)[id] = true
				mu.Unlock()
			}
			// The sink's DisplayLatency, asked between looking at a frame and taking it,
			// yields: the reader gets in there more often.
			p.cfg.Frames = yieldingSink(func(f *Frame) { mark(&shown, f.Image) })
			w := newWallClock(0, time.Second, false, p.cfg.Clock)
			w.seen(time.Hour) // the clock starts an hour in: every frame is due
			p.wall.Store(w)

			pool := newFramePool(1, 1, 1024) // Release puts pictures here
			collect := func() {
				for {
					select {
					case img := <-pool.free:
						mark(&released, img)
					default:
						return
					}
				}
			}
			n := 0
			mk := func() *Frame {
				img := image.NewRGBA(image.Rect(0, 0, 1, 1))
				img.Pix[0], img.Pix[1], img.Pix[2] = uint8(n), uint8(n>>8), uint8(n>>16)
				n++
				return &Frame{Image: img, PTS: time.Duration(n), pool: pool}
			}

			ctx, cancel := context.WithCancel(context.Background())
			panicked := make(chan any, 1)
			go func() {
				defer func() { panicked <- recover() }()
				p.present(ctx)
			}()
			// Long enough for the unfixed presenter to fail every time (it did within 100 ms);
			// the frame numbers fit the picture's three bytes.
			for start := time.Now(); time.Since(start) < 1500*time.Millisecond && n < 1<<23; {
				tc.step(p.vq, mk)
				collect()
			}
			cancel()
			r := <-panicked
			p.vq.drain()
			collect()
			if r != nil {
				t.Fatalf("the presenter panicked: %v", r)
			}
			both, nShown := 0, 0
			for id, s := range shown {
				if s {
					nShown++
				}
				if s && id < len(released) && released[id] {
					both++
				}
			}
			t.Logf("%d frames pushed, %d shown, %d late", n, nShown, p.late.Load())
			if both > 0 {
				t.Fatalf("%d frames were shown and also released by the queue", both)
			}
			if nShown == 0 {
				t.Fatal("no frame was shown")
			}
		})
	}
}

// yieldingSink is a FrameSink whose DisplayLatency (0) yields the processor first.
type yieldingSink func(f *Frame)

func (s yieldingSink) ShowFrame(f *Frame) { s(f) }

func (yieldingSink) DisplayLatency() time.Duration {
	runtime.Gosched()
	return 0
}

// TestReplayThroughStretchWithoutSound: a replay whose broadcaster lost the sound for a
// while (the audio timeline jumps) plays through that stretch at its pace, pictures on
// time, instead of freezing once the jitter buffer runs dry with the picture queue full.
func TestReplayThroughStretchWithoutSound(t *testing.T) {
	const frames = 120 // 4 s
	const none, some, any = 0, 1, 2
	for _, tc := range []struct {
		name   string
		silent [2]int        // pictures [from, to) have no sound
		lag    time.Duration // sound framed this much after its pictures
		// gapFill: whether silence stood in for missing sound (any: silence put in while
		// the sound lagging in the blocks was not read yet, which it replaces unless played).
		gapFill int
	}{
		{"sound throughout", [2]int{0, 0}, 0, none},
		{"0.8 s without sound", [2]int{30, 54}, 0, some},
		{"1.33 s without sound", [2]int{30, 70}, 0, some},
		{"sound starts after 1 s", [2]int{0, 30}, 0, some},
		{"sound ends 1 s early", [2]int{90, frames}, 0, some},
		// The picture queue fills with less than the jitter target of sound read.
		{"sound framed 0.55 s after its pictures", [2]int{0, 0}, 550 * time.Millisecond, any},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each plays in real time
			feed := synthStream{headerW: 64, headerH: 64, frameW: 64, frameH: 64, frames: frames, soundLag: tc.lag,
				sound: func(i int) bool { return i < tc.silent[0] || i >= tc.silent[1] }}.feed(t)
			var mu sync.Mutex
			var pts, skew []time.Duration
			var p *Player
			sink := FrameSinkFunc(func(f *Frame) {
				defer f.Release()
				c, _ := p.clock()
				mu.Lock()
				pts = append(pts, f.PTS)
				skew = append(skew, (c - f.PTS).Abs())
				mu.Unlock()
			})
			p, err := New(Config{Source: feed, Frames: sink, Audio: audioout.NewSilent(), FromBlock: 1})
			if err != nil {
				t.Fatal(err)
			}
			// Generous: the stream is 4 s; a freeze never ends.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			err = p.Run(ctx)
			took := time.Since(start)
			st := p.Stats()
			t.Logf("%v, %v; %+v", err, took, st)
			if err != nil || ctx.Err() != nil {
				t.Fatalf("the replay did not finish: %v; reached block %d with the clock at %v", err, st.StartBlock+uint64(st.BlocksRead), st.Clock)
			}
			mu.Lock()
			defer mu.Unlock()
			if st.FramesDecoded != frames || int64(len(pts))+st.FramesLate != frames || len(pts) < frames*3/4 {
				t.Fatalf("%d of %d pictures decoded, %d shown, %d late", st.FramesDecoded, frames, len(pts), st.FramesLate)
			}
			for i := 1; i < len(pts); i++ {
				if pts[i] <= pts[i-1] {
					t.Fatalf("picture %v shown after %v", pts[i], pts[i-1])
				}
			}
			if span := pts[len(pts)-1] - pts[0]; took < span {
				t.Fatalf("%v of pictures played in %v: not paced", span, took)
			}
			if m := median(skew); m > 100*time.Millisecond {
				t.Fatalf("pictures shown %v off the clock (median)", m)
			}
			if filled := st.AudioGapFilled > 0; tc.gapFill != any && filled != (tc.gapFill == some) {
				t.Fatalf("silence played for missing sound: %v", st.AudioGapFilled)
			}
		})
	}
}

// TestPictureMemoryFollowsTheDecodedSize: the stream header's picture size is the seller's
// word; the pictures' memory is sized by what is decoded, so that a header that does not match
// the pictures cannot make every picture allocate (an 8192×8192 header made each 64×64 picture
// allocate 256 MiB). A header is not refused for its size: a stream whose pictures the decoder
// cannot show (a screen wider than 4096) still plays its sound.
func TestPictureMemoryFollowsTheDecodedSize(t *testing.T) {
	for _, tc := range []struct {
		name             string
		headerW, headerH int
		frames           int
	}{
		{"header as the pictures", 64, 64, 45},
		{"header beyond the decoder", 8192, 8192, 45},
		{"header at the decoder's limit", vp8.MaxWidth, vp8.MaxHeight, 45},
		{"header smaller than the pictures", 32, 32, 45},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed := synthStream{headerW: tc.headerW, headerH: tc.headerH, frameW: 64, frameH: 64, frames: tc.frames}.feed(t)
			var mu sync.Mutex
			pictures := map[*image.RGBA]bool{}
			shown := 0
			sink := FrameSinkFunc(func(f *Frame) {
				mu.Lock()
				pictures[f.Image] = true
				shown++
				mu.Unlock()
				f.Release()
			})
			p, err := New(Config{Source: feed, Frames: sink, FromBlock: 1})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err = p.Run(context.Background())
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			st := p.Stats()
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%v; %d KiB allocated; %d pictures shown in %d images; %+v", err, alloc>>10, shown, len(pictures), st)
			if alloc > 64<<20 {
				t.Fatalf("%d MiB allocated for %d pictures of 64×64", alloc>>20, tc.frames)
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.FramesDecoded != int64(tc.frames) || shown == 0 {
				t.Fatalf("%d of %d pictures decoded, %d shown", st.FramesDecoded, tc.frames, shown)
			}
			// At most the queue, the picture being decoded and the one being shown are held at
			// once: the pool reuses the rest.
			if len(pictures) > frameQueue+2 {
				t.Fatalf("%d pictures shown in %d different images: the pool does not reuse them", shown, len(pictures))
			}
		})
	}
}

// TestJitterBufferGap drives a replay's jitter buffer (1 kHz, mono, target 100 ms, max 300
// ms) through silence put in for missing sound: the sound that comes back after it, sound
// that comes for part of it (replacing what is not played, cut where it was), and when none
// is put in.
func TestJitterBufferGap(t *testing.T) {
	ms := time.Millisecond
	sound := func(n int) []float32 { // non-zero: told apart from the silence put in
		pcm := make([]float32, n)
		for i := range pcm {
			pcm[i] = float32(i + 1)
		}
		return pcm
	}
	// playing: 100 ms of sound at 0, all handed to the output; the clock is at 100 ms.
	playing := func() *jitterBuffer {
		j := newJitterBuffer(1000, 1, 100*ms, 300*ms, false, clock.NewMock())
		j.push(0, sound(100), false)
		j.fill(make([]float32, 100))
		return j
	}
	for _, tc := range []struct {
		name string
		run  func(j *jitterBuffer) *jitterBuffer
		// want: silence kept, sound dropped, buffered, the clock after a 10 ms pull, and the
		// first non-zero sample of the next 300 ms (-1: none).
		filled, dropped, buffered, clock time.Duration
		soundAt                          int
	}{
		{"silence to the picture", func(j *jitterBuffer) *jitterBuffer {
			if d := j.fillGap(0, 250*ms, true); d != 150*ms {
				t.Fatalf("fillGap put in %v, want 150ms", d)
			}
			return j
		}, 150 * ms, 0, 150 * ms, 100 * ms, -1},
		{"the sound comes back after it", func(j *jitterBuffer) *jitterBuffer {
			j.fillGap(0, 250*ms, true)
			j.push(300*ms, sound(20), false) // the silence reaches it
			return j
		}, 200 * ms, 0, 220 * ms, 100 * ms, 200 - 10},
		{"sound for part of it replaces what is not played", func(j *jitterBuffer) *jitterBuffer {
			j.fillGap(0, 250*ms, true)
			j.push(200*ms, sound(20), false)
			return j
		}, 100 * ms, 0, 120 * ms, 100 * ms, 100 - 10},
		{"sound for a part played is cut", func(j *jitterBuffer) *jitterBuffer {
			j.fillGap(0, 250*ms, true)
			j.fill(make([]float32, 120)) // silence played up to 220 ms
			j.push(200*ms, sound(40), false)
			return j
		}, 120 * ms, 20 * ms, 20 * ms, 220 * ms, 0},
		{"none while the target is buffered", func(j *jitterBuffer) *jitterBuffer {
			j.push(100*ms, sound(150), false)
			if d := j.fillGap(0, 400*ms, true); d != 0 {
				t.Fatalf("fillGap put in %v", d)
			}
			return j
		}, 0, 0, 150 * ms, 100 * ms, 0},
		{"within max", func(j *jitterBuffer) *jitterBuffer {
			j.fillGap(0, 10*time.Second, true)
			return j
		}, 300 * ms, 0, 300 * ms, 100 * ms, -1},
		{"sound reaching the pictures: only to start, and only when it must", func(*jitterBuffer) *jitterBuffer {
			j := newJitterBuffer(1000, 1, 100*ms, 300*ms, false, clock.NewMock())
			j.push(0, sound(50), false) // below the target: not playing
			if d := j.fillGap(0, 40*ms, false); d != 0 {
				t.Fatalf("fillGap put in %v without having to", d)
			}
			if d := j.fillGap(0, 40*ms, true); d != 50*ms {
				t.Fatalf("fillGap put in %v to start playing, want 50ms", d)
			}
			return j
		}, 50 * ms, 0, 100 * ms, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.run(playing())
			_, dropped, buffered := j.stats()
			if f := j.filled(); f != tc.filled || dropped != tc.dropped || buffered != tc.buffered {
				t.Fatalf("silence kept %v, dropped %v, buffered %v; want %v, %v, %v", f, dropped, buffered, tc.filled, tc.dropped, tc.buffered)
			}
			j.fill(make([]float32, 10))
			if c, ok := j.clock(); !ok || c != tc.clock {
				t.Fatalf("clock %v %v, want %v", c, ok, tc.clock)
			}
			out := make([]float32, 300)
			j.fill(out)
			at := -1
			for i, v := range out {
				if v != 0 {
					at = i
					break
				}
			}
			if at != tc.soundAt {
				t.Fatalf("sound starts at sample %d of the pull, want %d", at, tc.soundAt)
			}
		})
	}
}
