package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	fmt.Fprintf(e.err, "recording %s (%dx%d at %d fps) from %s into %s; interrupt to stop\n",
		preset.Name, preset.Width, preset.Height, preset.FrameRate, strings.Join(labels, " and "), dir)
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
	from := fs.Duration("from", 0, "start this far into the stream")
	to := fs.Duration("to", 0, "end this far into the stream (0: the end)")
	rest, err := parse(fs, args, 2, 2, "[-from D] [-to D] DIR OUT.webm")
	if err != nil {
		return err
	}
	if *from < 0 || *to < 0 {
		return usagef("-from and -to count from the stream's start and cannot be negative (got -from %v -to %v)", *from, *to)
	}
	if *to > 0 && *to <= *from {
		return usagef("-to %v must come after -from %v", *to, *from)
	}
	f, err := feed.Open(rest[0], feed.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("cannot open the feed: %w", err)
	}
	defer f.Close()
	if f.Encrypted() {
		return errors.New("this feed is encrypted; exporting it needs its key, which the command line does not hold yet")
	}
	bar := &export.Bar{W: e.err}
	start := time.Now()
	res, err := export.ToFile(e.ctx, feedSource{f}, rest[1], export.Options{Range: export.Range{From: *from, To: *to}, Progress: bar, Logger: e.log})
	if err != nil {
		return fmt.Errorf("export failed: %w", err)
	}
	runs := ""
	if res.Runs > 1 {
		runs = fmt.Sprintf(" (%d runs of a resumed stream, back to back)", res.Runs)
	}
	fmt.Fprintf(e.out, "exported %v of video%s (from %v) to %s in %v: %d video frames, %d audio packets, %d damaged blocks skipped\n",
		res.Duration.Round(time.Millisecond), runs, res.Start.Round(time.Millisecond), rest[1], time.Since(start).Round(time.Millisecond),
		res.VideoFrames, res.AudioPackets, res.DamagedBlocks)
	if res.EndedAt > 0 {
		fmt.Fprintf(e.out, "the export ends at block %d: the broadcaster resumed the stream there with another picture size or other tracks, which one WebM file cannot hold\n", res.EndedAt)
	}
	return nil
}
