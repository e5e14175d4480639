// Package broadcast is the broadcaster's media pipeline: it pulls pictures and sound from
// capture sources, stamps both from one capture clock, encodes VP8 (media/vp8) and Opus
// (mediadevices' encoder), and frames the result as blocks (media/block) for a BlockSink,
// which the app backs with the signed feed.
package broadcast

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/filecoin-project/go-clock"
	mdcodec "github.com/pion/mediadevices/pkg/codec"
	mdopus "github.com/pion/mediadevices/pkg/codec/opus"
	"github.com/pion/mediadevices/pkg/prop"
)

// BlockSink receives a stream's blocks in order: the header (block 0), then media blocks.
// sync marks the blocks a viewer can start playing at (the header, and every media block
// that begins with a key frame); the feed keeps it as opaque metadata so that a viewer
// finds the newest one without reading blocks. block is not retained by the caller after
// Append returns, and the sink must not modify it.
type BlockSink interface {
	Append(ctx context.Context, block []byte, sync bool) error
}

// Config configures a Broadcaster.
type Config struct {
	Preset Preset
	// Video and Audio are the sources; either may be nil, not both. Run closes them when
	// it returns.
	Video *capture.VideoSource
	Audio *capture.AudioSource
	// Description goes into the stream header (at most block.MaxDescription bytes).
	Description string
	Sink        BlockSink
	// GroupDuration is the most media a block holds after its first video frame; 0 puts
	// each video frame in its own block (lowest latency: blocks of 1 frame plus the audio
	// captured alongside). Audio-only blocks are cut every 100 ms.
	GroupDuration time.Duration
	// Clock is the time source, default clock.New(). Run reads Now once as the
	// stream's start (the header's Start) and the capture clock is Since that reading:
	// with the real clock, Now carries Go's monotonic reading, so the capture clock is
	// monotonic whatever happens to the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// audioBlockSpan is how much audio an audio-only block gathers before it is appended.
const audioBlockSpan = 100 * time.Millisecond

// unitQueue is the capacity of the queue from the encoders to the framer. When it is full
// the encoders wait (nothing is dropped here); the capture drivers then skip frames they
// cannot hand over.
const unitQueue = 64

// firstSoundWait bounds how long the first pictures wait for the first sound (twice the
// audio timeline's first window, audioin.go).
const firstSoundWait = 2 * stampWindow

// earlyAudio is how many audio units captured before the first picture are kept for the
// first block (64 Opus packets: 1.28 s). A camera normally delivers its first picture well
// within that; sound beyond it is dropped, oldest first, and counted in
// Stats.EarlyAudioDropped (the stream cannot start before its header, and the header
// waits for the picture size).
const earlyAudio = 64

// Stats counts what a broadcast produced.
type Stats struct {
	Blocks, Bytes              int64
	VideoFrames, KeyFrames     int64
	AudioPackets               int64
	VideoBytes, AudioBytes     int64
	LastVideoPTS, LastAudioPTS time.Duration // capture times of the newest units
	// RateDroppedFrames counts pictures the VP8 rate control skipped to hold the bit
	// rate (a very noisy or busy picture).
	RateDroppedFrames int64
	// EarlyAudioDropped counts audio packets captured before the first picture that
	// did not fit the earlyAudio bound and were dropped.
	EarlyAudioDropped int64
	// AudioGaps counts places where the microphone lost sound (its samples fell behind
	// the capture clock by more than 40 ms); AudioLost is their total length: the audio
	// timestamps jump by that much there, and nowhere else.
	AudioGaps int64
	AudioLost time.Duration
	// AudioSurplus is sound dropped because the microphone delivered more than real
	// time (its samples ran ahead of the capture clock by more than 40 ms).
	AudioSurplus time.Duration
}

// Run's errors when a source stops giving what it captures (a camera unplugged or taken by
// another program, a microphone gone), so a caller can say which one in words.
var (
	ErrVideoStopped = errors.New("the picture source stopped")
	ErrAudioStopped = errors.New("the sound source stopped")
)

// Broadcaster runs the pipeline. Create it with New, run it with Run.
type Broadcaster struct {
	cfg Config
	log *slog.Logger

	vmu  sync.Mutex
	vctl mdcodec.KeyFrameController
	venc *vp8.ReadEncoder
	ain  *audioIn

	stats struct {
		blocks, bytes, vframes, keys, apackets, vbytes, abytes, lastV, lastA atomic.Int64
		earlyDropped                                                         atomic.Int64
	}
}

// New checks cfg.
func New(cfg Config) (*Broadcaster, error) {
	if cfg.Video == nil && cfg.Audio == nil {
		return nil, errors.New("broadcast: neither video nor audio to send")
	}
	if cfg.Sink == nil {
		return nil, errors.New("broadcast: no block sink")
	}
	if cfg.Preset.Name == "" {
		cfg.Preset = Medium
	}
	if len(cfg.Description) > block.MaxDescription {
		return nil, fmt.Errorf("broadcast: description of %d bytes is longer than %d", len(cfg.Description), block.MaxDescription)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Broadcaster{cfg: cfg, log: log.With("component", "media/broadcast")}, nil
}

// ForceKeyFrame makes the next video frame a key frame (and so the start of a sync block).
func (b *Broadcaster) ForceKeyFrame() {
	b.vmu.Lock()
	defer b.vmu.Unlock()
	if b.vctl != nil {
		b.vctl.ForceKeyFrame()
	}
}

// Stats returns counters so far.
func (b *Broadcaster) Stats() Stats {
	st := Stats{
		Blocks: b.stats.blocks.Load(), Bytes: b.stats.bytes.Load(),
		VideoFrames: b.stats.vframes.Load(), KeyFrames: b.stats.keys.Load(),
		AudioPackets: b.stats.apackets.Load(),
		VideoBytes:   b.stats.vbytes.Load(), AudioBytes: b.stats.abytes.Load(),
		LastVideoPTS: time.Duration(b.stats.lastV.Load()), LastAudioPTS: time.Duration(b.stats.lastA.Load()),
		EarlyAudioDropped: b.stats.earlyDropped.Load(),
	}
	b.vmu.Lock()
	venc, ain := b.venc, b.ain
	b.vmu.Unlock()
	if venc != nil {
		if e := venc.Encoder(); e != nil {
			st.RateDroppedFrames = e.Dropped()
		}
	}
	if ain != nil {
		st.AudioGaps = ain.gaps.Load()
		st.AudioLost = time.Duration(ain.lostNs.Load())
		st.AudioSurplus = time.Duration(ain.skippedNs.Load())
	}
	return st
}

// Run captures, encodes and appends blocks until ctx ends (then it returns nil) or
// something fails. It closes
// the sources and waits for its goroutines before returning. The header is appended once
// the first video frame has fixed the picture size.
func (b *Broadcaster) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	// The capture clock: time since the start, monotonic (see Config.Clock). The stages
	// that stamp (the VP8 builder, the audio stamper, the decimator) take it as a
	// function, the smallest thing they need.
	startWall := b.cfg.Clock.Now()
	clock := func() time.Duration { return b.cfg.Clock.Since(startWall) }

	units := make(chan block.Unit, unitQueue)
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	var videoSize chan [2]int
	if b.cfg.Video != nil {
		videoSize = make(chan [2]int, 1)
		enc, err := b.videoEncoder(clock)
		if err != nil {
			b.closeSources()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer enc.Close()
			errc <- b.runVideo(ctx, enc, units, videoSize)
		}()
	}
	if b.cfg.Audio != nil {
		enc, in, err := b.audioEncoder(clock)
		if err != nil {
			cancel()
			b.closeSources()
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer enc.Close()
			errc <- b.runAudio(ctx, enc, in, units)
		}()
	}
	encDone := make(chan struct{})
	go func() { // owned by Run: ends when the encoders have, which Run waits for below
		wg.Wait()
		close(encDone)
	}()
	err := b.frame(ctx, startWall, units, videoSize, errc, encDone)
	cancel()
	b.closeSources()
	wg.Wait()
	if parent.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		err = nil // stopped by the caller
	}
	return err
}

func (b *Broadcaster) closeSources() {
	if b.cfg.Video != nil {
		b.cfg.Video.Close()
	}
	if b.cfg.Audio != nil {
		b.cfg.Audio.Close()
	}
}

func (b *Broadcaster) videoEncoder(clock func() time.Duration) (*vp8.ReadEncoder, error) {
	p := b.cfg.Preset
	src := b.cfg.Video
	builder := &vp8.Builder{
		Config: vp8.Config{
			FrameRateNum: p.FrameRate, FrameRateDen: 1,
			BitRate: p.VideoBitRate, KeyFrameInterval: p.keyFrameFrames(), KeyFrameEvery: p.KeyFrameInterval,
			CPUUsed: p.CPUUsed,
		},
		Clock: clock,
	}
	r := newDecimator(src.Reader, clock, time.Second/time.Duration(p.FrameRate))
	rc, err := builder.BuildVideoEncoder(r, prop.Media{Video: prop.Video{Width: src.Width, Height: src.Height}})
	if err != nil {
		return nil, fmt.Errorf("broadcast: starting the VP8 encoder: %w", err)
	}
	re := rc.(*vp8.ReadEncoder)
	b.vmu.Lock()
	b.vctl = re.Controller().(mdcodec.KeyFrameController)
	b.venc = re
	b.vmu.Unlock()
	return re, nil
}

func (b *Broadcaster) runVideo(ctx context.Context, enc *vp8.ReadEncoder, out chan<- block.Unit, size chan<- [2]int) error {
	dur := time.Second / time.Duration(b.cfg.Preset.FrameRate)
	first := true
	for {
		f, err := enc.ReadFrame()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("broadcast: video: %w: %w", ErrVideoStopped, err)
		}
		if first {
			c := enc.Encoder().Config()
			size <- [2]int{c.Width, c.Height}
			first = false
		}
		if len(f.Data) == 0 {
			continue // rate control dropped this picture (counted by the encoder)
		}
		u := block.Unit{Track: block.Video, Key: f.Key, PTS: f.Capture, Duration: dur, Payload: f.Data}
		if !send(ctx, out, u) {
			return ctx.Err()
		}
		b.stats.vframes.Add(1)
		b.stats.vbytes.Add(int64(len(f.Data)))
		if f.Key {
			b.stats.keys.Add(1)
		}
		b.stats.lastV.Store(int64(f.Capture))
	}
}

// send hands u to the framer, and reports whether it did. Once ctx has ended (a stop), a
// unit still goes while the queue has room: the framer takes what the encoders hand over
// until they end (frame), and a select between the two would drop about half of it.
func send(ctx context.Context, out chan<- block.Unit, u block.Unit) bool {
	select {
	case out <- u:
		return true
	default:
	}
	select {
	case out <- u:
		return true
	case <-ctx.Done():
		return false
	}
}

const opusFrame = 20 * time.Millisecond

func (b *Broadcaster) audioEncoder(clock func() time.Duration) (mdcodec.ReadCloser, *audioIn, error) {
	src := b.cfg.Audio
	params, err := mdopus.NewParams()
	if err != nil {
		return nil, nil, err
	}
	params.BitRate = b.cfg.Preset.AudioBitRate
	params.Latency = mdopus.Latency20ms
	in := newAudioIn(newAudioStamper(src.Reader, clock, src.SampleRate, b.log))
	enc, err := params.BuildAudioEncoder(in, prop.Media{Audio: prop.Audio{SampleRate: opusRate, ChannelCount: 1}})
	if err != nil {
		return nil, nil, fmt.Errorf("broadcast: starting the Opus encoder: %w", err)
	}
	b.vmu.Lock()
	b.ain = in
	b.vmu.Unlock()
	return enc, in, nil
}

func (b *Broadcaster) runAudio(ctx context.Context, enc mdcodec.ReadCloser, in *audioIn, out chan<- block.Unit) error {
	const frameSamples = int64(opusRate) * int64(opusFrame) / int64(time.Second)
	var k int64
	for {
		pkt, release, err := enc.Read()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("broadcast: audio: %w: %w", ErrAudioStopped, err)
		}
		// Packet k holds output samples k·960 to (k+1)·960: 20 ms after the previous
		// packet, or later where sound was lost (audioin.go).
		pts := in.PTS(k * frameSamples)
		u := block.Unit{Track: block.Audio, PTS: pts, Duration: opusFrame, Payload: append([]byte(nil), pkt...)}
		release()
		k++
		if !send(ctx, out, u) {
			return ctx.Err()
		}
		b.stats.apackets.Add(1)
		b.stats.abytes.Add(int64(len(u.Payload)))
		b.stats.lastA.Store(int64(pts))
	}
}

// frame gathers units into blocks and appends them.
func (b *Broadcaster) frame(ctx context.Context, startWall time.Time, units <-chan block.Unit, videoSize <-chan [2]int, errc <-chan error, encDone <-chan struct{}) error {
	p := b.cfg.Preset
	h := &block.Header{Start: startWall, Preset: p.Name, Description: b.cfg.Description}
	if b.cfg.Audio != nil {
		h.Audio = &block.AudioParams{Codec: block.CodecOpus, SampleRate: opusRate, Channels: 1, FrameDuration: opusFrame, BitRate: p.AudioBitRate}
	}
	var early []block.Unit // audio captured before the first picture fixed the size
	if videoSize != nil {
	wait:
		for {
			select {
			case sz := <-videoSize:
				h.Video = &block.VideoParams{Codec: block.CodecVP8, Width: sz[0], Height: sz[1], FrameRateNum: p.FrameRate, FrameRateDen: 1, BitRate: p.VideoBitRate, KeyFrameInterval: p.keyFrameFrames()}
				break wait
			case u := <-units:
				if len(early) == earlyAudio {
					// Bounded: the oldest goes (see earlyAudio).
					early = append(early[:0], early[1:]...)
					if b.stats.earlyDropped.Add(1) == 1 {
						b.log.Warn("no picture yet: dropping the oldest sound captured before it", "kept", earlyAudio)
					}
				}
				early = append(early, u)
			case err := <-errc:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	hb, err := h.MarshalBinary()
	if err != nil {
		return fmt.Errorf("broadcast: stream header: %w", err)
	}
	if err := b.append(ctx, hb, true); err != nil {
		return err
	}

	var pending []block.Unit
	var seq uint64
	var firstVideo time.Duration = -1
	var firstAudioAt time.Time
	flush := func(ctx context.Context) error {
		if len(pending) == 0 {
			return nil
		}
		seq++
		m := &block.Media{Seq: seq, Units: pending}
		data, err := m.MarshalBinary()
		if err != nil {
			return fmt.Errorf("broadcast: framing block %d: %w", seq, err)
		}
		sync := m.IsSync()
		if h.Video != nil {
			// With video, only a block that starts the picture afresh is a place to join.
			sync = firstVideo >= 0 && sync
		}
		pending = pending[:0:0]
		firstVideo = -1
		firstAudioAt = time.Time{}
		return b.append(ctx, data, sync)
	}
	addCtx := func(ctx context.Context, u block.Unit) error {
		if u.Track == block.Video {
			if u.Key {
				if err := flush(ctx); err != nil {
					return err
				}
			}
			pending = append(pending, u)
			if firstVideo < 0 {
				firstVideo = u.PTS
			}
			if u.PTS+u.Duration-firstVideo > b.cfg.GroupDuration || len(pending) >= block.MaxUnits/2 {
				return flush(ctx)
			}
			return nil
		}
		if len(pending) == 0 {
			firstAudioAt = time.Now()
		}
		pending = append(pending, u)
		if len(pending) >= block.MaxUnits/2 {
			return flush(ctx)
		}
		return nil
	}
	add := func(u block.Unit) error { return addCtx(ctx, u) }
	for _, u := range early {
		if err := add(u); err != nil {
			return err
		}
	}
	// The first pictures wait for the first sound, at most firstSoundWait (held, in order of
	// arrival): the audio timeline starts only once its first half second has been measured
	// (audioin.go), so its first packets come after the first pictures. Released, the held
	// units are framed in time order as if they had come so: the sound from before the first
	// picture makes the first block, as sound captured before the header does.
	waitSound := h.Audio != nil && h.Video != nil && len(early) == 0
	var held []block.Unit
	var heldSince time.Time
	firstHeldVideo := time.Duration(-1)
	release := func(ctx context.Context) error {
		waitSound = false
		slices.SortStableFunc(held, func(a, b block.Unit) int { return cmp.Compare(a.PTS, b.PTS) })
		for _, u := range held {
			if err := addCtx(ctx, u); err != nil {
				return err
			}
		}
		held = nil
		return nil
	}
	tick := time.NewTicker(audioBlockSpan / 4)
	defer tick.Stop()
	for {
		select {
		case u := <-units:
			if !waitSound {
				if err := add(u); err != nil {
					return err
				}
				continue
			}
			held = append(held, u)
			if u.Track == block.Video && firstHeldVideo < 0 {
				firstHeldVideo, heldSince = u.PTS, time.Now()
			}
			// Sound at or past the first picture: all that came before it is here (each
			// track arrives in order).
			if u.Track == block.Audio && (firstHeldVideo < 0 || u.PTS >= firstHeldVideo) || len(held) >= block.MaxUnits {
				if err := release(ctx); err != nil {
					return err
				}
			}
		case <-tick.C:
			if waitSound && !heldSince.IsZero() && time.Since(heldSince) >= firstSoundWait {
				// No sound yet: the pictures go out without it.
				if err := release(ctx); err != nil {
					return err
				}
			}
			// Audio waits for the next picture only briefly: when pictures stall (or there
			// are none), audio goes out on its own every audioBlockSpan.
			if firstVideo < 0 && !firstAudioAt.IsZero() && time.Since(firstAudioAt) >= audioBlockSpan {
				if err := flush(ctx); err != nil {
					return err
				}
			}
		case err := <-errc:
			if errors.Is(err, context.Canceled) {
				continue
			}
			return err
		case <-ctx.Done():
			// Append what was captured before the stop (what the encoders already
			// handed over included), with a short grace period.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			// Close the sources so that the encoders stop, and take every unit they
			// handed over until they have.
			b.closeSources()
			err := release(fctx)
			for done := false; err == nil; {
				select {
				case u := <-units:
					err = addCtx(fctx, u)
					continue
				case <-encDone:
					done = true
				case <-fctx.Done():
					err = fctx.Err()
				}
				if done && len(units) == 0 {
					break
				}
			}
			if err == nil {
				err = flush(fctx)
			}
			if err != nil {
				b.log.Warn("last block not stored", "err", err)
			}
			return ctx.Err()
		}
	}
}

func (b *Broadcaster) append(ctx context.Context, data []byte, sync bool) error {
	if err := b.cfg.Sink.Append(ctx, data, sync); err != nil {
		return fmt.Errorf("broadcast: storing block: %w", err)
	}
	b.stats.blocks.Add(1)
	b.stats.bytes.Add(int64(len(data)))
	return nil
}
