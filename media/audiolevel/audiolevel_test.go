package audiolevel

import (
	"math"
	"testing"
	"time"

	"github.com/pion/mediadevices/pkg/wave"
)

func sine(n, rate int, freq, amp float64, channels int) []float32 {
	out := make([]float32, 0, n*channels)
	for i := 0; i < n; i++ {
		v := float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := 0; c < channels; c++ {
			out = append(out, v)
		}
	}
	return out
}

func TestLevels(t *testing.T) {
	const rate = 48000
	square := make([]float32, rate/10)
	for i := range square {
		square[i] = 0.5
		if i%2 == 1 {
			square[i] = -0.5
		}
	}
	for _, tc := range []struct {
		name      string
		samples   []float32
		channels  int
		peak, rms float64
	}{
		{"full-scale sine", sine(rate/10, rate, 1000, 1, 1), 1, 0, -3.01},
		{"test tone (0.25 sine, stereo)", sine(rate/10, rate, 480, 0.25, 2), 2, -12.04, -15.05},
		{"half-scale square", square, 1, -6.02, -6.02},
		{"silence", make([]float32, rate/10), 1, Floor, Floor},
		{"quiet hiss (1e-4)", sine(rate/10, rate, 1000, 1e-4, 1), 1, -80, -83.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMeter(rate, 50*time.Millisecond)
			var got []Level
			m.Add(tc.samples, tc.channels, func(l Level) { got = append(got, l) })
			if len(got) != 2 { // 100 ms in 50 ms windows
				t.Fatalf("%d levels from 100 ms, want 2", len(got))
			}
			for _, l := range got {
				if math.Abs(l.Peak-tc.peak) > 0.05 || math.Abs(l.RMS-tc.rms) > 0.05 {
					t.Fatalf("level %+v, want peak %.2f rms %.2f", l, tc.peak, tc.rms)
				}
			}
		})
	}
}

// Chunks of any size make the same windows, and int16 and float chunks the same levels.
func TestWindowsAcrossChunks(t *testing.T) {
	const rate = 44100
	s := sine(rate, rate, 440, 0.5, 1) // one second
	i16 := make([]int16, len(s))
	for i, v := range s {
		i16[i] = int16(v * 32767)
	}
	var a, b []Level
	ma, mb := NewMeter(rate, 50*time.Millisecond), NewMeter(rate, 50*time.Millisecond)
	for i := 0; i < len(s); i += 441 {
		ma.AddWave(&wave.Float32Interleaved{Data: s[i : i+441], Size: wave.ChunkInfo{Len: 441, Channels: 1, SamplingRate: rate}}, func(l Level) { a = append(a, l) })
	}
	for i := 0; i < len(i16); i += 1000 {
		end := min(len(i16), i+1000)
		mb.AddWave(&wave.Int16Interleaved{Data: i16[i:end], Size: wave.ChunkInfo{Len: end - i, Channels: 1, SamplingRate: rate}}, func(l Level) { b = append(b, l) })
	}
	if len(a) != 20 || len(b) != 20 {
		t.Fatalf("%d and %d levels from one second, want 20", len(a), len(b))
	}
	for i := range a {
		if math.Abs(a[i].RMS-b[i].RMS) > 0.01 || math.Abs(a[i].Peak-b[i].Peak) > 0.01 {
			t.Fatalf("window %d: float %+v, int16 %+v", i, a[i], b[i])
		}
	}
}

func TestFraction(t *testing.T) {
	for _, tc := range []struct{ db, want float64 }{{Floor, 0}, {-60, 0}, {-30, 0.5}, {0, 1}, {3, 1}} {
		if got := Fraction(tc.db); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Fraction(%v) = %v, want %v", tc.db, got, tc.want)
		}
	}
}
