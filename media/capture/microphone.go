package capture

// The microphone driver: pion/mediadevices' pkg/driver/microphone (v0.9.4, MIT licence,
// Copyright (c) 2019-2020 Pion), adapted so that the devices are probed when a list is first
// asked for (Devices, and Open* through find) instead of in the package's init: that probe
// (miniaudio's context, ALSA or PulseAudio enumerating devices) took 6-30 ms of every start
// of the program, the desktop window's included, which lists no device until Go live. It
// also reports a failed probe as no microphone where the original panics.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gen2brain/malgo"
	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/mediadevices/pkg/wave"

	"github.com/dazaarvision/dazaar-vision/media/internal/audioquiet"
)

var (
	micOnce sync.Once
	// micCtx is miniaudio's context for every microphone, kept for the process's life (as the
	// original driver's).
	micCtx *malgo.AllocatedContext
)

var errUnsupportedFormat = errors.New("the provided audio format is not supported")

// probeMicrophones registers the microphones with mediadevices' driver manager, once. What
// the sound libraries print meanwhile is held and logged as start-up messages.
func probeMicrophones() {
	micOnce.Do(func() {
		audioquiet.Install()
		audioquiet.SetSink(nil)
		defer audioquiet.SetSink(audioSink)
		ctx, err := malgo.InitContext(nil, malgo.ContextConfig{}, func(message string) {
			slog.Debug("microphone driver", "msg", message)
		})
		if err != nil {
			slog.Warn("no sound system for microphones", "err", err)
			return
		}
		micCtx = ctx
		devices, err := ctx.Devices(malgo.Capture)
		if err != nil {
			slog.Warn("cannot list the microphones", "err", err)
			return
		}
		for _, device := range devices {
			info, err := ctx.DeviceInfo(malgo.Capture, device.ID, malgo.Shared)
			if err != nil {
				continue
			}
			priority := driver.PriorityNormal
			if info.IsDefault > 0 {
				priority = driver.PriorityHigh
			}
			driver.GetManager().Register(&microphone{DeviceInfo: info}, driver.Info{
				Label:      device.ID.String(),
				DeviceType: driver.Microphone,
				Priority:   priority,
				Name:       info.Name(),
			})
		}
	})
}

// hostEndian is the machine's byte order (miniaudio uses it for samples).
var hostEndian = func() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{0x12, 0x34}) == 0x1234 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}()

type microphone struct {
	malgo.DeviceInfo
	chunkChan       chan []byte
	deviceCloseFunc func()
}

func (m *microphone) Open() error {
	m.chunkChan = make(chan []byte, 1)
	return nil
}

func (m *microphone) Close() error {
	if m.deviceCloseFunc != nil {
		m.deviceCloseFunc()
	}
	return nil
}

func (m *microphone) AudioRecord(inputProp prop.Media) (audio.Reader, error) {
	decoder, err := wave.NewDecoder(&wave.RawFormat{
		SampleSize:  inputProp.SampleSize,
		IsFloat:     inputProp.IsFloat,
		Interleaved: inputProp.IsInterleaved,
	})
	if err != nil {
		return nil, err
	}

	var config malgo.DeviceConfig
	config.DeviceType = malgo.Capture
	config.PerformanceProfile = malgo.LowLatency
	config.Capture.Channels = uint32(inputProp.ChannelCount)
	config.SampleRate = uint32(inputProp.SampleRate)
	config.PeriodSizeInMilliseconds = uint32(inputProp.Latency.Milliseconds())
	config.Capture.DeviceID = m.ID.Pointer()
	switch {
	case inputProp.SampleSize == 4 && inputProp.IsFloat:
		config.Capture.Format = malgo.FormatF32
	case inputProp.SampleSize == 2 && !inputProp.IsFloat:
		config.Capture.Format = malgo.FormatS16
	default:
		return nil, errUnsupportedFormat
	}

	cancelCtx, cancel := context.WithCancel(context.Background())
	chunkChan := m.chunkChan
	callbacks := malgo.DeviceCallbacks{Data: func(_, chunk []byte, _ uint32) {
		handOver(cancelCtx, chunkChan, chunk)
	}}
	device, err := malgo.InitDevice(micCtx.Context, config, callbacks)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := device.Start(); err != nil {
		cancel()
		device.Uninit()
		return nil, err
	}

	var closeOnce sync.Once
	m.deviceCloseFunc = func() {
		closeOnce.Do(func() {
			cancel() // unblocks the data callback
			device.Uninit()
			if m.chunkChan != nil {
				close(m.chunkChan)
				m.chunkChan = nil
			}
		})
	}
	chunks := m.chunkChan
	return audio.ReaderFunc(func() (wave.Audio, func(), error) {
		chunk, ok := <-chunks
		if !ok {
			m.deviceCloseFunc()
			return nil, func() {}, io.EOF
		}
		decoded, err := decoder.Decode(hostEndian, chunk, inputProp.ChannelCount)
		if err != nil {
			return nil, func() {}, err
		}
		switch d := decoded.(type) {
		case *wave.Float32Interleaved:
			d.Size.SamplingRate = inputProp.SampleRate
		case *wave.Int16Interleaved:
			d.Size.SamplingRate = inputProp.SampleRate
		default:
			return nil, func() {}, errUnsupportedFormat
		}
		return decoded, func() {}, nil
	}), nil
}

func (m *microphone) Properties() []prop.Media {
	var props []prop.Media
	for _, format := range m.Formats {
		// 48 kHz only, as the original driver (it has no resampler).
		p := prop.Media{Audio: prop.Audio{
			ChannelCount:  int(format.Channels),
			SampleRate:    48000,
			IsBigEndian:   hostEndian == binary.BigEndian,
			IsInterleaved: true, // miniaudio's samples are interleaved
			Latency:       20 * time.Millisecond,
		}}
		switch malgo.FormatType(format.Format) {
		case malgo.FormatF32:
			p.SampleSize, p.IsFloat = 4, true
		case malgo.FormatS16:
			p.SampleSize, p.IsFloat = 2, false
		default:
			continue
		}
		props = append(props, p)
	}
	return props
}

// handOver passes one captured chunk from miniaudio's thread to the reader. malgo's chunk is a
// view of miniaudio's own buffer, valid only during the callback (when miniaudio converts the
// format or rate it is a stack buffer refilled for the next callback; PulseAudio takes it back
// on return), so the reader gets a copy. It waits until the chunk is taken or the device
// closes: the channel holds one chunk (as the original driver's).
func handOver(ctx context.Context, ch chan<- []byte, chunk []byte) {
	c := append([]byte(nil), chunk...)
	select {
	case <-ctx.Done():
	case ch <- c:
	}
}
