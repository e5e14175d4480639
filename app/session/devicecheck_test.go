package session

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/wave"

	"github.com/dazaarvision/dazaar-vision/media/audiolevel"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/playback"
)

// testSources are the wizard's test camera and test microphone.
func testSources(t *testing.T) (video, audio *Source) {
	t.Helper()
	vs, as := Sources()
	for i := range vs {
		if vs[i].Test {
			video = &vs[i]
		}
	}
	for i := range as {
		if as[i].Test {
			audio = &as[i]
		}
	}
	if video == nil || audio == nil {
		t.Fatalf("no test devices among %v and %v", vs, as)
	}
	return video, audio
}

// hashSink keeps a hash of each picture and releases it.
type hashSink struct {
	mu     sync.Mutex
	hashes []uint64
	closed bool
	late   int
	w, h   int
}

func (s *hashSink) ShowFrame(f *playback.Frame) {
	h := fnv.New64a()
	h.Write(f.Image.Pix)
	s.mu.Lock()
	if s.closed {
		s.late++
	}
	s.hashes = append(s.hashes, h.Sum64())
	s.w, s.h = f.Image.Rect.Dx(), f.Image.Rect.Dy()
	s.mu.Unlock()
	f.Release()
}

func (s *hashSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hashes)
}

func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// The test camera's pictures arrive, at most 640×480, and change over time; the test tone
// reads well above silence, about 20 times a second; Close stops both and leaves no
// goroutine; the same devices open again at once (as going live does).
func TestDeviceCheck(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	video, mic := testSources(t)
	for _, quality := range []string{"low", "high"} {
		t.Run(quality, func(t *testing.T) {
			sink := &hashSink{}
			var mu sync.Mutex
			var levels []AudioLevel
			started := time.Now() // before the microphone opens: its sound cannot run ahead of this
			c, err := StartDeviceCheck(ctx, DeviceCheckConfig{Video: video, Audio: mic, Quality: quality, Frames: sink, Logger: testLog(t),
				OnLevel: func(l AudioLevel) { mu.Lock(); levels = append(levels, l); mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			waitUntil(t, ctx, "10 pictures and 10 levels", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return sink.count() >= 10 && len(levels) >= 10
			})
			c.Close()
			c.Close()
			elapsed := time.Since(started)
			sink.mu.Lock()
			sink.closed = true
			distinct := map[uint64]bool{}
			for _, h := range sink.hashes {
				distinct[h] = true
			}
			w, h, n := sink.w, sink.h, len(sink.hashes)
			sink.mu.Unlock()
			t.Logf("%s: %d pictures (%d different) of %d×%d and %d levels in %v; last level %+v", quality, n, len(distinct), w, h, len(levels), elapsed.Round(time.Millisecond), c.Level())
			if w > 640 || h > 480 || w == 0 {
				t.Errorf("pictures %d×%d, want at most 640×480", w, h)
			}
			if len(distinct) < n/2 {
				t.Errorf("only %d different pictures of %d: the preview does not move", len(distinct), n)
			}
			mu.Lock()
			got := append([]AudioLevel(nil), levels...)
			mu.Unlock()
			for _, l := range got {
				// The test tone is a 0.25 sine: peak −12.0, RMS −15.1 dBFS.
				if l.Peak < -13 || l.Peak > -11 || l.RMS < -16 || l.RMS > -14 {
					t.Fatalf("test tone level %+v, want peak ≈ −12 and RMS ≈ −15 dBFS", l)
				}
			}
			if c.Level() != got[len(got)-1] {
				// Level is the newest one reported (Close ended the reports).
				t.Errorf("Level() = %+v, the last reported %+v", c.Level(), got[len(got)-1])
			}
			// 20 a second: a window is 50 ms of sound, which cannot come faster than real time
			// (a loaded machine delivers later, never more often), so at most elapsed/50 ms.
			if most := int(elapsed/LevelEvery) + 1; len(got) > most {
				t.Errorf("%d levels in %v, want at most %d (20 a second)", len(got), elapsed, most)
			}
			if perSec := float64(len(got)) / elapsed.Seconds(); perSec > 30 {
				t.Errorf("%.1f levels a second, want about 20", perSec)
			}
			time.Sleep(100 * time.Millisecond)
			sink.mu.Lock()
			late := sink.late
			sink.mu.Unlock()
			if late != 0 {
				t.Errorf("%d pictures after Close", late)
			}
			if c.Err() != nil {
				t.Errorf("Err after a clean run: %v", c.Err())
			}
			// The devices are free again: going live could open them now.
			v, err := capture.OpenVideo(video.dev, capture.VideoWant{Width: 320, Height: 240, FrameRate: 15})
			if err != nil {
				t.Fatalf("the camera stays held after Close: %v", err)
			}
			v.Close()
			a, err := capture.OpenAudio(mic.dev, capture.AudioWant{SampleRate: 48000, Channels: 1})
			if err != nil {
				t.Fatalf("the microphone stays held after Close: %v", err)
			}
			a.Close()
		})
	}
}

// quietReader is a microphone in a quiet room: faint noise at real time.
type quietReader struct {
	next time.Time
	amp  float32
	seed uint32
}

func (q *quietReader) Read() (wave.Audio, func(), error) {
	if q.next.IsZero() {
		q.next = time.Now()
	}
	time.Sleep(time.Until(q.next))
	q.next = q.next.Add(10 * time.Millisecond)
	a := wave.NewFloat32Interleaved(wave.ChunkInfo{Len: 480, Channels: 1, SamplingRate: 48000})
	for i := range a.Data {
		q.seed = q.seed*1664525 + 1013904223
		a.Data[i] = q.amp * (float32(q.seed>>8)/float32(1<<24)*2 - 1)
	}
	return a, func() {}, nil
}

// A quiet source reads low and digital silence at the floor, far below the test tone.
func TestDeviceCheckQuietSource(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, mic := testSources(t)
	tone := levelOf(t, ctx, DeviceCheckConfig{Audio: mic})
	for _, tc := range []struct {
		name   string
		amp    float32
		maxRMS float64
	}{{"quiet room (−60 dBFS noise)", 0.001, -60}, {"digital silence", 0, audiolevel.Floor}} {
		t.Run(tc.name, func(t *testing.T) {
			l := levelOf(t, ctx, DeviceCheckConfig{openAudio: func() (*capture.AudioSource, error) {
				var r audio.Reader = &quietReader{amp: tc.amp, seed: 1}
				return capture.NewAudioSource(r, 48000, 1), nil
			}})
			t.Logf("%s: %+v (test tone %+v)", tc.name, l, tone)
			if l.RMS > tc.maxRMS || l.RMS > tone.RMS-40 {
				t.Fatalf("level %+v, want RMS ≤ %v dBFS and 40 dB below the test tone's %+v", l, tc.maxRMS, tone)
			}
			if LevelFraction(l.RMS) >= 0.05 {
				t.Fatalf("a meter shows %.2f for %+v", LevelFraction(l.RMS), l)
			}
		})
	}
	if LevelFraction(tone.RMS) < 0.5 {
		t.Fatalf("a meter shows %.2f for the test tone %+v", LevelFraction(tone.RMS), tone)
	}
}

// levelOf runs a sound-only check until three levels came and returns the last.
func levelOf(t *testing.T, ctx context.Context, cfg DeviceCheckConfig) AudioLevel {
	t.Helper()
	cfg.Logger = testLog(t)
	c, err := StartDeviceCheck(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitUntil(t, ctx, "three levels", func() bool { _, n := c.Counts(); return n >= 3 })
	return c.Level()
}

// A device that cannot be opened is named in the error and nothing stays open.
func TestDeviceCheckOpenError(t *testing.T) {
	defer checkLeaks(t)()
	video, _ := testSources(t)
	gone := *video
	gone.dev.ID = "no-such-device"
	gone.Label = "Camera: unplugged"
	_, err := StartDeviceCheck(context.Background(), DeviceCheckConfig{Video: &gone, Frames: &hashSink{}, Logger: testLog(t)})
	if err == nil || !strings.Contains(err.Error(), "cannot open Camera: unplugged") {
		t.Fatalf("err = %v", err)
	}
}

// failingReader gives n chunks of the test tone's level and then fails, as an unplugged
// microphone does.
type failingReader struct {
	quietReader
	n int
}

func (f *failingReader) Read() (wave.Audio, func(), error) {
	if f.n == 0 {
		return nil, func() {}, errors.New("device unplugged")
	}
	f.n--
	return f.quietReader.Read()
}

// A device that stops during the check is reported by Err in words, and Close still ends
// everything.
func TestDeviceCheckDeviceStops(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := StartDeviceCheck(ctx, DeviceCheckConfig{Logger: testLog(t), openAudio: func() (*capture.AudioSource, error) {
		return capture.NewAudioSource(&failingReader{quietReader: quietReader{amp: 0.25, seed: 1}, n: 20}, 48000, 1), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitUntil(t, ctx, "the error", func() bool { return c.Err() != nil })
	if e := c.Err().Error(); !strings.Contains(e, "the sound stopped") || !strings.Contains(e, "device unplugged") {
		t.Fatalf("Err() = %q", e)
	}
	if _, n := c.Counts(); n != 4 { // 20 chunks of 10 ms
		t.Errorf("%d levels before the microphone stopped, want 4", n)
	}
}

// hiddenSink is a hashSink behind a window that is hidden while hidden is set.
type hiddenSink struct {
	hashSink
	hidden atomic.Bool
}

func (s *hiddenSink) Watched() bool { return !s.hidden.Load() }

// While the preview's window is hidden the camera is still read (a device that is not read
// stalls) but no picture is converted or handed over; shown again, pictures come at once.
func TestDeviceCheckHiddenPreview(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	video, _ := testSources(t)
	sink := &hiddenSink{}
	sink.hidden.Store(true)
	c, err := StartDeviceCheck(ctx, DeviceCheckConfig{Video: video, Quality: "low", Frames: sink, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitUntil(t, ctx, "10 pictures read while hidden", func() bool { return c.Unwatched() >= 10 })
	if n := sink.count(); n != 0 {
		t.Fatalf("%d pictures handed to a hidden preview", n)
	}
	if f, _ := c.Counts(); f != 0 {
		t.Fatalf("%d pictures counted as shown while hidden", f)
	}
	sink.hidden.Store(false)
	waitUntil(t, ctx, "pictures once shown", func() bool { return sink.count() >= 3 })
}
