package broadcast

import (
	"context"
	"image"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
	"github.com/dazaarvision/dazaar-vision/media/opus"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/pion/mediadevices/pkg/wave"

	"go.uber.org/goleak"
)

// minPSNR: see media/vp8's test for the reasoning; here the picture is mediadevices'
// videotest pattern, compared above its noise strip (random black and white pixels, new
// every frame, that no lossy codec at these rates reproduces).
const minPSNR = 35

func openTestSources(t *testing.T, preset Preset) (*capture.VideoSource, *capture.AudioSource) {
	t.Helper()
	vd, err := capture.TestDevice(capture.Camera)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := capture.TestDevice(capture.Microphone)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: preset.Width, Height: preset.Height, FrameRate: float64(preset.FrameRate)})
	if err != nil {
		t.Fatal(err)
	}
	as, err := capture.OpenAudio(ad, capture.AudioWant{SampleRate: 48000, Channels: 1})
	if err != nil {
		vs.Close()
		t.Fatal(err)
	}
	return vs, as
}

type decoded struct {
	header *block.Header
	media  []*block.Media
	sync   []bool
}

func decodeFeed(t *testing.T, f *memfeed.Feed) decoded {
	t.Helper()
	var d decoded
	n := f.Len()
	if n < 2 {
		t.Fatalf("only %d blocks", n)
	}
	b0, _ := f.Block(context.Background(), 0)
	h, err := block.DecodeHeader(b0)
	if err != nil {
		t.Fatalf("block 0: %v", err)
	}
	if !f.IsSync(0) {
		t.Fatal("header not flagged as a sync point")
	}
	d.header = h
	for i := uint64(1); i < n; i++ {
		b, _ := f.Block(context.Background(), i)
		m, err := block.DecodeMedia(b)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if m.Seq != i {
			t.Fatalf("block %d has sequence number %d", i, m.Seq)
		}
		d.media = append(d.media, m)
		d.sync = append(d.sync, f.IsSync(i))
	}
	return d
}

func run(t *testing.T, cfg Config, d time.Duration, during func(b *Broadcaster)) *Broadcaster {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if during != nil {
		during(b)
	}
	time.Sleep(d)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	return b
}

// TestTestDriversToDecodedFrames runs the whole broadcaster pipeline from mediadevices'
// test drivers to blocks, then decodes the blocks: pictures match their sources, the tone
// survives, key frames come at the interval and on demand, blocks are flagged correctly,
// and both tracks are stamped from the one clock.
func TestTestDriversToDecodedFrames(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // goroutines running before the test are not its own
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	preset := Medium
	preset.KeyFrameInterval = 500 * time.Millisecond // 15 frames
	vs, as := openTestSources(t, preset)
	p := &testpattern.Painter{Keep: true}
	vs.Reader = p.Wrap(vs.Reader)
	feed := memfeed.New()
	start := time.Now()
	// Run until the stream holds 45 pictures and 1.2 s of sound, however slowly a busy
	// machine delivers them (at most a minute).
	run(t, Config{Preset: preset, Video: vs, Audio: as, Sink: feed, Description: "test"}, 0, func(b *Broadcaster) {
		go func() {
			for b.Stats().VideoFrames < 8 {
				time.Sleep(5 * time.Millisecond)
			}
			b.ForceKeyFrame()
		}()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if st := b.Stats(); st.VideoFrames >= 45 && st.AudioPackets >= 60 {
				break
			}
		}
	})
	elapsed := time.Since(start)
	d := decodeFeed(t, feed)
	h := d.header
	if h.Video == nil || h.Video.Width != 640 || h.Video.Height != 480 || h.Video.FrameRateNum != 30 || h.Video.Codec != block.CodecVP8 {
		t.Fatalf("video header %+v", h.Video)
	}
	if h.Audio == nil || h.Audio.SampleRate != 48000 || h.Audio.Codec != block.CodecOpus || h.Preset != "medium" || h.Description != "test" {
		t.Fatalf("header %+v audio %+v", h, h.Audio)
	}
	if time.Since(h.Start) > time.Minute {
		t.Fatalf("start time %v", h.Start)
	}

	vdec, _ := vp8.NewDecoder()
	defer vdec.Close()
	adec, _ := opus.NewDecoder(48000, 1)
	defer adec.Close()
	pcmBuf := make([]float32, adec.MaxSamples())
	var pcm []float32
	var vpts, apts []time.Duration
	var keyPTS []time.Duration
	var keyIdx []int
	frames, checked := 0, 0
	compare := image.Rect(0, 0, 640, 480*3/4) // above videotest's noise strip
	for i, m := range d.media {
		firstVideo := true
		for _, u := range m.Units {
			switch u.Track {
			case block.Video:
				if firstVideo {
					if d.sync[i] != u.Key {
						t.Fatalf("block %d: sync flag %v, first video unit key %v", i+1, d.sync[i], u.Key)
					}
					firstVideo = false
				} else if u.Key {
					t.Fatalf("block %d: key frame not first in its block", i+1)
				}
				if u.Key {
					keyPTS = append(keyPTS, u.PTS)
					keyIdx = append(keyIdx, len(vpts))
				}
				vpts = append(vpts, u.PTS)
				img, err := vdec.Decode(u.Payload)
				if err != nil {
					t.Fatalf("block %d: %v", i+1, err)
				}
				frames++
				n, ok := testpattern.ReadCounter(img)
				if !ok {
					t.Fatalf("block %d: counter unreadable", i+1)
				}
				src := p.Source(n)
				if src == nil {
					t.Fatalf("no source picture %d", n)
				}
				psnr := testpattern.PSNR(img, src, compare)
				if psnr < minPSNR {
					t.Fatalf("frame %d: PSNR %.1f dB < %d", n, psnr, minPSNR)
				}
				if frames == 40 {
					shifted := testpattern.PSNR(img, testpattern.Shift(src, 4), compare)
					other := p.Source(n - 10)
					otherPSNR := testpattern.PSNR(img, other, compare)
					t.Logf("frame %d: %.1f dB; shifted by 4 px %.1f dB; frame %d %.1f dB", n, psnr, shifted, n-10, otherPSNR)
					if shifted >= minPSNR || otherPSNR >= minPSNR {
						t.Fatal("the PSNR check does not tell a wrong picture")
					}
				}
				checked++
			case block.Audio:
				apts = append(apts, u.PTS)
				k, err := adec.Decode(u.Payload, pcmBuf)
				if err != nil {
					t.Fatalf("block %d: %v", i+1, err)
				}
				pcm = append(pcm, pcmBuf[:k]...)
			}
		}
		if firstVideo && d.sync[i] {
			t.Fatalf("audio-only block %d flagged as a sync point in a video stream", i+1)
		}
	}
	t.Logf("%d blocks, %d frames, %d key frames at %v, %d audio packets, in %v", len(d.media), frames, len(keyPTS), keyPTS, len(apts), elapsed)
	if frames < 15 || len(apts) < 50 {
		t.Fatalf("too little media: %d frames, %d audio packets", frames, len(apts))
	}
	if keyPTS[0] != vpts[0] {
		t.Fatal("stream does not start with a key frame")
	}
	// Key frames: at most 15 frames apart, and one forced a few frames in (the frame
	// counts, not times: the shared machine may slow the frame rate down).
	forced := false
	for i, k := range keyIdx {
		if i > 0 && k-keyIdx[i-1] > 15 {
			t.Fatalf("key frames at frames %v: more than 15 apart", keyIdx)
		}
		if k >= 8 && k < 15 {
			forced = true
		}
	}
	wantKeys := 2 // the first and the forced one
	if frames > 35 {
		wantKeys = 3 // and at least one at the interval after it
	}
	if len(keyIdx) < wantKeys || !forced {
		t.Fatalf("key frames at frames %v: want the interval's and one forced after frame 8", keyIdx)
	}
	for _, ts := range [][]time.Duration{vpts, apts} {
		if !sort.SliceIsSorted(ts, func(i, j int) bool { return ts[i] < ts[j] }) {
			t.Fatal("timestamps go backwards")
		}
		if ts[len(ts)-1] > elapsed {
			t.Fatalf("timestamp %v after the run's end (%v)", ts[len(ts)-1], elapsed)
		}
	}
	// One clock: the tracks start and end together (within 250 ms, which leaves room for
	// a loaded machine's slow frames; separate clocks would be seconds apart).
	if d := vpts[0] - apts[0]; d > 250*time.Millisecond || d < -250*time.Millisecond {
		t.Fatalf("first video %v, first audio %v", vpts[0], apts[0])
	}
	if d := vpts[len(vpts)-1] - apts[len(apts)-1]; d > 250*time.Millisecond || d < -250*time.Millisecond {
		t.Fatalf("last video %v, last audio %v", vpts[len(vpts)-1], apts[len(apts)-1])
	}
	// The tone: mediadevices' audiotest plays 480 Hz.
	if f := testpattern.Frequency(pcm[4800:], 48000); math.Abs(f-480) > 2 {
		t.Fatalf("tone decoded at %.2f Hz, want 480", f)
	}
}

// TestPresetsDiffer runs each preset briefly and checks that the streams really differ
// in size, rate and bit rate.
func TestPresetsDiffer(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // goroutines running before the test are not its own
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	type result struct {
		w, h, fps, br int
		medianStep    time.Duration
	}
	var got []result
	for _, preset := range Presets() {
		vs, as := openTestSources(t, preset)
		feed := memfeed.New()
		run(t, Config{Preset: preset, Video: vs, Audio: as, Sink: feed}, 1200*time.Millisecond, nil)
		d := decodeFeed(t, feed)
		dec, _ := vp8.NewDecoder()
		var pts []time.Duration
		for _, m := range d.media {
			for _, u := range m.Units {
				if u.Track != block.Video {
					continue
				}
				img, err := dec.Decode(u.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if img.Rect.Dx() != preset.Width || img.Rect.Dy() != preset.Height {
					t.Fatalf("%s: decoded %v", preset.Name, img.Rect)
				}
				pts = append(pts, u.PTS)
			}
		}
		dec.Close()
		steps := make([]time.Duration, 0, len(pts))
		for i := 1; i < len(pts); i++ {
			steps = append(steps, pts[i]-pts[i-1])
		}
		sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
		v := d.header.Video
		r := result{v.Width, v.Height, v.FrameRateNum, v.BitRate, steps[len(steps)/2]}
		t.Logf("%s: %dx%d@%d, %d bit/s, median frame step %v, %d frames", preset.Name, r.w, r.h, r.fps, r.br, r.medianStep, len(pts))
		// The machine is shared: frames may come slower than the preset's rate, never
		// faster.
		want := time.Second / time.Duration(preset.FrameRate)
		if r.medianStep < want*3/4 {
			t.Fatalf("%s: median frame step %v, want at least %v", preset.Name, r.medianStep, want)
		}
		got = append(got, r)
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.w*a.h > b.w*b.h || a.fps > b.fps || a.br >= b.br || (a.w*a.h == b.w*b.h && a.fps == b.fps) {
			t.Fatalf("presets %d and %d do not differ upward: %+v %+v", i-1, i, a, b)
		}
	}
}

// fakeAudio returns chunks of n samples whose capture times follow a device clock
// running at rate ratio to the capture clock.
func TestAudioStamperFollowsCaptureClock(t *testing.T) {
	for _, ratio := range []float64{1.0, 1.02, 0.97} {
		var now time.Duration
		const n = 480 // 10 ms chunks
		chunks := 0
		r := audioReaderFunc(func() (wave.Audio, func(), error) {
			chunks++
			// The device delivers 10 ms of its own samples every 10 ms × ratio of capture
			// time, with ±2 ms of scheduling jitter.
			now = time.Duration(float64(chunks)*float64(10*time.Millisecond)*ratio) + time.Duration((chunks%5)-2)*time.Millisecond
			return wave.NewFloat32Interleaved(wave.ChunkInfo{Len: n, Channels: 1, SamplingRate: 48000}), func() {}, nil
		})
		s := newAudioStamper(r, func() time.Duration { return now }, 48000, nil)
		var worst time.Duration
		for i := 0; i < 3000; i++ { // 30 s
			s.Read()
			if i > 500 {
				// The chunk just read started at (i)*10ms*ratio on the capture clock.
				want := time.Duration(float64(i) * float64(10*time.Millisecond) * ratio)
				e := s.PTS(int64(i)*n) - want
				if e < 0 {
					e = -e
				}
				worst = max(worst, e)
			}
		}
		if worst > 15*time.Millisecond {
			t.Fatalf("device clock ratio %.2f: audio stamps off the capture clock by up to %v", ratio, worst)
		}
	}
}

// TestAudioStamperLateFirstChunk: a first chunk handed over late (a busy machine starting
// up) anchors the map late; the first window's error is that delay, not the device's rate,
// so it moves the map and leaves the rate (and the pitch of the resampled sound) alone.
func TestAudioStamperLateFirstChunk(t *testing.T) {
	for _, late := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond} {
		var now time.Duration
		const n = 480 // 10 ms chunks of a device on the capture clock
		chunks := 0
		r := audioReaderFunc(func() (wave.Audio, func(), error) {
			chunks++
			now = time.Duration(chunks) * 10 * time.Millisecond
			if chunks == 1 {
				now += late
			}
			return wave.NewFloat32Interleaved(wave.ChunkInfo{Len: n, Channels: 1, SamplingRate: 48000}), func() {}, nil
		})
		s := newAudioStamper(r, func() time.Duration { return now }, 48000, nil)
		worst := 0.0
		for i := 0; i < 300; i++ { // 3 s
			s.Read()
			worst = max(worst, math.Abs(s.Scale()-1))
		}
		if worst > 0.001 {
			t.Errorf("first chunk %v late: the rate went %.2f %% off for a device on the capture clock", late, 100*worst)
		}
		if e := s.PTS(300*n) - 3000*time.Millisecond; e.Abs() > 2*time.Millisecond {
			t.Errorf("first chunk %v late: the map is %v off after 3 s", late, e)
		}
	}
}

type audioReaderFunc func() (wave.Audio, func(), error)

func (f audioReaderFunc) Read() (wave.Audio, func(), error) { return f() }

// TestGroupedBlocks: with GroupDuration set, a block carries several frames, a key frame
// still opens its block, and video-only streams work.
func TestGroupedBlocks(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // goroutines running before the test are not its own
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	preset := Low
	preset.KeyFrameInterval = time.Second
	vs, as := openTestSources(t, preset)
	as.Close()
	feed := memfeed.New()
	run(t, Config{Preset: preset, Video: vs, Sink: feed, GroupDuration: 300 * time.Millisecond}, 2*time.Second, nil)
	d := decodeFeed(t, feed)
	if d.header.Audio != nil {
		t.Fatal("audio track in a video-only stream")
	}
	most := 0
	for i, m := range d.media {
		for j, u := range m.Units {
			if u.Track != block.Video {
				t.Fatalf("block %d: %v unit in a video-only stream", i+1, u.Track)
			}
			if u.Key && j != 0 {
				t.Fatalf("block %d: key frame at position %d", i+1, j)
			}
		}
		if d.sync[i] != m.Units[0].Key {
			t.Fatalf("block %d: sync %v, key %v", i+1, d.sync[i], m.Units[0].Key)
		}
		most = max(most, len(m.Units))
	}
	// 300 ms at 15 fps: up to 5 frames a block.
	if most < 3 || most > 6 {
		t.Fatalf("blocks hold up to %d frames", most)
	}
}

// TestSendAfterStop: once a broadcast is stopped, what the encoders still hand over goes to
// the framer while its queue has room (the framer takes it until they end). Before, a
// select between the queue and the stop dropped about half of it: the last sound and
// pictures, and all the sound of a stream under half a second.
func TestSendAfterStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := make(chan block.Unit, 100)
	for i := range 100 {
		if !send(ctx, out, block.Unit{PTS: time.Duration(i)}) {
			t.Fatalf("unit %d of a stopped broadcast not sent with room in the queue", i)
		}
	}
	if send(ctx, out, block.Unit{}) {
		t.Fatal("a unit sent to a full queue after the stop")
	}
}
