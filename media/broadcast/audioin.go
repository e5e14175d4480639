package broadcast

import (
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/internal/resample"
	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/wave"
)

// opusRate is the rate the Opus encoder runs at; every microphone is resampled to it.
const opusRate = 48000

// gapThreshold is how far the sound may stray from the capture clock before it is
// treated as lost (a gap in the timestamps) or as surplus (samples dropped), instead of
// being steered back by trimming the resampling ratio. It is above the stamper's step
// (stepMin, 50 ms): smaller steps are never seen as steps, and are steered away.
const gapThreshold = 60 * time.Millisecond

// steerSpan is how long steering takes to remove an error: the ratio is trimmed by
// error/steerSpan (at most ±maxSteer): 0.1 % for the 4 ms of scheduling error it
// usually corrects, inaudible; more only while a drifting device's rate is being learnt.
const (
	steerSpan = 4 * time.Second
	maxSteer  = 0.02
	// rateSmooth is the time constant over which the stamper's rate estimate reaches
	// the resampling ratio: a device's clock drifts slowly, a busy machine's scheduling
	// jumps, and only the first should change the pitch.
	rateSmooth = 2 * time.Second
)

// audioIn turns a microphone's sound into what the Opus encoder takes: mono (channels
// averaged), 48 kHz (resampled from whatever rate the device runs at: 44.1 kHz is common),
// float32, and on one timeline with the pictures. The timeline is sample-exact: output
// sample o is at start + o/48 kHz, so Opus packets are stamped 20 ms apart and never
// overlap. The device's clock is followed by trimming the resampling ratio with the
// stamper's rate estimate and a small steer towards the stamper's map; where the device
// really lost sound (the map jumps ahead by more than gapThreshold), the timeline jumps
// too, and the gap is counted. Where the device delivered more than real time (the map
// falls behind by more than gapThreshold), the surplus input is dropped and counted.
type audioIn struct {
	st     *audioStamper
	rs     *resample.Resampler
	inRate int

	scale   float64 // smoothed device rate (stamper's Scale)
	fed     int64   // device samples read (including dropped surplus)
	out     int64   // output samples produced
	started bool
	bps     []breakpoint // timeline steps, oldest first
	held    []float32    // mono sound read before the timeline started (at most 2 s)
	ended   error        // the device's error, returned once the held sound went out

	gaps, lostNs, skippedNs atomic.Int64
}

// breakpoint: output sample `sample` is at capture time at; later samples follow at
// 48 kHz until the next breakpoint.
type breakpoint struct {
	sample int64
	at     time.Duration
}

func newAudioIn(st *audioStamper) *audioIn { return &audioIn{st: st} }

// at is the capture time of output sample o (o at or after the oldest breakpoint).
func (a *audioIn) at(o int64) time.Duration {
	bp := a.bps[0]
	for _, b := range a.bps[1:] {
		if b.sample > o {
			break
		}
		bp = b
	}
	return bp.at + time.Duration((o-bp.sample)*int64(time.Second)/opusRate)
}

// PTS is the capture time of output sample o. Earlier breakpoints are forgotten: PTS is
// asked in increasing order.
func (a *audioIn) PTS(o int64) time.Duration {
	for len(a.bps) > 1 && a.bps[1].sample <= o {
		a.bps = a.bps[1:]
	}
	return a.at(o)
}

// Read implements audio.Reader. It is called by the encoder's goroutine only.
func (a *audioIn) Read() (wave.Audio, func(), error) {
	for {
		if a.ended != nil {
			return nil, func() {}, a.ended
		}
		chunk, release, err := a.st.Read()
		var in []float32
		switch {
		case err != nil && (a.started || len(a.held) == 0):
			return chunk, release, err
		case err != nil:
			// The sound ended within the first window (a recording or a broadcast shorter
			// than half a second): the held sound goes out on the map as it stands, then
			// the error. Else such a stream had no sound at all.
			if release != nil {
				release()
			}
			a.ended = err
			in, a.held = a.held, nil
		default:
			info := chunk.ChunkInfo()
			in = toMono(chunk)
			release()
			if a.rs == nil {
				a.inRate = info.SamplingRate
				if a.inRate <= 0 {
					a.inRate = a.st.rate
				}
				a.rs = resample.New(a.inRate, opusRate)
			}
		}
		if !a.started && a.ended == nil {
			// The first window's sound is held until the stamper has measured it. The map's
			// anchor is the first chunk's arrival, late by however long the start took (tens
			// of milliseconds on a busy machine); the window's earliest arrival corrects it.
			// Starting the timeline after that correction puts it where the sound was
			// captured, instead of steering the pitch for seconds to get there. The held sound
			// then goes out at once: only the stream's first half second is late.
			a.held = append(a.held, in...)
			if !a.st.Measured() && len(a.held) < 2*a.inRate {
				continue
			}
			in, a.held = a.held, nil
		}
		base := a.fed
		a.fed += int64(len(in))
		// The device sample the next output sample will be made from, and where the
		// stamper's map puts it.
		next := float64(base) - a.rs.Pending()
		want := a.st.PTS(int64(next))
		if !a.started {
			a.bps = []breakpoint{{0, max(0, want)}}
			a.started = true
			if want < 0 {
				// The first chunk began before the capture clock's zero: its sound from
				// before then is not part of the stream (timestamps start at 0).
				n := min(len(in), int(int64(-want)*int64(a.inRate)/int64(time.Second)))
				in = in[n:]
				want = 0
			}
		}
		e := want - a.at(a.out)
		switch {
		case e > gapThreshold:
			// Sound was lost: the timeline jumps to where the map says we are.
			a.bps = append(a.bps, breakpoint{a.out, a.at(a.out) + e})
			a.gaps.Add(1)
			a.lostNs.Add(int64(e))
			e = 0
		case e < -gapThreshold:
			// More sound than time: drop the surplus from this chunk.
			n := min(len(in), int(int64(-e)*int64(a.inRate)/int64(time.Second)))
			in = in[n:]
			a.skippedNs.Add(int64(n) * int64(time.Second) / int64(a.inRate))
			e = 0
		}
		if a.scale == 0 {
			a.scale = 1
		}
		a.scale += (a.st.Scale() - a.scale) * min(1, float64(len(in))/float64(a.inRate)/rateSmooth.Seconds())
		steer := min(maxSteer, max(-maxSteer, float64(e)/float64(steerSpan)))
		a.rs.Trim(a.scale * (1 + steer))
		out := a.rs.Process(in, make([]float32, 0, len(in)*opusRate/a.inRate+8))
		if len(out) == 0 {
			continue
		}
		a.out += int64(len(out))
		w := &wave.Float32Interleaved{Data: out, Size: wave.ChunkInfo{Len: len(out), Channels: 1, SamplingRate: opusRate}}
		return w, func() {}, nil
	}
}

var _ audio.Reader = (*audioIn)(nil)

// toMono averages a chunk's channels into float32 samples.
func toMono(c wave.Audio) []float32 {
	info := c.ChunkInfo()
	out := make([]float32, info.Len)
	ch := max(1, info.Channels)
	inv := 1 / float32(ch)
	switch w := c.(type) {
	case *wave.Float32Interleaved:
		for i := range out {
			var s float32
			for _, v := range w.Data[i*ch : i*ch+ch] {
				s += v
			}
			out[i] = s * inv
		}
	case *wave.Int16Interleaved:
		for i := range out {
			var s float32
			for _, v := range w.Data[i*ch : i*ch+ch] {
				s += float32(v)
			}
			out[i] = s * inv / 32768
		}
	default:
		for i := range out {
			var s float32
			for k := 0; k < ch; k++ {
				s += float32(float64(c.At(i, k).Int()) / (1 << 32)) // Sample.Int's scale
			}
			out[i] = s * inv
		}
	}
	return out
}
