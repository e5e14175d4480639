package mediabench

import (
	"bytes"
	"context"
	"image"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	mdvpx "github.com/pion/mediadevices/pkg/codec/vpx"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
)

const sourceFrames = 60

// cycle replays frames with a frame counter painted in, as fast as they are read.
func cycle(frames []*image.YCbCr) video.Reader {
	i := 0
	return video.ReaderFunc(func() (image.Image, func(), error) {
		img := frames[i%len(frames)]
		testpattern.PaintCounter(img, uint32(i))
		i++
		return img, func() {}, nil
	})
}

func reportRealtime(b *testing.B, p broadcast.Preset) {
	fps := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(fps, "frames/s")
	b.ReportMetric(fps/float64(p.FrameRate), "x-realtime")
}

// BenchmarkEncode encodes each preset's pictures as fast as the encoder takes them:
// ours (libvpx configured once, cpu_used set) and mediadevices v0.9.4's VP8 encoder.
func BenchmarkEncode(b *testing.B) {
	for _, p := range broadcast.Presets() {
		frames, err := Frames(p.Width, p.Height, sourceFrames)
		if err != nil {
			b.Fatal(err)
		}
		kf := int(p.KeyFrameInterval.Seconds()) * p.FrameRate
		b.Run(p.Name+"/ours", func(b *testing.B) {
			enc := &vp8.Builder{Config: vp8.Config{FrameRateNum: p.FrameRate, FrameRateDen: 1, BitRate: p.VideoBitRate, KeyFrameInterval: kf, CPUUsed: p.CPUUsed}}
			rc, err := enc.BuildVideoEncoder(cycle(frames), prop.Media{Video: prop.Video{Width: p.Width, Height: p.Height}})
			if err != nil {
				b.Fatal(err)
			}
			defer rc.Close()
			var bytes int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data, _, err := rc.Read()
				if err != nil {
					b.Fatal(err)
				}
				bytes += len(data)
			}
			reportRealtime(b, p)
			b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
		})
		b.Run(p.Name+"/mediadevices", func(b *testing.B) {
			params, err := mdvpx.NewVP8Params()
			if err != nil {
				b.Fatal(err)
			}
			params.BitRate, params.KeyFrameInterval = p.VideoBitRate, kf
			rc, err := params.BuildVideoEncoder(cycle(frames), prop.Media{Video: prop.Video{Width: p.Width, Height: p.Height, FrameRate: float32(p.FrameRate)}})
			if err != nil {
				b.Fatal(err)
			}
			defer rc.Close()
			var bytes int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data, _, err := rc.Read()
				if err != nil {
					b.Fatal(err)
				}
				bytes += len(data)
			}
			reportRealtime(b, p)
			b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
		})
	}
}

// encoded returns a key frame followed by delta frames of one preset: the frames a stream
// holds, so without the pictures rate control dropped (an empty frame is not a frame; the
// test camera's noise strip makes the encoder drop some at the low and high presets).
func encoded(b *testing.B, p broadcast.Preset) [][]byte {
	frames, err := Frames(p.Width, p.Height, sourceFrames)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := vp8.NewEncoder(vp8.Config{Width: p.Width, Height: p.Height, FrameRateNum: p.FrameRate, FrameRateDen: 1, BitRate: p.VideoBitRate, KeyFrameInterval: sourceFrames})
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	r := cycle(frames)
	out := make([][]byte, 0, sourceFrames)
	for range sourceFrames {
		img, _, _ := r.Read()
		f, err := enc.Encode(img)
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Data) > 0 {
			out = append(out, f.Data)
		}
	}
	// The decoders start from a key frame and must have enough pictures to be measured.
	if len(out) == 0 || !vp8.IsKeyFrame(out[0]) {
		b.Fatalf("%s: the first encoded frame is not a key frame", p.Name)
	}
	if len(out) < sourceFrames/2 {
		b.Fatalf("%s: rate control dropped %d of %d pictures", p.Name, sourceFrames-len(out), sourceFrames)
	}
	return out
}

// oneFrameReader hands mediadevices' decoder one frame per Read.
type oneFrameReader struct {
	frames [][]byte
	i      int
}

func (r *oneFrameReader) Read(p []byte) (int, error) {
	f := r.frames[r.i%len(r.frames)]
	r.i++
	if len(f) > len(p) {
		return 0, io.ErrShortBuffer
	}
	return copy(p, f), nil
}

// BenchmarkDecode decodes each preset's frames: ours to RGBA (what the player hands to
// the UI) and to 4:2:0, and mediadevices v0.9.4's VP8 decoder (to 4:2:0).
func BenchmarkDecode(b *testing.B) {
	for _, p := range broadcast.Presets() {
		frames := encoded(b, p)
		b.Run(p.Name+"/ours-rgba", func(b *testing.B) {
			dec, _ := vp8.NewDecoder()
			defer dec.Close()
			var dst *image.RGBA
			for i := 0; i < b.N; i++ {
				var err error
				if dst, err = dec.DecodeRGBA(frames[i%len(frames)], dst); err != nil {
					b.Fatal(err)
				}
			}
			reportRealtime(b, p)
		})
		b.Run(p.Name+"/ours-yuv", func(b *testing.B) {
			dec, _ := vp8.NewDecoder()
			defer dec.Close()
			for i := 0; i < b.N; i++ {
				if _, err := dec.Decode(frames[i%len(frames)]); err != nil {
					b.Fatal(err)
				}
			}
			reportRealtime(b, p)
		})
		b.Run(p.Name+"/mediadevices", func(b *testing.B) {
			dec, err := mdvpx.NewDecoder(&oneFrameReader{frames: frames}, prop.Media{Video: prop.Video{Width: p.Width, Height: p.Height}})
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Close()
			for i := 0; i < b.N; i++ {
				if _, _, err := dec.Read(); err != nil {
					b.Fatal(err)
				}
			}
			reportRealtime(b, p)
		})
	}
}

// latencyFrames is how many pictures one latency measurement takes (10 s at 30 fps).
const latencyFrames = 300

type latencies struct {
	mu  sync.Mutex
	ds  []time.Duration
	bad int
}

func (l *latencies) add(p *testpattern.Painter, img image.Image) {
	n, ok := testpattern.ReadCounter(img)
	at, found := p.Painted(n)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok || !found {
		l.bad++
		return
	}
	l.ds = append(l.ds, time.Since(at))
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ds)
}

func (l *latencies) report(b *testing.B) {
	b.ReportMetric(float64(Percentile(l.ds, 50))/1e6, "p50-ms")
	b.ReportMetric(float64(Percentile(l.ds, 90))/1e6, "p90-ms")
	b.ReportMetric(float64(Percentile(l.ds, 99))/1e6, "p99-ms")
	b.ReportMetric(float64(Percentile(l.ds, 100))/1e6, "max-ms")
	b.ReportMetric(float64(l.bad), "misread")
}

// BenchmarkLatency measures capture → decoded picture at 640×480 inside one process: a
// frame counter painted into each picture as the test camera hands it over is read back
// from the decoded picture.
//
// ours: the whole broadcaster (capture, our VP8 encoder, Opus, framing into blocks) into
// an in-memory feed, and the whole player (blocks, decoding to RGBA) reading it live.
// mediadevices: the same camera and painter into mediadevices' own VP8 encoder, decoded
// by its own decoder, with nothing in between.
func BenchmarkLatency(b *testing.B) {
	preset := broadcast.Medium
	b.Run("640x480/ours", func(b *testing.B) {
		var lat latencies
		for i := 0; i < b.N; i++ {
			vd, _ := capture.TestDevice(capture.Camera)
			ad, _ := capture.TestDevice(capture.Microphone)
			vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: 640, Height: 480, FrameRate: 30})
			if err != nil {
				b.Fatal(err)
			}
			as, err := capture.OpenAudio(ad, capture.AudioWant{SampleRate: 48000, Channels: 1})
			if err != nil {
				b.Fatal(err)
			}
			painter := &testpattern.Painter{}
			vs.Reader = painter.Wrap(vs.Reader)
			feed := memfeed.New()
			bc, err := broadcast.New(broadcast.Config{Preset: preset, Video: vs, Audio: as, Sink: feed})
			if err != nil {
				b.Fatal(err)
			}
			pl, err := playback.New(playback.Config{Source: feed, Audio: audioout.NewSilent(),
				Frames:    playback.FrameSinkFunc(func(f *playback.Frame) { f.Release() }),
				OnDecoded: func(_ time.Duration, img *image.RGBA) { lat.add(painter, img) }})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); bc.Run(ctx) }()
			go func() { defer wg.Done(); pl.Run(ctx) }()
			for lat.count() < (i+1)*latencyFrames {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			wg.Wait()
		}
		lat.report(b)
	})
	b.Run("640x480/mediadevices", func(b *testing.B) {
		var lat latencies
		for i := 0; i < b.N; i++ {
			vd, _ := capture.TestDevice(capture.Camera)
			vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: 640, Height: 480, FrameRate: 30})
			if err != nil {
				b.Fatal(err)
			}
			painter := &testpattern.Painter{}
			params, _ := mdvpx.NewVP8Params()
			params.BitRate, params.KeyFrameInterval = preset.VideoBitRate, 60
			enc, err := params.BuildVideoEncoder(painter.Wrap(vs.Reader), prop.Media{Video: prop.Video{Width: 640, Height: 480, FrameRate: 30}})
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			dec, err := mdvpx.NewDecoder(&buf, prop.Media{Video: prop.Video{Width: 640, Height: 480}})
			if err != nil {
				b.Fatal(err)
			}
			for n := 0; n < latencyFrames; n++ {
				data, _, err := enc.Read()
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				buf.Write(data)
				img, _, err := dec.Read()
				if err != nil {
					b.Fatal(err)
				}
				lat.add(painter, img)
			}
			enc.Close()
			dec.Close()
			vs.Close()
		}
		lat.report(b)
	})
}
