// Package resample converts mono sound between sample rates with a windowed-sinc
// polyphase filter whose ratio may be trimmed while it runs (to follow a sound card whose
// clock drifts against the capture clock).
//
// Why our own: the Go modules on offer either wrap libsoxr or libsamplerate through cgo
// (a second C library to ship for one filter), or are fixed-ratio only (zaf/resample is
// cgo; go-audio/audio's resampling is linear interpolation, which aliases audibly at
// 44.1 → 48 kHz). What we need is small: one channel, float32, a ratio near one that can
// be nudged by a fraction of a percent. A 2×16-zero-crossing Blackman-windowed sinc,
// tabulated at 512 phases with linear interpolation between them, keeps a tone's
// frequency and level (the tests) and costs about 70 multiply-adds an output sample
// (3.4 M a second at 48 kHz).
package resample

import (
	"math"
)

const (
	zeroCrossings = 16  // each side of the centre, at the filter's cut-off
	phases        = 512 // table rows between two input samples
)

// Resampler converts a stream of mono samples from one rate to another. It is not safe
// for concurrent use.
type Resampler struct {
	step  float64 // input samples per output sample, before Trim
	trim  float64
	half  int // taps each side of the centre
	table []float32
	buf   []float32 // input not yet consumed, with half-1 samples of history before pos
	pos   float64   // position of the next output sample in buf
}

// New prepares a resampler from inRate to outRate (samples a second).
func New(inRate, outRate int) *Resampler {
	r := &Resampler{step: float64(inRate) / float64(outRate), trim: 1}
	// Cut-off just below the lower Nyquist frequency, relative to the input's.
	fc := 0.95 * min(1, float64(outRate)/float64(inRate))
	r.half = int(math.Ceil(zeroCrossings / fc))
	n := 2 * r.half
	r.table = make([]float32, (phases+1)*n)
	for p := 0; p <= phases; p++ {
		f := float64(p) / phases
		row := r.table[p*n : (p+1)*n]
		var sum float64
		for k := range row {
			x := float64(k-(r.half-1)) - f // distance from the output position, in input samples
			v := fc * sinc(fc*x) * blackman(x/float64(r.half))
			row[k] = float32(v)
			sum += v
		}
		for k := range row { // unity gain at DC for every phase
			row[k] = float32(float64(row[k]) / sum)
		}
	}
	// History of silence before the first sample, so output 0 lines up with input 0.
	r.buf = make([]float32, r.half-1, 4096)
	r.pos = float64(r.half - 1)
	return r
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// blackman is the Blackman window over -1..1 (zero outside).
func blackman(x float64) float64 {
	if x <= -1 || x >= 1 {
		return 0
	}
	t := (x + 1) / 2
	return 0.42 - 0.5*math.Cos(2*math.Pi*t) + 0.08*math.Cos(4*math.Pi*t)
}

// Trim scales the output rate: 1.001 makes 0.1 % more output samples for the same input
// (the input is read as if it were played 0.1 % slower). Kept within ±10 %.
func (r *Resampler) Trim(f float64) { r.trim = min(1.1, max(0.9, f)) }

// Ratio is the current number of output samples per input sample.
func (r *Resampler) Ratio() float64 { return r.trim / r.step }

// Pending is how many input samples have been handed over beyond the position of the
// next output sample (the filter's look-ahead, plus what the next call will use).
func (r *Resampler) Pending() float64 { return float64(len(r.buf)) - r.pos }

// Process resamples in and appends the output to out. Output lags the input by the
// filter's half-width (about 16 input samples), which it keeps for the next call.
func (r *Resampler) Process(in, out []float32) []float32 {
	r.buf = append(r.buf, in...)
	n := 2 * r.half
	step := r.step / r.trim
	for {
		i := int(r.pos)
		start := i - (r.half - 1)
		if start+n > len(r.buf) {
			break
		}
		f := r.pos - float64(i)
		pf := f * phases
		p := int(pf)
		a := float32(pf - float64(p))
		t0 := r.table[p*n : (p+1)*n]
		t1 := r.table[(p+1)*n : (p+2)*n]
		x := r.buf[start : start+n]
		var acc float32
		for k, v := range x {
			acc += v * (t0[k] + a*(t1[k]-t0[k]))
		}
		out = append(out, acc)
		r.pos += step
	}
	// Keep the history the next output needs.
	drop := int(r.pos) - (r.half - 1)
	if drop > 0 {
		drop = min(drop, len(r.buf))
		r.buf = append(r.buf[:0], r.buf[drop:]...)
		r.pos -= float64(drop)
	}
	return out
}
