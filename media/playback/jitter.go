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
// waits for target again.
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

	underruns    int64
	droppedAudio time.Duration
}

type pcmChunk struct {
	pts time.Duration
	pcm []float32 // interleaved
	off int       // samples (interleaved) already played
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

// push adds decoded sound captured at pts. behind says the reader is still catching up
// with the live edge (more blocks are already there): then anything over the target is
// dropped at once, so that playback settles at the target's lag rather than anywhere
// up to max.
func (j *jitterBuffer) push(pts time.Duration, pcm []float32, behind bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.behind = behind && j.live
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

func (j *jitterBuffer) isPlaying() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.playing
}
