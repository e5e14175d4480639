package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/cli/mediatime"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/export"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// feedSink appends the broadcaster's blocks to a feed, marking key frames
// (and the header) as sync points.
type feedSink struct{ f *feed.Feed }

func (s feedSink) Append(_ context.Context, b []byte, sync bool) error {
	var err error
	if sync {
		_, err = s.f.AppendSync(b)
	} else {
		_, err = s.f.Append(b)
	}
	return err
}

// feedSource reads a feed's blocks for export.
type feedSource struct{ f *feed.Feed }

func (s feedSource) Len() uint64 { return s.f.Length() }

func (s feedSource) Block(_ context.Context, i uint64) ([]byte, error) { return s.f.Read(i) }

func (e *env) record(args []string) error {
	fs := e.flags("record")
	presetName := fs.String("preset", "medium", "quality: low, medium or high")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	testDevices := fs.Bool("test-devices", false, "use the built-in test camera and microphone even when real ones exist")
	source := fs.String("source", "camera", "the picture: camera, screen (the X11 display in $DISPLAY) or none")
	audioSrc := fs.String("audio", "microphone", "the sound: microphone or none")
	desc := fs.String("description", "", "a description stored in the stream's header")
	rest, err := parse(fs, args, 1, 1, "[-preset low|medium|high] [-source camera|screen|none] [-audio microphone|none] [-duration D] [-test-devices] [-description TEXT] DIR")
	if err != nil {
		return err
	}
	preset, err := broadcast.PresetByName(*presetName)
	if err != nil {
		return usagef("%v", err)
	}
	if err := checkDuration(*dur); err != nil {
		return err
	}
	var videoKind capture.Kind
	switch *source {
	case "camera":
		videoKind = capture.Camera
	case "screen":
		videoKind = capture.Screen
	case "none":
	default:
		return usagef("-source %q: choose camera, screen or none", *source)
	}
	withAudio := true
	switch *audioSrc {
	case "microphone", "mic":
	case "none":
		withAudio = false
	default:
		return usagef("-audio %q: choose microphone or none", *audioSrc)
	}
	if videoKind == 0 && !withAudio {
		return usagef("nothing to record: -source none and -audio none")
	}
	dir := rest[0]
	// A live recording: signatures must not wait for the disk (see feed.ForkOnPowerLoss).
	const durability = feed.ForkOnPowerLoss
	f, err := e.openWritable(dir, durability)
	if err != nil {
		// No feed there yet: make one.
		if cerr := e.feedCreate([]string{dir}); cerr != nil {
			return fmt.Errorf("%w (and no feed could be made: %v)", err, cerr)
		}
		if f, err = e.openWritable(dir, durability); err != nil {
			return err
		}
	}
	defer f.Close()
	if f.Length() > 0 {
		return fmt.Errorf("the feed in %s already holds a stream (%d blocks): record into a new directory", dir, f.Length())
	}
	pick := func(k capture.Kind) (capture.Device, error) {
		if *testDevices && k != capture.Screen { // there is no test screen
			return capture.TestDevice(k)
		}
		return capture.DefaultDevice(k)
	}
	var cfg broadcast.Config
	var labels []string
	closeAll := func() {
		if cfg.Video != nil {
			cfg.Video.Close()
		}
		if cfg.Audio != nil {
			cfg.Audio.Close()
		}
	}
	if videoKind != 0 {
		vd, err := pick(videoKind)
		if err != nil {
			if videoKind == capture.Screen {
				return fmt.Errorf("no screen to record: %w (the screen source captures the X11 display named by $DISPLAY)", err)
			}
			return fmt.Errorf("no camera: %w (record the screen with -source screen, or sound alone with -source none)", err)
		}
		vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: preset.Width, Height: preset.Height, FrameRate: float64(preset.FrameRate)})
		if err != nil {
			return fmt.Errorf("cannot open the %s %q: %w", vd.Kind, vd.Label, err)
		}
		cfg.Video = vs
		labels = append(labels, fmt.Sprintf("%s %q", vd.Kind, vd.Label))
	}
	if withAudio {
		ad, err := pick(capture.Microphone)
		if err != nil {
			closeAll()
			return fmt.Errorf("no microphone: %w (record pictures alone with -audio none)", err)
		}
		as, err := capture.OpenAudio(ad, capture.AudioWant{SampleRate: 48000, Channels: 1})
		if err != nil {
			closeAll()
			return fmt.Errorf("cannot open the microphone %q: %w", ad.Label, err)
		}
		cfg.Audio = as
		labels = append(labels, fmt.Sprintf("microphone %q", ad.Label))
	}
	cfg.Preset, cfg.Description, cfg.Sink, cfg.Logger = preset, *desc, feedSink{f}, e.log
	b, err := broadcast.New(cfg)
	if err != nil {
		closeAll()
		return err
	}
	ctx := e.ctx
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	until := "interrupt to stop"
	if *dur > 0 {
		until = fmt.Sprintf("stops after %v (interrupt to stop sooner)", *dur)
	}
	shape := "sound only"
	if cfg.Video != nil {
		// The source's own size: a screen is captured as it is, not at the preset's.
		shape = fmt.Sprintf("%dx%d at %d fps", cfg.Video.Width, cfg.Video.Height, preset.FrameRate)
	}
	fmt.Fprintf(e.err, "recording %s (%s) from %s into %s; %s\n",
		preset.Name, shape, strings.Join(labels, " and "), dir, until)
	err = b.Run(ctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("recording stopped: %w", err)
	}
	h := f.Head()
	fmt.Fprintf(e.out, "recorded %d blocks (%d bytes); newest key frame at block %d\n", h.Length, h.ByteLength, h.SyncPoint)
	return nil
}

func (e *env) exportCmd(args []string) error {
	fs := e.flags("export")
	from, to := new(time.Duration), new(time.Duration)
	fs.Var((*streamTime)(from), "from", "start this far into the stream (1m30s or 1:30)")
	fs.Var((*streamTime)(to), "to", "end this far into the stream (1m30s or 1:30; 0: the end)")
	rest, err := parse(fs, args, 2, 2, "[-from T] [-to T] DIR OUT.webm|-")
	if err != nil {
		return err
	}
	if *from < 0 || *to < 0 {
		return usagef("-from and -to count from the stream's start and cannot be negative (got -from %v -to %v)", *from, *to)
	}
	if *to > 0 && *to <= *from {
		return usagef("-to %v must come after -from %v", *to, *from)
	}
	// "-" is stdout, as with watch -o -: the video goes there, every message to stderr.
	out, toStdout := rest[1], rest[1] == "-"
	if toStdout {
		if err := e.videoToStdout("the output -", "export DIR - | mpv -"); err != nil {
			return err
		}
		out = "stdout"
	}
	dir := rest[0]
	if _, err := os.Stat(filepath.Join(dir, "meta")); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "feed", "meta")); err == nil {
			dir = filepath.Join(dir, "feed") // a stream's folder (as streams lists them), not its feed's
		}
	}
	f, err := feed.Open(dir, feed.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("cannot open the feed: %w", err)
	}
	defer f.Close()
	if f.Encrypted() {
		return errors.New("this feed is encrypted; exporting it needs its key, which the command line does not hold yet")
	}
	rng := export.Range{From: *from, To: *to}
	src := &walkedSource{BlockSource: feedSource{f}}
	gaps := ""
	if !f.Writable() && hasGap(f) {
		// A watched copy with gaps (the viewer joined late, left, or its paid time ran out):
		// what it holds, joined, as watch -o writes it.
		h, err := session.HeldOf(f)
		if err != nil {
			return wordedError{"nothing to export: " + err.Error(), err}
		}
		src.BlockSource = h
		pieces, a, b := h.Span()
		joined := ""
		if pieces > 1 {
			joined = fmt.Sprintf(" in %d stretches joined", pieces)
		}
		gaps = fmt.Sprintf("this copy has gaps: it exported the stored blocks %d to %d%s, the missing blocks left out (-from and -to count what it holds)\n", a, b-1, joined)
	}
	start := time.Now()
	text := e.out
	var res export.Result
	if toStdout {
		// Written as it is read, as watch -o - does: stdout may be a pipe, which cannot seek
		// back to fill in sizes.
		text = e.err
		res, err = export.Live(e.ctx, endingSource{src}, e.out, 1, export.Options{Range: rng, Logger: e.log})
		if e.ctx.Err() != nil {
			// Interrupted: what was written is a complete stream, but not all of it.
			return e.ctx.Err()
		}
	} else {
		term := isTerminalWriter(e.err)
		bar := &export.Bar{W: e.err, Terminal: &term}
		res, err = export.ToFile(e.ctx, src, out, export.Options{Range: rng, Progress: bar, Logger: e.log})
	}
	if err != nil {
		return src.explain(err, rng)
	}
	runs := ""
	if res.Runs > 1 {
		runs = fmt.Sprintf(" (%d runs of a resumed stream, back to back)", res.Runs)
	}
	kind := "video"
	if res.VideoFrames == 0 {
		kind = "sound" // a stream without pictures
	}
	fmt.Fprintf(text, "exported %v of %s%s (from %v) to %s in %v: %d video frames, %d audio packets, %d damaged blocks skipped\n",
		res.Duration.Round(time.Millisecond), kind, runs, res.Start.Round(time.Millisecond), out, time.Since(start).Round(time.Millisecond),
		res.VideoFrames, res.AudioPackets, res.DamagedBlocks)
	fmt.Fprint(text, gaps)
	if res.EndedAt > 0 {
		fmt.Fprintf(text, "the export ends at block %d: the broadcaster resumed the stream there with another picture size or other tracks, which one WebM file cannot hold\n", res.EndedAt)
	}
	return nil
}

// hasGap says whether f lacks a block below its length.
func hasGap(f *feed.Feed) bool {
	for i := range f.Length() {
		if !f.Has(i) {
			return true
		}
	}
	return false
}

// videoToStdout refuses a terminal as stdout for WebM video (what: watch's -o -, export's
// output -): pipe it into a player (example says how) or give a file name.
func (e *env) videoToStdout(what, example string) error {
	if isTerminalWriter(e.out) {
		return usagef("%s writes video to stdout, which is a terminal here: pipe it into a player (%s) or give a file name", what, example)
	}
	return nil
}

// walkedSource is an export's block source that notes what the export read: how far the
// stream's timeline reached (the runs of a resumed stream joined as the export joins them)
// and the first block this copy does not hold, so that a failure can be said in words.
type walkedSource struct {
	export.BlockSource
	runs       *block.Runs
	shapeEnd   bool          // a later header changed the tracks: the export ends there
	end        time.Duration // where the units read so far end
	missing    uint64        // the first block not stored here, when hasMissing
	hasMissing bool
	firstPic   time.Duration // the first picture's time, when hasPic
	hasPic     bool
	readTo     uint64 // 1 + the newest block read
}

func (s *walkedSource) Block(ctx context.Context, i uint64) ([]byte, error) {
	b, err := s.BlockSource.Block(ctx, i)
	s.readTo = max(s.readTo, i+1)
	if err != nil {
		if errors.Is(err, feed.ErrNotStored) && !s.hasMissing {
			s.missing, s.hasMissing = i, true
		}
		return b, err
	}
	if s.shapeEnd {
		return b, nil
	}
	if block.KindOf(b) == block.KindHeader {
		if h, err := block.DecodeHeader(b); err == nil {
			if s.runs == nil {
				s.runs = block.NewRuns(h)
			} else if !s.runs.Next(h) {
				s.shapeEnd = true
			}
		}
		return b, nil
	}
	if m, err := block.DecodeMedia(b); err == nil && s.runs != nil {
		for _, u := range m.Units {
			s.runs.Place(&u)
			s.end = max(s.end, u.PTS+u.Duration)
			if u.Track == block.Video && (!s.hasPic || u.PTS < s.firstPic) {
				s.firstPic, s.hasPic = u.PTS, true
			}
		}
	}
	return b, nil
}

// explain says in words why the export of rng failed.
func (s *walkedSource) explain(err error, rng export.Range) error {
	switch {
	case errors.Is(err, export.ErrEmpty):
		// Only the whole stream, read to its end, tells its length: a resumed stream's
		// runs are joined back to back, and their headers are found by reading.
		if s.end == 0 {
			return wordedError{"nothing to export: the stream holds no pictures or sound yet", err}
		}
		where := ""
		switch {
		case rng.From > 0 && rng.To > 0:
			where = fmt.Sprintf(" between %v and %v", rng.From, rng.To)
		case rng.From > 0:
			where = fmt.Sprintf(" from %v on", rng.From)
		case rng.To > 0:
			where = fmt.Sprintf(" before %v", rng.To)
		}
		if rng.To > 0 && s.hasPic && s.firstPic >= rng.To {
			return wordedError{fmt.Sprintf("nothing to export%s: the stream's first picture is at %v", where, roundLength(s.firstPic)), err}
		}
		if s.readTo < s.Len() && !s.shapeEnd {
			// The export stopped reading past To: what it read does not tell the length.
			return wordedError{fmt.Sprintf("nothing to export%s: the stream has no pictures or sound there", where), err}
		}
		what := "the stream is"
		if s.shapeEnd {
			what = "the part of the stream one file can hold (its tracks change later) is"
		}
		return wordedError{fmt.Sprintf("nothing to export%s: %s %v long", where, what, roundLength(s.end)), err}
	case s.hasMissing && errors.Is(err, feed.ErrNotStored):
		if s.end == 0 {
			return wordedError{fmt.Sprintf("this copy holds only part of the stream (block %d, at its start, is missing): "+
				"watch the stream again to fetch it (watch CARD -o FILE also writes what a copy holds, its gaps left out)", s.missing), err}
		}
		return wordedError{fmt.Sprintf("this copy holds only part of the stream (block %d, %v into it, is missing): "+
			"export the part before it with -to, or watch the stream again to fetch the rest", s.missing, roundLength(s.end)), err}
	}
	return wordedError{"export failed: " + exportErrText(err), err}
}

// roundLength rounds a stream's length for reading: to a tenth of a second under 10 s, else
// to the second.
func roundLength(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// exportErrText is an export error without the package's "export: " prefix, for a message
// that says what failed already.
func exportErrText(err error) string { return strings.TrimPrefix(err.Error(), "export: ") }

// wordedError is err said in other words; errors.Is and As still see err.
type wordedError struct {
	msg string
	err error
}

func (w wordedError) Error() string { return w.msg }
func (w wordedError) Unwrap() error { return w.err }

// endingSource is a stored stream for export.Live: its end (a block past the length) is
// io.EOF, and it is written from block 1, never from the newest sync point.
type endingSource struct{ *walkedSource }

func (s endingSource) Block(ctx context.Context, i uint64) ([]byte, error) {
	if i >= s.Len() {
		return nil, io.EOF
	}
	return s.walkedSource.Block(ctx, i)
}

func (endingSource) LatestSync() (uint64, bool) { return 0, false }

// streamTime is a flag's time into the stream: a Go duration (1m30s; negative ones are kept
// so that the command can say what is wrong with them) or a clock reading (1:30), as watch
// -from and seek take it.
type streamTime time.Duration

func (t *streamTime) String() string { return time.Duration(*t).String() }

func (t *streamTime) Set(s string) error {
	if d, err := time.ParseDuration(s); err == nil {
		*t = streamTime(d)
		return nil
	}
	d, err := mediatime.Parse(s)
	if err != nil {
		return errors.New("a time into the stream is written 1m30s or 1:30")
	}
	*t = streamTime(d)
	return nil
}
