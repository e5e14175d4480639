// Package playback is the viewer's media pipeline: it reads blocks from a BlockSource (the
// app backs it with the replicated feed), decodes VP8 to RGBA frames and Opus to PCM,
// plays the sound through an audio output that is the master clock, and hands frames to a
// FrameSink when their time comes. It joins a live stream at the newest key frame, keeps a
// bounded jitter buffer, and skips damaged blocks, resuming the picture at the next key
// frame.
package playback

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/opus"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/filecoin-project/go-clock"
)

// BlockSource is a stream's blocks as the feed holds them: block 0 is the header.
type BlockSource interface {
	// Len is how many blocks exist now; a live stream grows.
	Len() uint64
	// Block returns block i, waiting until it exists or ctx ends. An error wrapping io.EOF
	// says the stream has ended before block i: playback plays out and stops.
	Block(ctx context.Context, i uint64) ([]byte, error)
	// LatestSync returns the newest block flagged as a sync point when it was appended.
	LatestSync() (uint64, bool)
}

// AudioOutput plays PCM, pulling it through fill at the device's pace (media/audioout).
type AudioOutput interface {
	Start(rate, channels int, fill func([]float32)) error
	Latency() time.Duration
	Close() error
}

// Frame is a decoded picture. Image is RGBA, which a Fyne canvas.Raster or canvas.Image
// draws with no further conversion.
type Frame struct {
	Image *image.RGBA
	// PTS is the capture time, relative to the stream header's Start.
	PTS time.Duration
	// Due is the wall time (the player's Clock) at which the picture should be on screen:
	// when the master clock reaches PTS. A sink with a DisplayLatency gets the picture that
	// much before Due.
	Due  time.Time
	pool *framePool
	once sync.Once
}

// Release returns the picture's memory for reuse; call it once the picture is no longer
// drawn (typically when the next frame replaces it). Not calling it only costs memory.
func (f *Frame) Release() {
	f.once.Do(func() {
		if f.pool != nil {
			f.pool.put(f.Image)
		}
	})
}

// FrameSink receives frames when they are due. ShowFrame runs on the player's presenter
// goroutine and should return quickly (a UI hands the frame to its thread and returns).
type FrameSink interface {
	ShowFrame(f *Frame)
}

// Watched is what a FrameSink may also implement to say whether anyone looks at its
// pictures (a window that is shown). While Watched reports false, the player does not decode
// pictures: it keeps the compressed ones since the last decoded picture or the newest key
// frame, whichever is later (at most maxUnwatched bytes; past that it keeps none and the
// picture resumes at the next key frame), and decodes them at once when Watched reports true
// again, so the first picture shown is current and whole. Sound is not affected. A replay of
// a stream without sound decodes anyway: its pictures pace its reading.
type Watched interface {
	Watched() bool
}

// DisplayLatency is what a FrameSink may also implement to say how long a picture handed
// to it typically takes to reach the screen (a window's wait for its next paint and the
// paint itself). The player hands each picture that much before it is due, so that it is
// on screen at its time, in step with the sound, instead of a paint later. Values are
// bounded to [0, maxDisplayLead].
type DisplayLatency interface {
	DisplayLatency() time.Duration
}

// maxDisplayLead bounds how early a picture is handed over: a sink reporting more is
// slower than any screen refresh and gets this much (pictures are decoded at least the
// jitter target, 150 ms by default, ahead of their time, so this never waits on decoding).
const maxDisplayLead = 100 * time.Millisecond

// maxUnwatched bounds the compressed pictures kept while nobody watches: about 2 s of the
// High preset's key-frame interval at 10 times its bit rate.
const maxUnwatched = 8 << 20

// FrameSinkFunc adapts a function to FrameSink.
type FrameSinkFunc func(f *Frame)

// ShowFrame calls fn.
func (fn FrameSinkFunc) ShowFrame(f *Frame) { fn(f) }

// Defaults.
const (
	// DefaultJitterTarget is the sound buffered before playing starts (and after it ran
	// dry): it absorbs the delivery jitter of the feed.
	DefaultJitterTarget = 150 * time.Millisecond
	// DefaultJitterMax bounds the buffer: beyond it the oldest sound is dropped down to
	// the target, so playback never lags the live edge by more than this plus delivery.
	DefaultJitterMax = 500 * time.Millisecond
	// DefaultCatchUp is how far a live player may fall behind the newest picture the
	// source holds before it jumps to the newest key frame instead of playing the backlog.
	// Why 500 ms: it is the jitter buffer's bound (DefaultJitterMax), the most that
	// delivery jitter alone ever puts between the live edge and the sound playing, so a
	// lag beyond it is a backlog the reader built (a starved decoder, a stall), not jitter;
	// and a jump costs a re-buffer (150 ms of silence) and the rest of a group of pictures
	// decoded at once, which is worth paying for half a second but not for less.
	DefaultCatchUp = 500 * time.Millisecond
	// catchUpEvery spaces the reader's checks of the live edge.
	catchUpEvery = 100 * time.Millisecond
	// frameQueue bounds decoded frames waiting for their time; on overflow the oldest is
	// dropped (it would be shown late anyway).
	frameQueue = 24
)

// Config configures a Player.
type Config struct {
	Source BlockSource
	// Frames receives pictures; nil plays sound only.
	Frames FrameSink
	// Audio is the sound output; nil opens the system's device, or a silent sink when
	// there is none (the audio clock still runs).
	Audio AudioOutput
	// FromBlock is the block to start at; 0 joins live at the newest sync point.
	FromBlock uint64
	// JitterTarget and JitterMax size the audio jitter buffer (defaults above).
	JitterTarget, JitterMax time.Duration
	// CatchUp is how far a live player (FromBlock 0) may fall behind the newest picture
	// held before it jumps to the newest key frame held (default DefaultCatchUp; negative:
	// never). A replay (FromBlock ≥ 1: the viewer chose the past, or resumed after a pause)
	// never jumps.
	CatchUp time.Duration
	// OnDecoded, when set, sees every picture the moment it is decoded, before it waits
	// for its time (measurements use it); it runs on the reader goroutine and must not
	// keep img.
	OnDecoded func(pts time.Duration, img *image.RGBA)
	// Clock paces playback (the audio clock between the output's pulls, the wall clock of
	// a stream without sound); default clock.New(), whose readings are monotonic.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Stats counts what playback did.
type Stats struct {
	BlocksRead, BlocksDamaged              int64
	FramesDecoded, FramesShown, FramesLate int64
	// FramesUnwatched counts pictures never decoded because the sink said nobody watched.
	FramesUnwatched              int64
	FramesSkipped                int64 // waiting for a key frame after damage
	AudioPackets, AudioUnderruns int64
	AudioDropped, AudioBuffered  time.Duration
	Clock                        time.Duration // master clock now
	StartBlock                   uint64        // + BlocksRead: the block reached
	AudioOutput                  string
	// CatchUps counts the live player's jumps to the newest key frame after falling more
	// than Config.CatchUp behind; CatchUpSkipped is the media time jumped over.
	CatchUps       int64
	CatchUpSkipped time.Duration

	// AudioGapFilled is the silence a replay played where its stream has no sound (the
	// broadcaster lost it for a while, or it starts late or ends early), so that the audio
	// clock, and the pictures, went on at their pace.
	AudioGapFilled time.Duration
}

// Player plays one stream. Create with New, run with Run.
type Player struct {
	cfg    Config
	log    *slog.Logger
	header atomic.Pointer[block.Header]

	jb    atomic.Pointer[jitterBuffer]
	wall  atomic.Pointer[wallClock]
	vq    *videoQueue
	start atomic.Uint64
	out   atomic.Value // string

	blocks, damaged, decoded, shown, late, skipped, apackets atomic.Int64
	catchUps, catchUpSkipped, unwatched                      atomic.Int64
	unwatchedCap                                             int // maxUnwatched; tests lower it
	// ended is set when the stream ended and its sound has played out: the pictures left
	// are all due, so the presenter shows the last and counts the others late.
	ended atomic.Bool
}

// New checks cfg.
func New(cfg Config) (*Player, error) {
	if cfg.Source == nil {
		return nil, errors.New("playback: no block source")
	}
	if cfg.JitterTarget <= 0 {
		cfg.JitterTarget = DefaultJitterTarget
	}
	if cfg.JitterMax <= cfg.JitterTarget {
		cfg.JitterMax = max(DefaultJitterMax, 2*cfg.JitterTarget)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	if cfg.CatchUp == 0 {
		cfg.CatchUp = DefaultCatchUp
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Player{cfg: cfg, log: log.With("component", "media/playback"), vq: newVideoQueue(frameQueue), unwatchedCap: maxUnwatched}, nil
}

// Header returns the stream header once Run has read it.
func (p *Player) Header() *block.Header { return p.header.Load() }

// Stats returns counters so far.
func (p *Player) Stats() Stats {
	s := Stats{
		BlocksRead: p.blocks.Load(), BlocksDamaged: p.damaged.Load(),
		FramesDecoded: p.decoded.Load(), FramesShown: p.shown.Load(), FramesLate: p.late.Load(), FramesUnwatched: p.unwatched.Load(),
		FramesSkipped: p.skipped.Load(), AudioPackets: p.apackets.Load(), StartBlock: p.start.Load(),
		CatchUps: p.catchUps.Load(), CatchUpSkipped: time.Duration(p.catchUpSkipped.Load()),
	}
	if jb := p.jb.Load(); jb != nil {
		s.AudioUnderruns, s.AudioDropped, s.AudioBuffered = jb.stats()
		s.AudioGapFilled = jb.filled()
	}
	s.Clock, _ = p.clock()
	if v, ok := p.out.Load().(string); ok {
		s.AudioOutput = v
	}
	return s
}

// clock is the master clock: the audio's when there is sound, else a wall clock.
func (p *Player) clock() (time.Duration, bool) {
	if jb := p.jb.Load(); jb != nil {
		return jb.clock()
	}
	if w := p.wall.Load(); w != nil {
		return w.clock()
	}
	return 0, false
}

// ErrUnsupported is returned for streams this player cannot decode.
var ErrUnsupported = errors.New("playback: unsupported stream")

// ErrBadHeader is returned when the stream's first block, which says what the stream
// holds, cannot be decoded.
var ErrBadHeader = errors.New("playback: the stream header is unreadable")

// Run plays until ctx ends, the source fails, or the stream header cannot be read.
// Damaged blocks do not stop it.
func (p *Player) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b0, err := p.cfg.Source.Block(ctx, 0)
	if err != nil {
		return fmt.Errorf("playback: reading the stream header: %w", err)
	}
	h, err := block.DecodeHeader(b0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if h.Video != nil && h.Video.Codec != block.CodecVP8 {
		return fmt.Errorf("%w: video codec %q", ErrUnsupported, h.Video.Codec)
	}
	if h.Audio != nil && (h.Audio.Codec != block.CodecOpus || h.Audio.Channels > 2) {
		return fmt.Errorf("%w: audio codec %q with %d channels", ErrUnsupported, h.Audio.Codec, h.Audio.Channels)
	}
	p.header.Store(h)

	var vdec *vp8.Decoder
	if h.Video != nil && p.cfg.Frames != nil {
		if vdec, err = vp8.NewDecoder(); err != nil {
			return err
		}
		defer vdec.Close()
	}
	var adec *opus.Decoder
	if h.Audio != nil {
		// Opus decodes at 48 kHz whatever the input rate was.
		if adec, err = opus.NewDecoder(48000, h.Audio.Channels); err != nil {
			return err
		}
		defer adec.Close()
		jb := newJitterBuffer(48000, h.Audio.Channels, p.cfg.JitterTarget, p.cfg.JitterMax, p.cfg.FromBlock == 0, p.cfg.Clock)
		p.jb.Store(jb)
		out := p.cfg.Audio
		if out == nil {
			dev := audioout.NewDevice()
			out = dev
			if err := dev.Start(48000, h.Audio.Channels, jb.fill); err != nil {
				p.log.Info("playing without sound", "reason", err)
				s := audioout.NewSilent()
				if err := s.Start(48000, h.Audio.Channels, jb.fill); err != nil {
					return err
				}
				out = s
			}
		} else if err := out.Start(48000, h.Audio.Channels, jb.fill); err != nil {
			return fmt.Errorf("playback: starting the audio output: %w", err)
		}
		jb.setLatency(out.Latency())
		if n, ok := out.(interface{ Name() string }); ok {
			p.out.Store(n.Name())
		} else {
			p.out.Store(fmt.Sprintf("%T", out))
		}
		defer out.Close()
	} else {
		p.wall.Store(newWallClock(p.cfg.JitterTarget, p.cfg.JitterMax, p.cfg.FromBlock == 0, p.cfg.Clock))
	}

	var wg sync.WaitGroup
	if vdec != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.present(ctx)
		}()
	}
	err = p.read(ctx, h, vdec, adec)
	cancel()
	wg.Wait()
	p.vq.drain()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// read pulls blocks in order from the start block and decodes them.
func (p *Player) read(ctx context.Context, h *block.Header, vdec *vp8.Decoder, adec *opus.Decoder) error {
	i := p.cfg.FromBlock
	if i == 0 {
		if s, ok := p.cfg.Source.LatestSync(); ok && s > 0 {
			i = s
		} else {
			i = 1
		}
	}
	p.start.Store(i)
	p.log.Debug("playing", "from block", i, "of", p.cfg.Source.Len())
	// The pictures' pool takes the size of the pictures decoded, not the header's (the
	// seller's word, which a picture may not match): made at the first picture, made anew
	// when a key frame changes the size.
	var pool *framePool
	var pcm []float32
	if adec != nil {
		pcm = make([]float32, adec.MaxSamples()*h.Audio.Channels)
	}
	needKey := true // the picture starts at a key frame
	live := p.cfg.FromBlock == 0
	watched, _ := p.cfg.Frames.(Watched)
	if !live && adec == nil {
		watched = nil // a replay without sound is paced by its pictures: decode them
	}
	var held unwatchedPictures
	cu := catchUp{limit: p.cfg.CatchUp, pts: -1}
	for ; ; i++ {
		// A source that holds a backlog returns its blocks without looking at ctx: stop
		// here, or a reader slower than the stream would never notice it was cancelled.
		if err := ctx.Err(); err != nil {
			return err
		}
		if !live {
			// A replay reads at the pace it plays: wait while the buffers are full.
			if err := p.waitRoom(ctx); err != nil {
				return err
			}
		} else if cu.limit > 0 {
			if to, skipped, ok := p.checkLag(ctx, &cu, i); ok {
				p.jump(i, to, skipped)
				i, needKey = to, true
				held.reset()
			}
		}
		b, err := p.cfg.Source.Block(ctx, i)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				// The stream ended: play out what is buffered.
				p.playOut(ctx)
				return nil
			}
			return fmt.Errorf("playback: reading block %d: %w", i, err)
		}
		p.blocks.Add(1)
		m, err := block.DecodeMedia(b)
		if err == nil && m.Seq != i {
			err = fmt.Errorf("%w: block %d carries sequence number %d", block.ErrMalformed, i, m.Seq)
		}
		if err != nil {
			p.damaged.Add(1)
			needKey = true
			held.reset()
			p.log.Warn("skipping a damaged block; the picture resumes at the next key frame", "block", i, "err", err)
			continue
		}
		for _, u := range m.Units {
			switch u.Track {
			case block.Video:
				if vdec == nil {
					continue
				}
				if needKey && !u.Key {
					p.skipped.Add(1)
					continue
				}
				if watched != nil && !watched.Watched() {
					// Nobody looks: keep the compressed picture instead of decoding it.
					if !held.keep(u.Payload, u.Key, p.unwatchedCap) {
						needKey = true // over the bound: resume at the next key frame
						p.log.Debug("pictures kept while the window is hidden passed the bound; the picture resumes at the next key frame")
					} else if u.Key {
						needKey = false // what is kept starts at a key frame: the next pictures follow it
					}
					p.unwatched.Add(1)
					cu.pts = max(cu.pts, u.PTS) // where playback is, for the catch-up check
					if w := p.wall.Load(); w != nil {
						w.seen(u.PTS)
					}
					continue
				}
				if u.Key {
					held.reset() // a key frame needs nothing before it
				} else if len(held.pics) > 0 {
					// Watched again: decode what was kept so the decoder reaches this picture.
					if !p.decodeHeld(vdec, &held) {
						needKey = true
						if !u.Key {
							p.skipped.Add(1)
							continue
						}
					}
				}
				dst := pool.get()
				img, err := vdec.DecodeRGBA(u.Payload, dst)
				if err != nil {
					pool.put(dst)
					p.damaged.Add(1)
					needKey = true
					p.log.Warn("a picture does not decode; waiting for the next key frame", "block", i, "err", err)
					continue
				}
				if w, h := img.Rect.Dx(), img.Rect.Dy(); pool == nil || pool.w != w || pool.h != h {
					pool = newFramePool(w, h, frameQueue+4)
				}
				needKey = false
				cu.pts = max(cu.pts, u.PTS)
				p.decoded.Add(1)
				if p.cfg.OnDecoded != nil {
					p.cfg.OnDecoded(u.PTS, img)
				}
				if w := p.wall.Load(); w != nil {
					w.seen(u.PTS)
				}
				if dropped := p.vq.push(&Frame{Image: img, PTS: u.PTS, pool: pool}); dropped {
					p.late.Add(1)
				}
			case block.Audio:
				if adec == nil {
					continue
				}
				n, err := adec.Decode(u.Payload, pcm)
				if err != nil {
					p.log.Warn("an audio packet does not decode", "block", i, "err", err)
					continue
				}
				p.apackets.Add(1)
				if vdec == nil {
					cu.pts = max(cu.pts, u.PTS)
				}
				behind := i+1 < p.cfg.Source.Len()
				p.jb.Load().push(u.PTS, append([]float32(nil), pcm[:n*h.Audio.Channels]...), behind)
			}
		}
	}
}

// unwatchedPictures are the compressed pictures not decoded while nobody watched, in order,
// starting after the last picture decoded or at a key frame.
type unwatchedPictures struct {
	pics  [][]byte
	bytes int
}

// keep adds a picture (copied: the block's bytes are not ours to keep), starting again at a
// key frame. It reports false, keeping nothing, when the bound would be passed.
func (h *unwatchedPictures) keep(payload []byte, key bool, limit int) bool {
	if key {
		h.reset()
	}
	if h.bytes+len(payload) > limit {
		h.reset()
		return false
	}
	h.pics = append(h.pics, append([]byte(nil), payload...))
	h.bytes += len(payload)
	return true
}

func (h *unwatchedPictures) reset() {
	clear(h.pics)
	h.pics, h.bytes = h.pics[:0], 0
}

// decodeHeld decodes the pictures kept while nobody watched, showing none of them, so the
// decoder's state reaches the next picture; false when one did not decode.
func (p *Player) decodeHeld(vdec *vp8.Decoder, held *unwatchedPictures) bool {
	defer held.reset()
	for _, pic := range held.pics {
		if err := vdec.Skip(pic); err != nil {
			p.damaged.Add(1)
			p.log.Warn("a picture kept while the window was hidden does not decode; waiting for the next key frame", "err", err)
			return false
		}
		p.decoded.Add(1)
	}
	return true
}

// catchUp is the live reader's view of how far behind it is.
type catchUp struct {
	limit   time.Duration
	pts     time.Duration // the newest picture decoded (sound without video): where playback is
	checked time.Time
	probe   context.Context // cancelled: reads only what the source holds, never waits or asks
}

// checkLag reports whether the reader, about to read block i, should jump to the newest
// sync point held (to, skipping that much media time): when the newest block the source
// holds is more than the limit ahead of what was decoded last. Checked every catchUpEvery.
func (p *Player) checkLag(ctx context.Context, cu *catchUp, i uint64) (to uint64, skipped time.Duration, ok bool) {
	now := p.cfg.Clock.Now()
	if cu.pts < 0 || now.Sub(cu.checked) < catchUpEvery {
		return 0, 0, false
	}
	cu.checked = now
	s, ok := p.cfg.Source.LatestSync()
	n := p.cfg.Source.Len()
	if !ok || s <= i || n <= s {
		return 0, 0, false
	}
	if cu.probe == nil {
		c, cancel := context.WithCancel(ctx)
		cancel()
		cu.probe = c
	}
	newest, ok := p.firstPTS(cu.probe, n-1, true)
	if !ok || newest-cu.pts <= cu.limit {
		return 0, 0, false
	}
	at, ok := p.firstPTS(cu.probe, s, false)
	if !ok || at <= cu.pts {
		return 0, 0, false
	}
	return s, at - cu.pts, true
}

// firstPTS is the first (or newest) timestamp in block i if the source holds it now.
func (p *Player) firstPTS(probe context.Context, i uint64, newest bool) (time.Duration, bool) {
	b, err := p.cfg.Source.Block(probe, i)
	if err != nil {
		return 0, false
	}
	m, err := block.DecodeMedia(b)
	if err != nil || len(m.Units) == 0 {
		return 0, false
	}
	if !newest {
		return m.Units[0].PTS, true
	}
	var t time.Duration
	for _, u := range m.Units {
		t = max(t, u.PTS)
	}
	return t, true
}

// jump moves a live player that fell behind from block from to the sync block to: the
// pictures waiting and the sound buffered are dropped together (the sound counts as
// dropped, the pictures as late), the clock holds until the sound re-buffers from the new
// place, as when joining, and the jump is counted. StartBlock moves on by the blocks
// skipped, so that StartBlock + BlocksRead stays the block the reader has reached.
func (p *Player) jump(from, to uint64, skipped time.Duration) {
	p.log.Info("fell behind the live edge: jumping to the newest key frame", "from block", from, "to block", to, "skipping", skipped)
	p.catchUps.Add(1)
	p.catchUpSkipped.Add(int64(skipped))
	p.start.Add(to - from)
	p.late.Add(int64(p.vq.drain()))
	if jb := p.jb.Load(); jb != nil {
		jb.reset()
	}
	if w := p.wall.Load(); w != nil {
		w.reset()
	}
}

// waitRoom waits until the jitter buffer and the picture queue have room. While it waits
// for the pictures with room for sound, no sound comes before the pictures queued play: if
// the sound read does not reach the newest of them, the stream has none there (the
// broadcaster lost it, and its timeline jumped), and silence in its place keeps the audio
// clock going (without it the clock stopped when the sound ran dry, and the pictures waited
// for it: a replay froze for good). Sound that comes for part of it replaces the silence not
// yet played.
func (p *Player) waitRoom(ctx context.Context) error {
	for {
		jb := p.jb.Load()
		full := jb != nil && jb.full()
		if !full && p.vq.len() < frameQueue-4 {
			return nil
		}
		if jb != nil && !full {
			if oldest, newest, ok := p.vq.span(); ok {
				if d := jb.fillGap(oldest, newest, true); d > 0 {
					p.log.Debug("no sound in the stream before this picture: playing silence", "pts", newest, "silence", d)
				}
			}
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// playOut waits until the buffered sound and pictures have played.
func (p *Player) playOut(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		audioLeft := false
		if jb := p.jb.Load(); jb != nil {
			if p.cfg.FromBlock != 0 && !jb.full() {
				// A replay whose sound ends before its pictures: silence up to the last of
				// them plays them at their pace (the reader has read everything: no more
				// sound is coming).
				if oldest, newest, ok := p.vq.span(); ok {
					jb.fillGap(oldest, newest, false)
				}
			}
			audioLeft = jb.playsOn()
		}
		if !audioLeft && p.vq.peek() == nil {
			return
		}
		if !audioLeft && p.jb.Load() != nil {
			// No more sound to drive the clock: the pictures left are past due. The
			// presenter shows the last one (the stream ends on its last picture, not the
			// one before) and counts the others late; wait for it to hand it over.
			p.ended.Store(true)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// present hands frames to the sink when the master clock reaches them, less the sink's
// display latency (DisplayLatency).
func (p *Player) present(ctx context.Context) {
	lat, _ := p.cfg.Frames.(DisplayLatency)
	for {
		// f stays queued until remove takes it: the reader may drop it meanwhile (a push
		// onto the full queue, a catch-up jump's drain), and then it is gone, released.
		f, next, pushed := p.vq.next()
		if f == nil {
			select {
			case <-pushed:
				continue
			case <-ctx.Done():
				return
			}
		}
		now, ok := p.clock()
		var lead time.Duration
		if lat != nil {
			lead = min(max(lat.DisplayLatency(), 0), maxDisplayLead)
		}
		ended := p.ended.Load()
		due := func(f *Frame) bool { return ended || ok && f.PTS <= now+lead }
		if due(f) {
			if next != nil && due(next) {
				// Behind: skip to the newest due frame.
				if p.vq.remove(f) {
					p.log.Debug("picture late", "pts", f.PTS, "clock", now)
					f.Release()
					p.late.Add(1)
				}
				continue
			}
			if !p.vq.remove(f) {
				continue // dropped meanwhile (and counted late): look again
			}
			p.shown.Add(1)
			f.Due = p.cfg.Clock.Now()
			if !ended {
				f.Due = f.Due.Add(f.PTS - now)
			}
			p.cfg.Frames.ShowFrame(f)
			continue
		}
		wait := 5 * time.Millisecond
		if ok {
			wait = min(max(f.PTS-now-lead, time.Millisecond), 20*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// wallClock is the master clock of a stream without sound: it starts JitterTarget after
// the first picture and runs at wall-clock speed; live, it jumps forward when the newest
// picture is more than JitterMax ahead of it (a replay's reader waits instead).
type wallClock struct {
	target, max time.Duration
	live        bool
	mu          sync.Mutex
	base        time.Duration
	at          time.Time
	started     bool
	clk         clock.Clock
}

func newWallClock(target, max time.Duration, live bool, clk clock.Clock) *wallClock {
	return &wallClock{target: target, max: max, live: live, clk: clk}
}

func (w *wallClock) seen(pts time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clk.Now()
	if !w.started {
		w.base, w.at, w.started = pts, now.Add(w.target), true
		return
	}
	if cur := w.base + now.Sub(w.at); w.live && pts-cur > w.max {
		w.base, w.at = pts-w.target, now
	}
}

// reset starts the clock again at the next picture seen (after a catch-up jump).
func (w *wallClock) reset() {
	w.mu.Lock()
	w.started = false
	w.mu.Unlock()
}

func (w *wallClock) clock() (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		return 0, false
	}
	return w.base + w.clk.Since(w.at), true
}
