package broadcast

import (
	"errors"
	"image"
	"io"
	"math"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
	"github.com/dazaarvision/dazaar-vision/media/opus"
	mdopus "github.com/pion/mediadevices/pkg/codec/opus"
	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/mediadevices/pkg/wave"
)

// toneSource is a microphone at rate Hz with ch channels playing freq Hz at amplitude amp
// on every channel, in chunks of chunk, paced by the wall clock like a sound card.
func toneSource(rate, ch int, freq, amp float64, chunk time.Duration, int16s bool) *capture.AudioSource {
	n := int(int64(rate) * int64(chunk) / int64(time.Second))
	next := time.Now()
	var i int64
	r := audio.ReaderFunc(func() (wave.Audio, func(), error) {
		time.Sleep(time.Until(next))
		next = next.Add(chunk)
		info := wave.ChunkInfo{Len: n, Channels: ch, SamplingRate: rate}
		if int16s {
			w := wave.NewInt16Interleaved(info)
			for k := 0; k < n; k++ {
				v := int16(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
				for c := 0; c < ch; c++ {
					w.Data[k*ch+c] = v
				}
				i++
			}
			return w, func() {}, nil
		}
		w := wave.NewFloat32Interleaved(info)
		for k := 0; k < n; k++ {
			v := float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
			for c := 0; c < ch; c++ {
				w.Data[k*ch+c] = v
			}
			i++
		}
		return w, func() {}, nil
	})
	return capture.NewAudioSource(r, rate, ch)
}

// TestMicrophoneRatesAndChannels: microphones at 44.1 kHz (the usual built-in and USB
// rate) and 48 kHz, mono or stereo, float or 16-bit, go to a 48 kHz mono Opus track; the
// tone keeps its frequency and level through resampling, encoding and decoding, and the
// packets are stamped exactly 20 ms apart (the samples they carry), except where sound
// was counted as lost.
func TestMicrophoneRatesAndChannels(t *testing.T) {
	for _, c := range []struct {
		name   string
		rate   int
		ch     int
		int16s bool
		chunk  time.Duration
	}{
		{"44.1kHz-stereo-float", 44100, 2, false, 10 * time.Millisecond},
		{"44.1kHz-mono-int16", 44100, 1, true, 20 * time.Millisecond},
		{"48kHz-stereo-int16", 48000, 2, true, 10 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := toneSource(c.rate, c.ch, 1000, 0.5, c.chunk, c.int16s)
			feed := memfeed.New()
			b := run(t, Config{Preset: Medium, Audio: src, Sink: feed}, 2500*time.Millisecond, nil)
			st := b.Stats()
			d := decodeFeed(t, feed)
			if a := d.header.Audio; a == nil || a.SampleRate != 48000 || a.Channels != 1 {
				t.Fatalf("audio header %+v", d.header.Audio)
			}
			dec, err := opus.NewDecoder(48000, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			buf := make([]float32, dec.MaxSamples())
			var pcm []float32
			var pts []time.Duration
			for _, m := range d.media {
				for _, u := range m.Units {
					if u.Duration != 20*time.Millisecond {
						t.Fatalf("packet of %v", u.Duration)
					}
					pts = append(pts, u.PTS)
					k, err := dec.Decode(u.Payload, buf)
					if err != nil {
						t.Fatal(err)
					}
					pcm = append(pcm, buf[:k]...)
				}
			}
			var extra time.Duration
			gaps := int64(0)
			for i := 1; i < len(pts); i++ {
				step := pts[i] - pts[i-1]
				switch {
				case step == 20*time.Millisecond:
				case step > 20*time.Millisecond:
					extra += step - 20*time.Millisecond
					gaps++
				default:
					t.Fatalf("packet %d at %v, %v after the previous: packets of 20 ms overlap", i, pts[i], step)
				}
			}
			if gaps != st.AudioGaps || (extra-st.AudioLost).Abs() > time.Duration(gaps)*time.Microsecond {
				t.Fatalf("%d gaps of %v in the timestamps, stats say %d of %v", gaps, extra, st.AudioGaps, st.AudioLost)
			}
			body := pcm[4800:]
			f := testpattern.ToneFrequency(body, 48000)
			rms := testpattern.RMS(body)
			t.Logf("%d packets, tone %.2f Hz, RMS %.3f (sent %.3f); gaps %d (%v), surplus %v", len(pts), f, rms, 0.5/math.Sqrt2, st.AudioGaps, st.AudioLost, st.AudioSurplus)
			if len(pts) < 50 {
				t.Fatalf("only %d packets in 2.5 s", len(pts))
			}
			// The pitch is exact through resampling and Opus (TestToneThroughAudioIn);
			// here it also follows the capture clock, which a busy machine's scheduling
			// can bend by a fraction of a percent while the device's rate is learnt.
			if math.Abs(f-1000) > 5 {
				t.Fatalf("a 1000 Hz tone decoded at %.2f Hz", f)
			}
			if math.Abs(rms-0.5/math.Sqrt2) > 0.05 {
				t.Fatalf("tone level %.3f RMS, sent %.3f", rms, 0.5/math.Sqrt2)
			}
		})
	}
}

// TestAudioInFollowsDeviceClock: a device whose clock runs 2 % fast or slow, and one that
// loses 100 ms of sound once, stay on the capture clock: timestamps advance by the
// samples they carry, the loss is one counted gap, and no packet overlaps another.
func TestAudioInFollowsDeviceClock(t *testing.T) {
	for _, c := range []struct {
		ratio float64
		loss  bool
	}{{1.02, false}, {0.98, false}, {1, true}} {
		var now time.Duration
		const n = 441 // 10 ms at 44.1 kHz
		chunks := 0
		r := audioReaderFunc(func() (wave.Audio, func(), error) {
			chunks++
			at := chunks
			if c.loss && chunks > 1500 {
				at += 10 // 100 ms of the device's sound never arrived
			}
			now = time.Duration(float64(at)*float64(10*time.Millisecond)*c.ratio) + time.Duration((chunks%5)-2)*time.Millisecond
			return wave.NewFloat32Interleaved(wave.ChunkInfo{Len: n, Channels: 2, SamplingRate: 44100}), func() {}, nil
		})
		in := newAudioIn(newAudioStamper(r, func() time.Duration { return now }, 44100, nil))
		var got int64
		var worst time.Duration
		for chunks < 3000 { // 30 s
			w, _, _ := in.Read()
			got += int64(w.ChunkInfo().Len)
			// The newest output sample against the capture clock, once the device's rate
			// has been learnt (10 s) and except in the 1.5 s after the loss (the stamper
			// confirms a step over two half-second windows).
			if chunks > 1000 && (chunks < 1500 || chunks > 1650) {
				e := in.at(got) - now
				worst = max(worst, e.Abs())
			}
		}
		t.Logf("ratio %.2f loss %v: worst %v, gaps %d (%v), surplus %v", c.ratio, c.loss, worst, in.gaps.Load(), time.Duration(in.lostNs.Load()), time.Duration(in.skippedNs.Load()))
		if worst > 20*time.Millisecond {
			t.Errorf("ratio %.2f: the audio timeline strays %v from the capture clock", c.ratio, worst)
		}
		wantGaps := int64(0)
		if c.loss {
			wantGaps = 1
		}
		if in.gaps.Load() != wantGaps {
			t.Errorf("ratio %.2f loss %v: %d gaps", c.ratio, c.loss, in.gaps.Load())
		}
		if c.loss {
			if l := time.Duration(in.lostNs.Load()); l < 80*time.Millisecond || l > 120*time.Millisecond {
				t.Errorf("lost %v, 100 ms went missing", l)
			}
		}
	}
}

// TestAudioInLateFirstChunk: when the first chunk arrives late (a busy machine's start-up),
// the timeline still starts where the sound was captured, and the pitch is not bent to get
// there: a device on the capture clock gives exactly as many output samples as it gave in.
func TestAudioInLateFirstChunk(t *testing.T) {
	for _, late := range []time.Duration{0, 10 * time.Millisecond, 30 * time.Millisecond, 45 * time.Millisecond} {
		var now time.Duration
		const n = 480 // 10 ms at 48 kHz
		chunks := 0
		r := audioReaderFunc(func() (wave.Audio, func(), error) {
			chunks++
			now = time.Duration(chunks)*10*time.Millisecond + time.Duration(chunks%3)*time.Millisecond
			if chunks == 1 {
				now += late
			}
			return wave.NewFloat32Interleaved(wave.ChunkInfo{Len: n, Channels: 1, SamplingRate: 48000}), func() {}, nil
		})
		in := newAudioIn(newAudioStamper(r, func() time.Duration { return now }, 48000, nil))
		var out int64
		for chunks < 400 { // 4 s
			w, _, err := in.Read()
			if err != nil {
				t.Fatal(err)
			}
			out += int64(w.ChunkInfo().Len)
		}
		first := in.at(0)
		// Output lags input by the resampler's few pending samples.
		if d := int64(chunks*n) - out; d < 0 || d > 48 {
			t.Errorf("first chunk %v late: %d samples in, %d out: the pitch was bent by %.2f %%", late, chunks*n, out, 100*float64(d)/float64(out))
		}
		if first.Abs() > 2*time.Millisecond {
			t.Errorf("first chunk %v late: the sound captured at 0 is stamped %v", late, first)
		}
		if in.gaps.Load() != 0 || in.skippedNs.Load() != 0 {
			t.Errorf("first chunk %v late: %d gaps, %v skipped", late, in.gaps.Load(), time.Duration(in.skippedNs.Load()))
		}
	}
}

// TestFirstSoundBeforeFirstPicture: the audio timeline starts half a second in (its first
// window is measured first), yet the stream is framed in time order: the sound captured
// before the first picture is in a block before it, so that playing from the start plays
// the first sound.
func TestFirstSoundBeforeFirstPicture(t *testing.T) {
	vs, as := openTestSources(t, Low)
	feed := memfeed.New()
	run(t, Config{Preset: Low, Video: vs, Audio: as, Sink: feed}, 2*time.Second, nil)
	d := decodeFeed(t, feed)
	firstAudio, firstVideo := -1, -1
	var soundAt, pictureAt time.Duration
	var last [2]time.Duration
	for i, m := range d.media {
		for _, u := range m.Units {
			if u.Track == block.Audio && firstAudio < 0 {
				firstAudio, soundAt = i+1, u.PTS
			}
			if u.Track == block.Video && firstVideo < 0 {
				firstVideo, pictureAt = i+1, u.PTS
			}
			k := 0
			if u.Track == block.Video {
				k = 1
			}
			if u.PTS < last[k] {
				t.Fatalf("block %d: %v unit at %v after one at %v", i+1, u.Track, u.PTS, last[k])
			}
			last[k] = u.PTS
		}
	}
	if firstAudio < 0 || firstVideo < 0 || soundAt > pictureAt {
		t.Fatalf("sound from %v, pictures from %v (-1: none)", soundAt, pictureAt)
	}
	if firstAudio > firstVideo {
		t.Fatalf("the sound from %v starts in block %d, after the picture at %v in block %d", soundAt, firstAudio, pictureAt, firstVideo)
	}
	t.Logf("sound from %v in block %d, pictures from %v in block %d", soundAt, firstAudio, pictureAt, firstVideo)
}

// TestEarlyAudioBounded: sound captured before the first picture is kept up to
// earlyAudio packets, the oldest beyond that dropped and counted; every packet the
// encoder made is either in the stream or counted.
func TestEarlyAudioBounded(t *testing.T) {
	scene := testpattern.NewScene(320, 240)
	n := 0
	slow := video.ReaderFunc(func() (image.Image, func(), error) {
		if n == 0 {
			time.Sleep(2 * time.Second) // a camera slow to start
		} else {
			time.Sleep(66 * time.Millisecond)
		}
		n++
		return scene.Frame(n, nil), func() {}, nil
	})
	vs := capture.NewVideoSource(slow, 320, 240, 15)
	as := toneSource(48000, 1, 440, 0.3, 20*time.Millisecond, false)
	feed := memfeed.New()
	b := run(t, Config{Preset: Low, Video: vs, Audio: as, Sink: feed}, 3500*time.Millisecond, nil)
	st := b.Stats()
	d := decodeFeed(t, feed)
	var stored int64
	for _, m := range d.media {
		for _, u := range m.Units {
			if u.Track == block.Audio {
				stored++
			}
		}
	}
	t.Logf("%d audio packets made, %d stored, %d dropped before the first picture", st.AudioPackets, stored, st.EarlyAudioDropped)
	if st.EarlyAudioDropped < 20 {
		t.Fatalf("%d packets dropped while the camera took 2 s to start; %d are kept", st.EarlyAudioDropped, earlyAudio)
	}
	if stored+st.EarlyAudioDropped != st.AudioPackets {
		t.Fatalf("%d packets made, %d stored + %d dropped", st.AudioPackets, stored, st.EarlyAudioDropped)
	}
}

// TestToneThroughAudioIn: a 44.1 kHz stereo microphone whose sound arrives on time goes
// through the mixing, resampling to 48 kHz, Opus encoding and decoding with its tone's
// frequency (within 0.05 %) and level (within 3 %: Opus colours a 6 kHz tone slightly) kept.
func TestToneThroughAudioIn(t *testing.T) {
	for _, c := range []struct {
		rate, ch int
		freq     float64
	}{{44100, 2, 1000}, {44100, 1, 440}, {44100, 2, 6000}, {48000, 2, 1000}} {
		var now time.Duration
		n := c.rate / 100 // 10 ms chunks
		var i int64
		r := audioReaderFunc(func() (wave.Audio, func(), error) {
			w := wave.NewFloat32Interleaved(wave.ChunkInfo{Len: n, Channels: c.ch, SamplingRate: c.rate})
			for k := 0; k < n; k++ {
				v := float32(0.5 * math.Sin(2*math.Pi*c.freq*float64(i)/float64(c.rate)))
				for ch := 0; ch < c.ch; ch++ {
					w.Data[k*c.ch+ch] = v
				}
				i++
			}
			now += 10 * time.Millisecond
			return w, func() {}, nil
		})
		in := newAudioIn(newAudioStamper(r, func() time.Duration { return now }, c.rate, nil))
		params, err := mdopus.NewParams()
		if err != nil {
			t.Fatal(err)
		}
		params.BitRate = 64000
		params.Latency = mdopus.Latency20ms
		enc, err := params.BuildAudioEncoder(in, prop.Media{Audio: prop.Audio{SampleRate: opusRate, ChannelCount: 1}})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := opus.NewDecoder(48000, 1)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]float32, dec.MaxSamples())
		var pcm []float32
		for k := 0; k < 150; k++ { // 3 s
			pkt, release, err := enc.Read()
			if err != nil {
				t.Fatal(err)
			}
			m, err := dec.Decode(pkt, buf)
			release()
			if err != nil {
				t.Fatal(err)
			}
			pcm = append(pcm, buf[:m]...)
		}
		enc.Close()
		dec.Close()
		body := pcm[9600:]
		f, rms := testpattern.Frequency(body, 48000), testpattern.RMS(body)
		t.Logf("%d Hz × %d, %.0f Hz: decoded %.3f Hz, RMS %.4f (sent %.4f)", c.rate, c.ch, c.freq, f, rms, 0.5/math.Sqrt2)
		if math.Abs(f-c.freq) > c.freq*0.0005 {
			t.Errorf("%d Hz × %d: a %.0f Hz tone decoded at %.3f Hz", c.rate, c.ch, c.freq, f)
		}
		if math.Abs(rms-0.5/math.Sqrt2) > 0.03*0.5/math.Sqrt2 {
			t.Errorf("%d Hz × %d: level %.4f RMS, sent %.4f", c.rate, c.ch, rms, 0.5/math.Sqrt2)
		}
	}
}

// TestAudioInShortStreamKeepsItsSound: sound that ends within the first window (a recording
// or a broadcast under half a second) still goes out, then the device's error. Before, the
// held window was dropped at the error: such a stream had no sound at all.
func TestAudioInShortStreamKeepsItsSound(t *testing.T) {
	var now time.Duration
	const n = 480 // 10 ms at 48 kHz
	chunks := 0
	r := audioReaderFunc(func() (wave.Audio, func(), error) {
		if chunks == 25 { // 250 ms, then the device stops
			return nil, func() {}, io.EOF
		}
		chunks++
		now = time.Duration(chunks) * 10 * time.Millisecond
		return wave.NewFloat32Interleaved(wave.ChunkInfo{Len: n, Channels: 1, SamplingRate: 48000}), func() {}, nil
	})
	in := newAudioIn(newAudioStamper(r, func() time.Duration { return now }, 48000, nil))
	var out int
	for {
		w, _, err := in.Read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the device's error became %v", err)
			}
			break
		}
		out += w.ChunkInfo().Len
	}
	if got := time.Duration(out) * time.Second / 48000; got < 240*time.Millisecond {
		t.Fatalf("%v of the 250 ms of sound came out", got)
	}
	if _, _, err := in.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("a read after the end: %v", err)
	}
}
