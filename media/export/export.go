// Package export writes a stream's blocks, whole or a time range, to a WebM file (VP8 +
// Opus, with cues), reporting progress through an interface.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/atomicfile"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/webm"
)

// BlockSource is the stream to export: block 0 is the header.
type BlockSource interface {
	Len() uint64
	Block(ctx context.Context, i uint64) ([]byte, error)
}

// Progress hears how far an export is, in blocks read (done of total).
type Progress interface {
	Progress(done, total uint64)
}

// Range selects part of a stream by capture time from its start (a resumed stream's runs
// counted back to back). The zero Range is the whole stream; To == 0 means to the end.
type Range struct {
	From, To time.Duration
}

// Options configures an export.
type Options struct {
	Range    Range
	Progress Progress // may be nil
	Logger   *slog.Logger
}

// Result says what was written.
type Result struct {
	Duration      time.Duration
	VideoFrames   int
	AudioPackets  int
	DamagedBlocks int
	// Runs is how many runs of the stream the export went through: a resumed stream has
	// one per time the broadcaster went live, written back to back.
	Runs int
	// EndedAt is the block of a later run's header whose tracks differ from the first's
	// (another picture size, sound, or a track more or less: Header.SameShape), where the
	// file ended; 0 when it did not.
	EndedAt uint64
	// Start is where the file starts in the stream: the key frame at or before
	// Range.From, so that the first picture decodes.
	Start time.Duration
}

// reorderWindow is how far units may arrive out of time order across the two tracks;
// units are held this long before being written, in time order.
const reorderWindow = 200 * time.Millisecond

// lateSound bounds how long past To a range's export reads for a track that has not reached
// it: the first half second of a stream's sound reaches the stream with the picture about
// half a second after it (media/broadcast holds the microphone's first window).
const lateSound = 1500 * time.Millisecond

// ToFile exports to path, writing a temporary file beside it and renaming it into place
// only when the export succeeded, so a failed export leaves no half file behind. (The
// WebM writer seeks back to fill in sizes, so the file is streamed to a temporary file
// rather than built in memory for an atomic-write helper.) The file gets the mode any
// new file of the user's gets (0666 less the umask), is synced before the rename and the
// folder after it. Errors name path, never the temporary file. A path that is a folder,
// or whose folder does not exist, is refused before anything is read.
func ToFile(ctx context.Context, src BlockSource, path string, opt Options) (Result, error) {
	if err := opt.Range.check(); err != nil {
		return Result{}, err
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return Result{}, fmt.Errorf("export: %s is a folder; give a file name for the export", path)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return Result{}, fmt.Errorf("export: cannot write %s: the folder %s does not exist", path, dir)
	}
	tmp, err := createTemp(dir, filepath.Base(path))
	if err != nil {
		return Result{}, fmt.Errorf("export: cannot write %s: %w", path, plainErr(err))
	}
	defer os.Remove(tmp.Name())
	res, err := Write(ctx, src, tmp, opt)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) { // a disk error on the temporary file: name the output
			return res, fmt.Errorf("export: writing %s: %w", path, pe.Err)
		}
		return res, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return res, fmt.Errorf("export: cannot put the file in place at %s: %w", path, plainErr(err))
	}
	_ = atomicfile.SyncDir(dir) // the rename survives a power loss; best effort: the file is in place
	return res, nil
}

// createTemp makes a new file beside the output with the permissions of any new file
// (0666 less the umask; os.CreateTemp would make it 0600).
func createTemp(dir, base string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, fmt.Sprintf(".%s.%08x.tmp", base, rand.Uint32()))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, errors.New("no free temporary file name")
}

// plainErr drops the file names from path and link errors (they would name the temporary
// file), keeping the cause (no space left, permission denied).
func plainErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func (r Range) check() error {
	if r.From < 0 || r.To < 0 {
		return fmt.Errorf("export: the range %v to %v reaches before the stream's start; times count from 0", r.From, r.To)
	}
	if r.To > 0 && r.To <= r.From {
		return fmt.Errorf("export: the range ends (%v) before it starts (%v)", r.To, r.From)
	}
	return nil
}

// ErrEmpty is returned when the range holds no media.
var ErrEmpty = errors.New("export: nothing to export in that range")

// Write exports the blocks present now (a live stream is exported up to its current
// end) to w.
func Write(ctx context.Context, src BlockSource, w io.WriteSeeker, opt Options) (Result, error) {
	total := src.Len()
	if total == 0 {
		return Result{}, fmt.Errorf("%w: the stream has no header", ErrEmpty)
	}
	return write(ctx, src, 1, total, func(cfg webm.Config) (*webm.Muxer, error) { return webm.NewMuxer(w, cfg) }, opt)
}

// LiveSource is a live stream: Block waits for blocks not there yet, and LatestSync is
// where a viewer joining now starts (playback.BlockSource is one).
type LiveSource interface {
	BlockSource
	LatestSync() (uint64, bool)
}

// Live writes a live stream to w as it arrives (webm.NewLiveMuxer: no seeking, each frame
// written as soon as the reorder window lets it go), from block from, or from the newest
// sync point when from is 0, until the stream ends (a block read fails with io.EOF) or ctx
// ends; either way what it holds is written and the result is a complete stream, so ctx
// ending returns no error. opt.Range applies as in Write, from the start block's time.
// Progress is not reported (there is no total).
func Live(ctx context.Context, src LiveSource, w io.Writer, from uint64, opt Options) (Result, error) {
	if from == 0 {
		// The header first: once a remote source has it, it knows the newest sync point.
		if _, err := src.Block(ctx, 0); err != nil {
			if ctx.Err() != nil {
				return Result{}, nil
			}
			return Result{}, fmt.Errorf("export: reading the header: %w", err)
		}
		from = 1
		if s, ok := src.LatestSync(); ok && s > 0 {
			from = s
		}
	}
	opt.Progress = nil
	return write(ctx, src, from, 0, func(cfg webm.Config) (*webm.Muxer, error) { return webm.NewLiveMuxer(w, cfg) }, opt)
}

// write exports blocks [first, total) of src (total 0: until the stream ends or ctx does).
func write(ctx context.Context, src BlockSource, first, total uint64, newMuxer func(webm.Config) (*webm.Muxer, error), opt Options) (Result, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	live := total == 0
	var res Result
	b0, err := src.Block(ctx, 0)
	if err != nil {
		if live && ctx.Err() != nil {
			return res, ErrEmpty
		}
		return res, fmt.Errorf("export: reading the header: %w", err)
	}
	h, err := block.DecodeHeader(b0)
	if err != nil {
		return res, fmt.Errorf("export: the stream header is unreadable: %w", err)
	}
	if h.Video != nil && h.Video.Codec != block.CodecVP8 || h.Audio != nil && h.Audio.Codec != block.CodecOpus {
		return res, fmt.Errorf("export: only VP8 and Opus streams can be written to WebM")
	}
	cfg := webm.Config{Title: h.Description, Date: h.Start}
	if v := h.Video; v != nil {
		cfg.Video = &webm.VideoConfig{Width: v.Width, Height: v.Height, FrameDuration: v.FrameDuration()}
	}
	if a := h.Audio; a != nil {
		cfg.Audio = &webm.AudioConfig{Channels: a.Channels, InputSampleRate: a.SampleRate}
	}
	rng := opt.Range
	if err := rng.check(); err != nil {
		return res, err
	}

	var mux *webm.Muxer
	var pending []block.Unit // waiting for the reorder window, in time order
	var pre []block.Unit     // before starting: units in time order from the last settled key frame
	var preNewest time.Duration
	started := false         // writing (From reached and, with video, a key frame seen)
	needKey := true          // after damage, video waits for a key frame
	var origin time.Duration // stream time of the file's zero
	var newest time.Duration
	var frameDur time.Duration
	if h.Video != nil {
		frameDur = h.Video.FrameDuration()
	}
	lastVideo := time.Duration(-1)
	lastSlot := int64(-1)
	// A resumed stream has one header per run, each run's timeline from zero: runs places
	// them back to back.
	runs := block.NewRuns(h)
	res.Runs = runs.Count()
	var audioEnd time.Duration // end of the previous audio packet, file time

	emit := func(u block.Unit) error {
		if mux == nil {
			var err error
			if mux, err = newMuxer(cfg); err != nil {
				return err
			}
		}
		t := u.PTS - origin
		if u.Track == block.Video {
			res.VideoFrames++
			return mux.WriteVideo(t, u.Key, u.Payload)
		}
		if t < 0 {
			return nil // sound from before the first picture
		}
		// A packet never starts before the previous one ended (recordings made before
		// the broadcaster stamped sound by its samples could overlap).
		t = max(t, audioEnd)
		audioEnd = t + u.Duration
		res.AudioPackets++
		return mux.WriteAudio(t, u.Payload, u.Duration)
	}
	// push queues a unit in time order and writes what left the reorder window.
	push := func(u block.Unit, flushAll bool) error {
		if u.Payload != nil {
			i := len(pending)
			for i > 0 && pending[i-1].PTS > u.PTS {
				i--
			}
			pending = slices.Insert(pending, i, u)
			newest = max(newest, u.PTS)
		}
		n := 0
		for n < len(pending) && (flushAll || pending[n].PTS < newest-reorderWindow) {
			if pending[n].Track == block.Video {
				t := retime(pending, n, frameDur, lastVideo)
				if frameDur > 0 {
					// Onto the frame grid, one picture a slot: players and tools that
					// map times onto the nominal rate (ffmpeg) then never see two
					// pictures in one frame period. A burst of pictures delivered back
					// to back after a stall moves later by at most the burst's length.
					k := max(int64((t-origin+frameDur/2)/frameDur), lastSlot+1)
					lastSlot = k
					t = origin + time.Duration(k)*frameDur
				}
				pending[n].PTS = t
				lastVideo = t
			}
			if err := emit(pending[n]); err != nil {
				return err
			}
			n++
		}
		pending = pending[n:]
		return nil
	}
	begin := func(at time.Duration) {
		started = true
		origin = at
		lastVideo = at - time.Millisecond // no picture moves before the first
		res.Start = at
	}
	// start begins the file at the key frame at or before From (the first key frame when
	// there is none before it), or at From for sound only, with the units kept in pre.
	start := func() error {
		at := rng.From
		if h.Video != nil {
			k := lastKey(pre, rng.From)
			if k < 0 {
				k = slices.IndexFunc(pre, func(u block.Unit) bool { return u.Track == block.Video && u.Key })
			}
			if k < 0 {
				return nil // no picture yet: wait for a key frame
			}
			at = pre[k].PTS
		}
		begin(at)
		for _, g := range pre {
			if g.PTS >= at {
				if err := push(g, false); err != nil {
					return err
				}
			}
		}
		pre = nil
		return nil
	}

	pastTo := map[block.Track]bool{} // tracks that reached a reorder window past To
	pastAll := false                 // a unit reached lateSound past To
	for i := first; live || i < total; i++ {
		if err := ctx.Err(); err != nil {
			if live {
				break // a live export ends with what it has
			}
			return res, err
		}
		if opt.Progress != nil && i%32 == 0 && i < total-1 { // the end is reported once, below
			opt.Progress.Progress(i, total-1)
		}
		b, err := src.Block(ctx, i)
		if err != nil {
			if live && (ctx.Err() != nil || errors.Is(err, io.EOF)) {
				break
			}
			return res, fmt.Errorf("export: reading block %d: %w", i, err)
		}
		if block.KindOf(b) == block.KindHeader {
			// A resumed stream's next run: its timeline starts again at zero, so it is
			// placed after everything so far (the runs back to back, with no gap for the
			// time the broadcaster was away).
			if nh, err := block.DecodeHeader(b); err == nil {
				if !runs.Next(nh) {
					// One WebM file has one set of tracks: the file ends where they change.
					res.EndedAt = i
					log.Info("export: the stream's tracks change here; the file ends", "block", i)
					break
				}
				res.Runs = runs.Count()
				needKey = true
				log.Debug("export: a new run of the stream", "block", i, "at", runs.Shift())
				continue
			}
		}
		m, err := block.DecodeMedia(b)
		if err == nil && m.Seq != i {
			err = fmt.Errorf("%w: block %d carries sequence number %d", block.ErrMalformed, i, m.Seq)
		}
		if err != nil {
			res.DamagedBlocks++
			needKey = true
			log.Warn("export: skipping a damaged block", "block", i, "err", err)
			continue
		}
		// A block wholly a reorder window past To ends the range once every track has
		// reached that far, or any has reached lateSound past To (a track that stopped):
		// units before To can sit in blocks after one that reached it, and the stream's
		// first half second of sound reaches it about half a second late (media/broadcast).
		done := len(m.Units) > 0 && rng.To > 0
		for _, u := range m.Units {
			u.Payload = append([]byte(nil), u.Payload...)
			runs.Place(&u)
			if rng.To > 0 && u.PTS >= rng.To {
				done = done && u.PTS >= rng.To+reorderWindow
				if u.PTS >= rng.To+reorderWindow {
					pastTo[u.Track] = true
				}
				if u.PTS >= rng.To+lateSound {
					pastAll = true
				}
				continue
			}
			done = false
			if u.Track == block.Video && h.Video != nil {
				if needKey && !u.Key {
					continue
				}
				needKey = false
			}
			if !started {
				// Before starting, units are kept in time order from the newest key frame
				// that is both before From and settled (older than the reorder window: a
				// picture encoded slowly on a busy machine reaches the stream after sound
				// captured later). Starting waits until the stream has moved a reorder
				// window past From, so that the key frame at or before From is known.
				i := len(pre)
				for i > 0 && pre[i-1].PTS > u.PTS {
					i--
				}
				pre = slices.Insert(pre, i, u)
				preNewest = max(preNewest, u.PTS)
				if h.Video == nil {
					// Sound only: the file starts at From, so nothing before it is kept
					// (else every unit of a long stream before a late range was, and each
					// new one searched them all).
					k := 0
					for k < len(pre) && pre[k].PTS < rng.From {
						k++
					}
					pre = pre[k:]
				} else if k := lastKey(pre, min(rng.From, preNewest-reorderWindow)); k > 0 {
					for k > 0 && pre[k-1].PTS == pre[k].PTS {
						k-- // sound captured with the key frame stays
					}
					pre = pre[k:]
				}
				if preNewest < rng.From+reorderWindow {
					continue
				}
				if err := start(); err != nil {
					return res, err
				}
				continue
			}
			if err := push(u, false); err != nil {
				return res, err
			}
		}
		if done && !pastAll && (h.Video != nil && !pastTo[block.Video] || h.Audio != nil && !pastTo[block.Audio]) {
			done = false // a track has not reached past To yet: its units may still come
		}
		if done {
			break
		}
	}
	if !started && len(pre) > 0 && preNewest >= rng.From {
		if err := start(); err != nil {
			return res, err
		}
	}
	if opt.Progress != nil && !live {
		opt.Progress.Progress(total-1, total-1)
	}
	if err := push(block.Unit{}, true); err != nil {
		return res, err
	}
	if mux == nil {
		return res, ErrEmpty
	}
	if err := mux.Close(); err != nil {
		return res, err
	}
	res.Duration = mux.Duration()
	return res, nil
}

// lastKey is the index of the last video key frame in units (in time order) at or before
// t, or -1.
func lastKey(units []block.Unit, t time.Duration) int {
	k := -1
	for i, u := range units {
		if u.PTS > t {
			break
		}
		if u.Track == block.Video && u.Key {
			k = i
		}
	}
	return k
}

// retime returns the time to write the video unit pending[n] at. A picture is stamped
// when the camera hands it over, which is never before it was captured but may be later:
// a busy machine reads two pictures back to back, a few milliseconds apart. Players cope,
// but tools that map timestamps onto the nominal frame rate (ffmpeg) then see two frames
// in one tick. Since lateness only ever delays a stamp, the fix moves pictures earlier:
// walking back from the newest picture in the reorder window, each must be at least one
// frame duration before the next, never later than it was stamped, and after the
// previous picture written (lastVideo).
func retime(pending []block.Unit, n int, frameDur, lastVideo time.Duration) time.Duration {
	t := pending[n].PTS
	if frameDur > 0 {
		next := time.Duration(-1)
		for i := len(pending) - 1; i > n; i-- {
			if pending[i].Track != block.Video {
				continue
			}
			v := pending[i].PTS
			if next >= 0 {
				v = min(v, next-frameDur)
			}
			next = v
		}
		if next >= 0 {
			t = min(t, next-frameDur)
		}
	}
	return max(t, lastVideo+time.Millisecond)
}
