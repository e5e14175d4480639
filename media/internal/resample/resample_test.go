package resample

import (
	"math"
	"testing"

	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
)

func tone(rate int, freq, amp float64, n, from int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(amp * math.Sin(2*math.Pi*freq*float64(from+i)/float64(rate)))
	}
	return out
}

// TestToneKeepsFrequencyAndLevel: tones through each common microphone rate to 48 kHz,
// in chunks of odd sizes, keep their frequency and level, and the number of samples is
// the rate ratio's.
func TestToneKeepsFrequencyAndLevel(t *testing.T) {
	for _, c := range []struct {
		in   int
		freq float64
	}{
		{44100, 440}, {44100, 1000}, {44100, 15000}, {48000, 1000}, {32000, 1000}, {16000, 3000}, {96000, 1000}, {22050, 5000},
	} {
		r := New(c.in, 48000)
		var out []float32
		total := 0
		for k := 0; total < 2*c.in; k++ {
			n := 441 + 37*(k%5)
			out = r.Process(tone(c.in, c.freq, 0.5, n, total), out)
			total += n
		}
		want := float64(total) * 48000 / float64(c.in)
		// The filter's half-width stays behind, waiting for the next input.
		if d := want - float64(len(out)); d < 0 || d > float64(r.half)*48000/float64(c.in)+2 {
			t.Errorf("%d Hz: %d samples out for %d in, want about %.0f", c.in, len(out), total, want)
		}
		body := out[1000 : len(out)-1000]
		f := testpattern.Frequency(body, 48000)
		rms := testpattern.RMS(body)
		t.Logf("%d Hz, %.0f Hz tone: %.2f Hz out, RMS %.4f", c.in, c.freq, f, rms)
		if math.Abs(f-c.freq) > c.freq*0.001 {
			t.Errorf("%d Hz: a %.0f Hz tone came out at %.2f Hz", c.in, c.freq, f)
		}
		if math.Abs(rms-0.5/math.Sqrt2) > 0.01 {
			t.Errorf("%d Hz: level %.4f RMS, want %.4f", c.in, rms, 0.5/math.Sqrt2)
		}
	}
}

// TestAliasRejected: a tone above the output's Nyquist frequency (30 kHz from 96 kHz) is
// filtered out instead of folding back into the audible band.
func TestAliasRejected(t *testing.T) {
	r := New(96000, 48000)
	out := r.Process(tone(96000, 30000, 0.5, 96000, 0), nil)
	if rms := testpattern.RMS(out[500 : len(out)-500]); rms > 0.005 {
		t.Fatalf("a 30 kHz tone left RMS %.4f at 48 kHz", rms)
	}
}

// TestTrim: trimming the ratio by +1 % gives 1 % more output for the same input.
func TestTrim(t *testing.T) {
	a, b := New(44100, 48000), New(44100, 48000)
	b.Trim(1.01)
	in := tone(44100, 1000, 0.5, 44100, 0)
	na, nb := len(a.Process(in, nil)), len(b.Process(in, nil))
	if r := float64(nb) / float64(na); math.Abs(r-1.01) > 0.001 {
		t.Fatalf("trim 1.01 gave %.4f× the samples", r)
	}
	if p := b.Pending(); p < 0 || p > 40 {
		t.Fatalf("%.1f input samples pending, the filter holds about 17", p)
	}
}
