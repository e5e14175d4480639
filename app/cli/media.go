package cli

import (
	"context"
	"errors"
	"fmt"
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
	fs.Init("record", 0)
	presetName := fs.String("preset", "medium", "quality: low, medium or high")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	testDevices := fs.Bool("test-devices", false, "use the built-in test camera and microphone even when real ones exist")
	desc := fs.String("description", "", "a description stored in the stream's header")
	rest, err := parse(fs, args, 1, "[-preset low|medium|high] [-duration D] [-test-devices] [-description TEXT] DIR")
	if err != nil {
		return err
	}
	preset, err := broadcast.PresetByName(*presetName)
	if err != nil {
		return usagef("%v", err)
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
	pick := capture.DefaultDevice
	if *testDevices {
		pick = capture.TestDevice
	}
	vd, err := pick(capture.Camera)
	if err != nil {
		return fmt.Errorf("no camera: %w", err)
	}
	ad, err := pick(capture.Microphone)
	if err != nil {
		return fmt.Errorf("no microphone: %w", err)
	}
	vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: preset.Width, Height: preset.Height, FrameRate: float64(preset.FrameRate)})
	if err != nil {
		return fmt.Errorf("cannot open the camera %q: %w", vd.Label, err)
	}
	as, err := capture.OpenAudio(ad, capture.AudioWant{SampleRate: 48000, Channels: 1})
	if err != nil {
		vs.Close()
		return fmt.Errorf("cannot open the microphone %q: %w", ad.Label, err)
	}
	b, err := broadcast.New(broadcast.Config{Preset: preset, Video: vs, Audio: as, Description: *desc, Sink: feedSink{f}, Logger: e.log})
	if err != nil {
		vs.Close()
		as.Close()
		return err
	}
	ctx := e.ctx
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	fmt.Fprintf(e.err, "recording %s (%dx%d at %d fps) from %q and %q into %s; interrupt to stop\n",
		preset.Name, preset.Width, preset.Height, preset.FrameRate, vd.Label, ad.Label, dir)
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
	fs.Init("export", 0)
	from := fs.Duration("from", 0, "start this far into the stream")
	to := fs.Duration("to", 0, "end this far into the stream (0: the end)")
	rest, err := parse(fs, args, 2, "[-from D] [-to D] DIR OUT.webm")
	if err != nil {
		return err
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
	fmt.Fprintln(e.err)
	if err != nil {
		return fmt.Errorf("export failed: %w", err)
	}
	fmt.Fprintf(e.out, "exported %v of video (from %v) to %s in %v: %d video frames, %d audio packets, %d damaged blocks skipped\n",
		res.Duration.Round(time.Millisecond), res.Start.Round(time.Millisecond), rest[1], time.Since(start).Round(time.Millisecond),
		res.VideoFrames, res.AudioPackets, res.DamagedBlocks)
	return nil
}
