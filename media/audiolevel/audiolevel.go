// Package audiolevel measures how loud sound is, for a level meter: the peak and the RMS of
// each short window of samples, in dBFS (0 dBFS is a full-scale square wave's level; a
// full-scale sine has a peak of 0 and an RMS of −3 dBFS).
package audiolevel

import (
	"math"
	"time"

	"github.com/pion/mediadevices/pkg/wave"
)

// Floor is the level reported for silence (digital zero) and the bottom of every level:
// quieter than anything a microphone records.
const Floor = -100.0

// Level is one window's loudness in dBFS, from Floor to 0 (a clipping window may read a
// little above 0 for float samples beyond full scale).
type Level struct {
	Peak float64 // the largest sample's magnitude
	RMS  float64 // the root mean square of the samples (all channels)
}

// Silent is the level of digital silence.
var Silent = Level{Peak: Floor, RMS: Floor}

// DBFS is an amplitude (1 is full scale) in dBFS, at least Floor.
func DBFS(amplitude float64) float64 {
	if amplitude <= 0 {
		return Floor
	}
	return max(Floor, 20*math.Log10(amplitude))
}

// MeterRange is the span a meter shows: levels from −MeterRange dBFS (empty) to 0 (full).
const MeterRange = 60.0

// Fraction is where a level sits on a meter drawn in decibels from −MeterRange (0) to
// 0 dBFS (1), clamped to [0, 1].
func Fraction(dbfs float64) float64 {
	return min(1, max(0, (dbfs+MeterRange)/MeterRange))
}

// Meter turns a stream of samples into one Level per window. It is not safe for concurrent
// use: one goroutine feeds it.
type Meter struct {
	window int // samples per channel in a window
	n      int // samples per channel so far in this window
	sumSq  float64
	count  int // samples (all channels) in sumSq
	peak   float64
}

// NewMeter measures windows of `every` (50 ms gives 20 levels a second) of sound at
// sampleRate.
func NewMeter(sampleRate int, every time.Duration) *Meter {
	w := int(int64(sampleRate) * int64(every) / int64(time.Second))
	return &Meter{window: max(1, w)}
}

// Add measures interleaved float samples (full scale ±1) of the given number of channels
// and calls emit with each window completed.
func (m *Meter) Add(samples []float32, channels int, emit func(Level)) {
	ch := max(1, channels)
	for i := 0; i+ch <= len(samples); i += ch {
		for _, v := range samples[i : i+ch] {
			m.sample(float64(v))
		}
		m.frameDone(emit)
	}
}

// AddInt16 measures interleaved 16-bit samples.
func (m *Meter) AddInt16(samples []int16, channels int, emit func(Level)) {
	ch := max(1, channels)
	for i := 0; i+ch <= len(samples); i += ch {
		for _, v := range samples[i : i+ch] {
			m.sample(float64(v) / 32768)
		}
		m.frameDone(emit)
	}
}

// AddWave measures a chunk as mediadevices' microphones give it.
func (m *Meter) AddWave(c wave.Audio, emit func(Level)) {
	info := c.ChunkInfo()
	ch := max(1, info.Channels)
	switch w := c.(type) {
	case *wave.Float32Interleaved:
		m.Add(w.Data[:min(len(w.Data), info.Len*ch)], ch, emit)
	case *wave.Int16Interleaved:
		m.AddInt16(w.Data[:min(len(w.Data), info.Len*ch)], ch, emit)
	default:
		for i := 0; i < info.Len; i++ {
			for k := 0; k < ch; k++ {
				m.sample(float64(c.At(i, k).Int()) / (1 << 32)) // Sample.Int's scale, as media/broadcast reads it
			}
			m.frameDone(emit)
		}
	}
}

func (m *Meter) sample(v float64) {
	m.sumSq += v * v
	m.count++
	if v < 0 {
		v = -v
	}
	if v > m.peak {
		m.peak = v
	}
}

func (m *Meter) frameDone(emit func(Level)) {
	m.n++
	if m.n < m.window {
		return
	}
	l := Level{Peak: DBFS(m.peak), RMS: DBFS(math.Sqrt(m.sumSq / float64(max(1, m.count))))}
	m.n, m.sumSq, m.count, m.peak = 0, 0, 0, 0
	if emit != nil {
		emit(l)
	}
}
