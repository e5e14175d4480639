// Package audioout plays PCM: through the system's sound server or driver with miniaudio
// (github.com/gen2brain/malgo: PulseAudio or ALSA on Linux, WASAPI on Windows, Core Audio
// on macOS), or through a silent sink paced by a timer when there is no device. Both pull
// samples through a fill function, so the caller's audio clock runs at the device's pace.
package audioout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
	"unsafe"

	"github.com/dazaarvision/dazaar-vision/media/internal/audioquiet"
	"github.com/gen2brain/malgo"
)

// Messages ALSA or JACK print while miniaudio probes them go to the debug log, not stderr
// (media/internal/audioquiet).
func init() {
	audioquiet.SetSink(func(msg string) { slog.Debug("sound system", "msg", msg) })
}

// Output is where decoded sound goes.
type Output interface {
	// Start begins calling fill until Close. fill fills its argument with interleaved
	// float32 samples; it runs on the output's own thread and must not block.
	Start(rate, channels int, fill func([]float32)) error
	// Latency is the time from fill to the loudspeaker.
	Latency() time.Duration
	// Name says which backend plays ("pulseaudio", "alsa", "silent", ...).
	Name() string
	Close() error
}

// period is the silent sink's and the device's buffer period.
const period = 10 * time.Millisecond

// Silent consumes samples at real time and discards them (or hands them to Tap), so that
// playback keeps its audio clock when there is no sound device.
type Silent struct {
	// Tap, when set before Start, sees every buffer (tests measure the sound with it).
	Tap func([]float32)

	cancel context.CancelFunc
	done   chan struct{}
}

// NewSilent returns a silent sink.
func NewSilent() *Silent { return &Silent{} }

// Start begins pulling every 10 ms.
func (s *Silent) Start(rate, channels int, fill func([]float32)) error {
	if s.cancel != nil {
		return errors.New("audioout: already started")
	}
	if rate <= 0 || channels <= 0 {
		return fmt.Errorf("audioout: invalid format %d Hz × %d", rate, channels)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		buf := make([]float32, rate*channels*int(period)/int(time.Second))
		t := time.NewTicker(period)
		defer t.Stop()
		start := time.Now()
		var pulled time.Duration
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// Pull as much as real time says is due, so a late tick does not slow the clock.
			for pulled+period <= time.Since(start) {
				clear(buf)
				fill(buf)
				if s.Tap != nil {
					s.Tap(buf)
				}
				pulled += period
			}
		}
	}()
	return nil
}

// Latency is one period.
func (s *Silent) Latency() time.Duration { return period }

// Name is "silent".
func (s *Silent) Name() string { return "silent" }

// Close stops pulling and waits for the goroutine.
func (s *Silent) Close() error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return nil
}

// Device plays through miniaudio.
type Device struct {
	backends []malgo.Backend
	ctx      *malgo.AllocatedContext
	dev      *malgo.Device
	name     string
	latency  time.Duration
}

// systemBackends are the real backends tried, in order; miniaudio's null backend is left
// out on purpose, so that "no device" is noticed and reported.
func systemBackends() []malgo.Backend {
	switch runtime.GOOS {
	case "windows":
		return []malgo.Backend{malgo.BackendWasapi, malgo.BackendDsound, malgo.BackendWinmm}
	case "darwin":
		return []malgo.Backend{malgo.BackendCoreaudio}
	default:
		return []malgo.Backend{malgo.BackendPulseaudio, malgo.BackendAlsa, malgo.BackendJack}
	}
}

// BackendNull is miniaudio's null backend. malgo v0.11.24's own BackendNull constant is
// one short: it names ma_backend_custom, which miniaudio inserted before ma_backend_null.
const BackendNull = malgo.Backend(malgo.BackendNull + 1)

var backendNames = map[malgo.Backend]string{
	malgo.BackendWasapi: "wasapi", malgo.BackendDsound: "directsound", malgo.BackendWinmm: "winmm",
	malgo.BackendCoreaudio: "coreaudio", malgo.BackendPulseaudio: "pulseaudio", malgo.BackendAlsa: "alsa",
	malgo.BackendJack: "jack", BackendNull: "miniaudio-null",
}

// NewDevice returns an output on the default playback device of the system's backends.
func NewDevice() *Device { return &Device{backends: systemBackends()} }

// NewDeviceWithBackend returns an output on one miniaudio backend (tests use
// BackendNull, which runs miniaudio's real device thread without a sound card).
func NewDeviceWithBackend(b malgo.Backend) *Device { return &Device{backends: []malgo.Backend{b}} }

// Start opens the device and starts it.
func (d *Device) Start(rate, channels int, fill func([]float32)) error {
	audioquiet.Install() // the hooks before miniaudio loads ALSA or JACK (a no-op once done)
	var lastErr error
	for _, b := range d.backends {
		ctx, err := malgo.InitContext([]malgo.Backend{b}, malgo.ContextConfig{}, nil)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", backendNames[b], err)
			continue
		}
		cfg := malgo.DefaultDeviceConfig(malgo.Playback)
		cfg.Playback.Format = malgo.FormatF32
		cfg.Playback.Channels = uint32(channels)
		cfg.SampleRate = uint32(rate)
		cfg.PeriodSizeInMilliseconds = uint32(period / time.Millisecond)
		cfg.Periods = 3
		cb := malgo.DeviceCallbacks{Data: func(out, _ []byte, frames uint32) {
			n := int(frames) * channels
			if len(out) < n*4 {
				n = len(out) / 4
			}
			samples := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(out))), n)
			clear(samples)
			fill(samples)
		}}
		dev, err := malgo.InitDevice(ctx.Context, cfg, cb)
		if err != nil {
			ctx.Uninit()
			ctx.Free()
			lastErr = fmt.Errorf("%s: %w", backendNames[b], err)
			continue
		}
		if err := dev.Start(); err != nil {
			dev.Uninit()
			ctx.Uninit()
			ctx.Free()
			lastErr = fmt.Errorf("%s: %w", backendNames[b], err)
			continue
		}
		d.ctx, d.dev, d.name = ctx, dev, backendNames[b]
		d.latency = time.Duration(cfg.Periods) * period
		return nil
	}
	if lastErr == nil {
		lastErr = errors.New("no backend")
	}
	return fmt.Errorf("audioout: no sound device: %w", lastErr)
}

// Latency is the device's buffering.
func (d *Device) Latency() time.Duration { return d.latency }

// Name is the backend in use.
func (d *Device) Name() string { return d.name }

// Close stops and releases the device.
func (d *Device) Close() error {
	if d.dev != nil {
		d.dev.Uninit()
		d.dev = nil
	}
	if d.ctx != nil {
		d.ctx.Uninit()
		d.ctx.Free()
		d.ctx = nil
	}
	return nil
}

// Open starts the system's sound device, or a silent sink when there is none (logging
// why), and returns whichever plays.
func Open(rate, channels int, fill func([]float32), log *slog.Logger) (Output, error) {
	d := NewDevice()
	err := d.Start(rate, channels, fill)
	if err == nil {
		return d, nil
	}
	if log != nil {
		log.Info("playing without sound", "reason", err)
	}
	s := NewSilent()
	if err := s.Start(rate, channels, fill); err != nil {
		return nil, err
	}
	return s, nil
}
