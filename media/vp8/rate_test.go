package vp8

import (
	"fmt"
	"image"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
)

// ratePreset mirrors media/broadcast's presets (broadcast imports this package, so its
// test cannot be imported here; broadcast's TestPresetsMatchRateTest keeps them equal).
type ratePreset struct {
	name    string
	w, h    int
	fps     int
	bitRate int
}

var ratePresets = []ratePreset{
	{"low", 640, 360, 15, 300_000},
	{"medium", 640, 480, 30, 1_200_000},
	{"high", 1280, 720, 30, 2_500_000},
}

// rateRun is what one encode measured: the bit rate over the whole run and the lowest
// and highest over any 5 s window, against the target.
type rateRun struct {
	whole, lo, hi float64 // ratios to the target
	dropped       int64
	keys          int
}

// measureRate encodes secs seconds of a source at synthetic capture times (fps frames a
// second, times scaled by slow: 1.25 means pictures arrive 25 % less often than nominal),
// so that the result does not depend on how busy the machine is.
func measureRate(t testing.TB, p ratePreset, rc rateControl, source string, secs int, slow float64) rateRun {
	t.Helper()
	enc, err := newEncoder(Config{Width: p.w, Height: p.h, FrameRateNum: p.fps, FrameRateDen: 1, BitRate: p.bitRate, KeyFrameEvery: 2 * time.Second}, rc)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var scene *testpattern.Scene
	if source == "scene" {
		scene = testpattern.NewScene(p.w, p.h)
	}
	var img *image.YCbCr
	fd := time.Second / time.Duration(p.fps)
	type sample struct {
		at    time.Duration
		bytes int
	}
	var out []sample
	var run rateRun
	n := int(float64(secs*p.fps) / slow)
	for i := 0; i < n; i++ {
		if scene != nil {
			img = scene.Frame(i, img)
		} else {
			img = testpattern.NoiseBars(p.w, p.h, i, img)
		}
		at := time.Duration(float64(i) * slow * float64(fd))
		f, err := enc.EncodeAt(img, at)
		if err != nil {
			t.Fatal(err)
		}
		if f.Key {
			run.keys++
		}
		out = append(out, sample{at, len(f.Data)})
	}
	run.dropped = enc.Dropped()
	win := 5 * time.Second
	total := 0
	for _, s := range out {
		total += s.bytes
	}
	end := out[len(out)-1].at + time.Duration(slow*float64(fd))
	run.whole = float64(total*8) / end.Seconds() / float64(p.bitRate)
	run.lo, run.hi = 1e9, 0
	// Every window of 5 s starting at a frame.
	j, sum := 0, 0
	for i := range out {
		for j < len(out) && out[j].at < out[i].at+win {
			sum += out[j].bytes
			j++
		}
		if out[i].at+win > end {
			break
		}
		r := float64(sum*8) / win.Seconds() / float64(p.bitRate)
		run.lo, run.hi = min(run.lo, r), max(run.hi, r)
		sum -= out[i].bytes
	}
	return run
}

// TestRateControl: at each preset, the bit rate over every 5 s window of a camera-like
// moving scene is within ±15 % of the target, also when the camera delivers 20 % fewer
// pictures than nominal, and on the test camera's noise block it never exceeds 1.5×.
// Capture times are synthetic, so the result does not depend on the machine's load.
func TestRateControl(t *testing.T) {
	for _, p := range ratePresets {
		for _, c := range []struct {
			source string
			slow   float64
		}{{"scene", 1}, {"scene", 1.25}, {"noise", 1}} {
			if c.slow != 1 && p.name != "medium" {
				continue // one preset at a lower real frame rate is enough
			}
			name := fmt.Sprintf("%s/%s/%.0f%%", p.name, c.source, 100/c.slow)
			t.Run(name, func(t *testing.T) {
				r := measureRate(t, p, defaultRC, c.source, 10, c.slow)
				t.Logf("%s: whole %.2f× the target, 5 s windows %.2f..%.2f×, %d pictures dropped, %d key frames", name, r.whole, r.lo, r.hi, r.dropped, r.keys)
				if c.source == "scene" && (r.lo < 0.85 || r.hi > 1.15) {
					t.Errorf("bit rate over 5 s windows %.2f..%.2f× the target, want within ±15 %%", r.lo, r.hi)
				}
				if r.hi > 1.5 {
					t.Errorf("bit rate over a 5 s window reached %.2f× the target, want at most 1.5×", r.hi)
				}
				if r.keys != 5 {
					t.Errorf("%d key frames in 10 s, want one every 2 s", r.keys)
				}
			})
		}
	}
}

// TestKeyFramesByTime: key frames are spaced by capture time, not frame count: at 28.8
// real frames a second (nominal 30) they still come every 2 s.
func TestKeyFramesByTime(t *testing.T) {
	enc, err := NewEncoder(Config{Width: 320, Height: 240, FrameRateNum: 30, FrameRateDen: 1, BitRate: 500_000, KeyFrameEvery: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	scene := testpattern.NewScene(320, 240)
	var img *image.YCbCr
	var keys []time.Duration
	for i := 0; i < 200; i++ {
		img = scene.Frame(i, img)
		at := time.Duration(i) * time.Second * 10 / 288 // 28.8 fps
		f, err := enc.EncodeAt(img, at)
		if err != nil {
			t.Fatal(err)
		}
		if f.Key {
			keys = append(keys, at)
		}
	}
	if len(keys) != 4 {
		t.Fatalf("key frames at %v, want 4 in 6.9 s", keys)
	}
	for i := 1; i < len(keys); i++ {
		if d := keys[i] - keys[i-1]; d < 2*time.Second-20*time.Millisecond || d > 2*time.Second+35*time.Millisecond {
			t.Fatalf("key frames at %v: %v apart, want 2 s", keys, d)
		}
	}
}

// BenchmarkRateControl reports, per preset and source, the bit rate over the whole run
// and the lowest and highest over any 5 s window, as ratios to the preset's target
// (scripts/bench.d/media-rate.sh prints them as a table for BENCHMARKS.md).
func BenchmarkRateControl(b *testing.B) {
	for _, p := range ratePresets {
		for _, src := range []string{"scene", "noise"} {
			b.Run(p.name+"/"+src, func(b *testing.B) {
				var r rateRun
				for range b.N {
					r = measureRate(b, p, defaultRC, src, 20, 1)
				}
				b.ReportMetric(r.whole, "x-target")
				b.ReportMetric(r.lo, "x-min5s")
				b.ReportMetric(r.hi, "x-max5s")
				b.ReportMetric(float64(r.dropped), "dropped")
				b.ReportMetric(r.whole*float64(p.bitRate)/1000, "kbit/s")
			})
		}
	}
}
