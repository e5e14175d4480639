package playback

import (
	"sync"
	"time"

	"github.com/filecoin-project/go-clock"
)

// jitterBuffer holds decoded PCM between the block reader and the audio output, and is
// the master clock: the clock is the capture timestamp of the sample leaving the
// loudspeaker. It starts playing once target is buffered. Live, when more than max is
// buffered (the reader caught up after joining, or the output stalled) it drops the oldest
// sound down to target (at once while it is catching up after joining), so the lag behind
// the live edge stays bounded; in a replay the
// reader waits instead (full). When it runs dry it plays silence, the clock stops, and it
// waits for target again. A replay's reader that cannot read on (its pictures wait for the
// clock) puts silence in for the stretch it has read that has no sound (fillGap), so that
// the clock goes on; sound that comes later for part of it replaces what is not played yet.
type jitterBuffer struct {
	rate, channels int
	target, max    int // frames (samples per channel)
	latency        time.Duration
	clk            clock.Clock
	live           bool // drop the oldest on overflow

	mu       sync.Mutex
	chunks   []pcmChunk
	buffered int // frames
	playing  bool
	behind   bool // the reader was catching up at the last push: do not start yet
	// The clock: fillPTS is the capture time of the first sample handed to the output at
	// lastFill, fillDur how much sound that fill held.
	fillPTS  time.Duration
	fillDur  time.Duration
	lastFill time.Time
	valid    bool
	frozen   time.Duration
	// waitBehind is when the target was first buffered while the reader was behind.
	waitBehind time.Time
	// end is just past the newest sound pushed (or silence put in), when hasEnd; gapEnd is
	// just past the silence put in since the last sound pushed (0: none).
	end, gapEnd time.Duration
	hasEnd      bool
	zeros       []float32 // the silence put in: never written
	gapFilled   time.Duration

	underruns    int64
	droppedAudio time.Duration
}

type pcmChunk struct {
	pts time.Duration
	pcm []float32 // interleaved
	off int       // samples (interleaved) already played
	gap bool      // silence put in where the stream has no sound
}

func newJitterBuffer(rate, channels int, target, max time.Duration, live bool, clk clock.Clock) *jitterBuffer {
	return &jitterBuffer{
		live: live,
		rate: rate, channels: channels,
		target: int(int64(target) * int64(rate) / int64(time.Second)),
		max:    int(int64(max) * int64(rate) / int64(time.Second)),
		clk:    clk,
	}
}

// setLatency sets the output's delay, which the clock subtracts.
func (j *jitterBuffer) setLatency(d time.Duration) {
	j.mu.Lock()
	j.latency = d
	j.mu.Unlock()
}

func (j *jitterBuffer) frames(d int) time.Duration {
	return time.Duration(int64(d) * int64(time.Second) / int64(j.rate))
}

// samples is how many frames (samples per channel) d holds, rounded down.
func (j *jitterBuffer) samples(d time.Duration) int {
	return int(int64(d) * int64(j.rate) / int64(time.Second))
}

// push adds decoded sound captured at pts. behind says the reader is still catching up
// with the live edge (more blocks are already there): then anything over the target is
// dropped at once, so that playback settles at the target's lag rather than anywhere
// up to max.
func (j *jitterBuffer) push(pts time.Duration, pcm []float32, behind bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.behind = behind && j.live
	if j.gapEnd > 0 && j.gapEnd == j.end && pts > j.end {
		// The sound comes back after silence was put in for its absence (the reader read
		// on up to here): the silence reaches it, so the clock does not jump.
		j.addSilence(j.end, j.samples(pts-j.end))
	}
	if pts < j.gapEnd {
		if pts, pcm = j.replaceGap(pts, pcm); len(pcm) == 0 {
			return
		}
	}
	j.gapEnd = 0
	j.end, j.hasEnd = pts+j.frames(len(pcm)/j.channels), true
	j.chunks = append(j.chunks, pcmChunk{pts: pts, pcm: pcm})
	j.buffered += len(pcm) / j.channels
	if j.live && (j.buffered > j.max || behind && j.buffered > j.target) {
		drop := j.buffered - j.target
		j.droppedAudio += j.frames(drop)
		for drop > 0 && len(j.chunks) > 0 {
			c := &j.chunks[0]
			left := (len(c.pcm) - c.off) / j.channels
			if left <= drop {
				drop -= left
				j.buffered -= left
				j.chunks = j.chunks[1:]
				continue
			}
			c.off += drop * j.channels
			j.buffered -= drop
			drop = 0
		}
	}
}

// replaceGap makes room for sound at pts where silence was put in (fillGap): the silence not
// yet played from pts on goes, and what was played of it already is cut from the start of
// the sound (counted as dropped), so that the clock never goes back.
func (j *jitterBuffer) replaceGap(pts time.Duration, pcm []float32) (time.Duration, []float32) {
	for len(j.chunks) > 0 {
		c := &j.chunks[len(j.chunks)-1]
		if !c.gap {
			break
		}
		keep := min(max(j.samples(pts-c.pts), 0)*j.channels, len(c.pcm))
		keep = max(keep, c.off) // what was played stays played
		gone := (len(c.pcm) - keep) / j.channels
		j.buffered -= gone
		j.gapFilled -= j.frames(gone)
		c.pcm = c.pcm[:keep]
		if c.off < len(c.pcm) {
			break // this silence, before pts, is still to play
		}
		j.chunks = j.chunks[:len(j.chunks)-1]
	}
	// Where the sound held or played ends now.
	var end time.Duration
	switch {
	case len(j.chunks) > 0:
		c := j.chunks[len(j.chunks)-1]
		end = c.pts + j.frames(len(c.pcm)/j.channels)
	case j.valid:
		end = j.fillPTS + j.fillDur
	default:
		return pts, pcm
	}
	if cut := j.samples(end-pts) * j.channels; cut > 0 {
		cut = min(cut, len(pcm))
		j.droppedAudio += j.frames(cut / j.channels)
		pts += j.frames(cut / j.channels)
		pcm = pcm[cut:]
	}
	return pts, pcm
}

// fillGap puts silence in where a replay's stream has no sound, so that the clock goes on
// through it: the reader has read up to a picture at to and cannot read on until pictures
// play, so no sound before to is coming (the broadcaster lost it for a while, or its sound
// starts later or ended early). The silence starts where the sound pushed ends (at from when
// there has been none) and reaches to, and the target when not playing (so that playing
// starts), within max; none is put in while the target is buffered and playing. When the
// sound held already reaches to, silence is put in only to start playing, and only if
// mustPlay (the reader waits on pictures that wait on the clock). It returns how much was
// put in.
func (j *jitterBuffer) fillGap(from, to time.Duration, mustPlay bool) time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.playing && j.buffered >= j.target {
		return 0
	}
	start := from
	if j.hasEnd {
		start = j.end
	}
	if j.samples(to-start) <= 0 && (j.playing || !mustPlay) {
		return 0 // the sound held reaches to (within a sample)
	}
	if !j.playing {
		to = max(to, start+j.frames(j.target-j.buffered))
	}
	return j.addSilence(start, min(j.samples(to-start), j.max-j.buffered))
}

// addSilence appends n frames of silence at pts (chunks of one shared buffer of zeros).
func (j *jitterBuffer) addSilence(pts time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	if j.zeros == nil {
		j.zeros = make([]float32, max(j.max, j.rate/10)*j.channels)
	}
	var d time.Duration
	for left := n; left > 0; {
		k := min(left, len(j.zeros)/j.channels)
		j.chunks = append(j.chunks, pcmChunk{pts: pts + d, pcm: j.zeros[:k*j.channels], gap: true})
		left -= k
		d = j.frames(n - left)
	}
	j.buffered += n
	j.end, j.hasEnd = pts+d, true
	j.gapEnd = j.end
	j.gapFilled += d
	return d
}

// filled is the silence put in for missing sound and kept (not replaced by sound).
func (j *jitterBuffer) filled() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.gapFilled
}

// reset drops everything buffered (a live player jumping ahead after falling behind): the
// clock holds where it is, and playing starts again as when joining, once the target is
// buffered from the new place and the reader is at the live edge.
func (j *jitterBuffer) reset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.valid && j.playing {
		j.frozen = j.fillPTS + min(j.clk.Now().Sub(j.lastFill), j.fillDur) - j.latency
	}
	j.droppedAudio += j.frames(j.buffered)
	j.chunks, j.buffered, j.playing, j.behind, j.waitBehind = nil, 0, false, j.live, time.Time{}
	j.hasEnd, j.gapEnd = false, 0
}

// fill is the audio output's pull.
func (j *jitterBuffer) fill(out []float32) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.clk.Now()
	if !j.playing {
		if j.buffered < j.target || j.buffered == 0 {
			j.waitBehind = time.Time{}
			clear(out)
			return
		}
		if j.behind {
			// A reader slower than real time (a starved decoder) never reaches the edge:
			// after waiting max with the target buffered, play from where it is.
			if j.waitBehind.IsZero() {
				j.waitBehind = now
			}
			if now.Sub(j.waitBehind) < j.frames(j.max) {
				clear(out)
				return
			}
		}
		j.playing, j.waitBehind = true, time.Time{}
	}
	n := 0
	first := true
	for n < len(out) {
		if len(j.chunks) == 0 {
			// Ran dry: silence, freeze the clock, rebuffer.
			clear(out[n:])
			j.playing = false
			j.underruns++
			if first {
				j.frozen = j.fillPTS + j.fillDur - j.latency
			}
			break
		}
		c := &j.chunks[0]
		if first {
			j.fillPTS = c.pts + j.frames(c.off/j.channels)
			first = false
		}
		k := copy(out[n:], c.pcm[c.off:])
		c.off += k
		n += k
		j.buffered -= k / j.channels
		if c.off == len(c.pcm) {
			j.chunks = j.chunks[1:]
		}
	}
	if !first {
		j.fillDur = j.frames(n / j.channels)
		j.lastFill = now
		j.valid = true
		if !j.playing {
			j.frozen = j.fillPTS + j.fillDur - j.latency
		}
	}
}

// clock returns the capture time of the sound playing now; ok is false before the first
// sound played.
func (j *jitterBuffer) clock() (time.Duration, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.valid {
		return 0, false
	}
	if !j.playing {
		return j.frozen, true
	}
	return j.fillPTS + min(j.clk.Now().Sub(j.lastFill), j.fillDur) - j.latency, true
}

func (j *jitterBuffer) stats() (underruns int64, dropped time.Duration, buffered time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.underruns, j.droppedAudio, j.frames(j.buffered)
}

// full reports whether a replay's reader should wait.
func (j *jitterBuffer) full() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.buffered >= j.max
}

// playsOn reports whether sound is buffered that will play: it is playing, or holds the
// target and starts at the output's next pull.
func (j *jitterBuffer) playsOn() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.buffered > 0 && (j.playing || j.buffered >= j.target)
}

func (j *jitterBuffer) isPlaying() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.playing
}
