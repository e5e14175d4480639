package session

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/audiolevel"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/playback"
)

// AudioLevel is a microphone's loudness over the last short window, in dBFS (peak and RMS,
// from audiolevel.Floor for silence to 0 for full scale).
type AudioLevel = audiolevel.Level

// LevelFraction is where a level sits on a meter drawn in decibels (0: −60 dBFS or quieter,
// 1: full scale).
func LevelFraction(dbfs float64) float64 { return audiolevel.Fraction(dbfs) }

// Device check timing and sizes.
const (
	// LevelEvery is how often the level is measured and reported (20 times a second).
	LevelEvery = 50 * time.Millisecond
	// previewMaxW×previewMaxH bounds the preview's pictures (a screen's are scaled down).
	previewMaxW, previewMaxH = 640, 480
	// screenPreviewRate is the screen preview's frame rate: reading a whole screen costs
	// more than a camera's picture, and a preview needs no more to show what is shared.
	screenPreviewRate = 10
)

// DeviceCheckConfig is what the Go live wizard's "Picture and sound" step checks.
type DeviceCheckConfig struct {
	Video *Source // nil: no picture
	Audio *Source // nil: no sound
	// Quality is the preset whose size and frame rate the camera is opened at (empty:
	// medium), so the preview shows what going live captures.
	Quality string
	// Frames gets the camera's or the screen's pictures (at most 640×480, scaled down to fit,
	// recycled: the sink releases each as the preview does). nil: the video is not opened.
	Frames playback.FrameSink
	// OnLevel is called with the microphone's level LevelEvery, on the check's goroutine
	// (return quickly: hand it to the UI's thread). Level has the newest too.
	OnLevel func(AudioLevel)
	Logger  *slog.Logger

	// openAudio, in tests, replaces opening Audio (a generated quiet source).
	openAudio func() (*capture.AudioSource, error)
}

// DeviceCheck shows a camera's or the screen's picture and a microphone's level before going
// live, without encoding or sending anything. It holds the devices open: Close it before
// going live with the same devices (a device opens once at a time).
type DeviceCheck struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	vs     *capture.VideoSource
	as     *capture.AudioSource
	log    *slog.Logger

	level     atomic.Pointer[AudioLevel]
	frames    atomic.Int64
	unwatched atomic.Int64 // pictures read but not handed over: nobody watched
	levels    atomic.Int64
	videoErr  atomic.Pointer[error]
	audioErr  atomic.Pointer[error]
	closeOnce sync.Once
}

// StartDeviceCheck opens the chosen devices and starts showing their picture and level. It
// returns an error (in words for people, naming the device) when a device cannot be opened;
// then nothing stays open. The check runs until Close or ctx ends; Close must be called
// either way (it waits for the check's goroutines and releases the devices).
func StartDeviceCheck(ctx context.Context, cfg DeviceCheckConfig) (*DeviceCheck, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &DeviceCheck{log: cfg.Logger.With("component", "device check")}
	silent := audiolevel.Silent
	c.level.Store(&silent)
	if cfg.Video != nil && cfg.Frames != nil {
		name := cfg.Quality
		if name == "" {
			name = broadcast.Medium.Name
		}
		p, err := broadcast.PresetByName(name)
		if err != nil {
			return nil, err
		}
		want := capture.VideoWant{Width: p.Width, Height: p.Height, FrameRate: float64(p.FrameRate)}
		if cfg.Video.Kind == SourceScreen {
			want.FrameRate = screenPreviewRate
		}
		if c.vs, err = capture.OpenVideo(cfg.Video.dev, want); err != nil {
			return nil, fmt.Errorf("cannot open %s: %w", cfg.Video.Label, err)
		}
	}
	if cfg.Audio != nil || cfg.openAudio != nil {
		var err error
		if cfg.openAudio != nil {
			c.as, err = cfg.openAudio()
		} else {
			c.as, err = capture.OpenAudio(cfg.Audio.dev, capture.AudioWant{SampleRate: 48000, Channels: 1})
		}
		if err != nil {
			if c.vs != nil {
				c.vs.Close()
			}
			label := "the microphone"
			if cfg.Audio != nil {
				label = cfg.Audio.Label
			}
			return nil, fmt.Errorf("cannot open %s: %w", label, err)
		}
	}
	ctx, c.cancel = context.WithCancel(ctx)
	if c.vs != nil {
		c.run(func() { c.pictures(ctx, cfg.Frames) })
	}
	if c.as != nil {
		c.run(func() { c.sound(ctx, cfg.OnLevel) })
	}
	// Closing the devices is what ends a Read in progress, so ctx's end closes them.
	c.run(func() {
		<-ctx.Done()
		c.closeDevices()
	})
	return c, nil
}

func (c *DeviceCheck) run(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

func (c *DeviceCheck) closeDevices() {
	c.closeOnce.Do(func() {
		if c.vs != nil {
			c.vs.Close()
		}
		if c.as != nil {
			c.as.Close()
		}
	})
}

// pictures reads the video device and hands each picture, converted to RGBA in a recycled
// image, to sink. While a sink that implements playback.Watched says nobody looks (the window
// is hidden), pictures are still read, so the device does not stall, but neither converted nor
// handed over.
func (c *DeviceCheck) pictures(ctx context.Context, sink playback.FrameSink) {
	var pool *playback.FramePool
	watched, _ := sink.(playback.Watched)
	start := time.Now()
	for ctx.Err() == nil {
		img, release, err := c.vs.Read()
		if err != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("the picture stopped: %w", err)
				c.videoErr.Store(&err)
				c.log.Warn("device check: video", "err", err)
			}
			return
		}
		if ctx.Err() != nil {
			release()
			return
		}
		if watched != nil && !watched.Watched() {
			release()
			c.unwatched.Add(1)
			continue
		}
		pool = fitPool(pool, img.Bounds())
		f := pool.Convert(img, time.Since(start))
		release()
		c.frames.Add(1)
		sink.ShowFrame(f)
	}
}

// fitPool is pool, or a new one when the pictures' size changed.
func fitPool(pool *playback.FramePool, b image.Rectangle) *playback.FramePool {
	w, h := playback.FitSize(b.Dx(), b.Dy(), previewMaxW, previewMaxH)
	if pool != nil {
		if pw, ph := pool.Size(); pw == w && ph == h {
			return pool
		}
	}
	// Spare pictures: the one shown, the one parked for the next draw and the one painted.
	return playback.NewFramePool(w, h, 4)
}

// sound reads the microphone and reports its level every LevelEvery.
func (c *DeviceCheck) sound(ctx context.Context, onLevel func(AudioLevel)) {
	m := audiolevel.NewMeter(max(1, c.as.SampleRate), LevelEvery)
	emit := func(l AudioLevel) {
		c.level.Store(&l)
		c.levels.Add(1)
		if onLevel != nil {
			onLevel(l)
		}
	}
	for ctx.Err() == nil {
		chunk, release, err := c.as.Read()
		if err != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("the sound stopped: %w", err)
				c.audioErr.Store(&err)
				c.log.Warn("device check: audio", "err", err)
			}
			return
		}
		if ctx.Err() != nil {
			release()
			return
		}
		m.AddWave(chunk, emit)
		release()
	}
}

// Level is the microphone's newest level (silent before the first window, or without one).
func (c *DeviceCheck) Level() AudioLevel { return *c.level.Load() }

// Counts is how many pictures were shown and levels measured so far.
func (c *DeviceCheck) Counts() (frames, levels int64) { return c.frames.Load(), c.levels.Load() }

// Unwatched counts the pictures read but not handed over because the sink said nobody watched.
func (c *DeviceCheck) Unwatched() int64 { return c.unwatched.Load() }

// Err is why the picture or the sound stopped before Close, if one did (a camera unplugged).
func (c *DeviceCheck) Err() error {
	var errs []error
	if e := c.videoErr.Load(); e != nil {
		errs = append(errs, *e)
	}
	if e := c.audioErr.Load(); e != nil {
		errs = append(errs, *e)
	}
	return errors.Join(errs...)
}

// Close stops the check, waits for its goroutines and releases the devices (a driver
// stuck in a read is given up to a second). It may be called more than once.
func (c *DeviceCheck) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}
