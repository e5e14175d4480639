// Package capture finds and opens cameras, microphones and screens through
// pion/mediadevices' drivers: v4l2 cameras and ALSA/PulseAudio microphones (miniaudio) on
// Linux, the library's own drivers on Windows and macOS, X11 screens, and its test drivers
// (videotest, audiotest), which are the default when no real device exists. Microphones are
// probed when the devices are first listed or opened, not when the program starts
// (microphone.go).
package capture

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pion/mediadevices/pkg/driver"
	_ "github.com/pion/mediadevices/pkg/driver/audiotest" // default microphone when none exists
	_ "github.com/pion/mediadevices/pkg/driver/camera"    // v4l2 / AVFoundation / DirectShow
	"github.com/pion/mediadevices/pkg/driver/screen"
	_ "github.com/pion/mediadevices/pkg/driver/videotest" // default camera when none exists
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/mediadevices/pkg/wave"

	"github.com/dazaarvision/dazaar-vision/media/vp8"
)

// Kind is what a device captures.
type Kind int

// Kinds of device.
const (
	Camera Kind = iota + 1
	Microphone
	Screen
)

func (k Kind) String() string {
	switch k {
	case Camera:
		return "camera"
	case Microphone:
		return "microphone"
	case Screen:
		return "screen"
	}
	return "unknown"
}

// Device is one capture device.
type Device struct {
	// ID identifies the device for Open* during this process's life.
	ID   string
	Kind Kind
	// Label is the driver's label (a device path, an X11 screen, "VideoTest", "TestScene").
	Label string
	// Name is a human name where the driver has one.
	Name string
	// Test is set on mediadevices' synthetic test drivers.
	Test    bool
	Default bool // the system's default device of its kind
}

// Test drivers' labels in mediadevices.
const (
	videoTestLabel = "VideoTest"
	audioTestLabel = "AudioTest"
	// miniaudioNullLabel is the microphone mediadevices registers for miniaudio's null
	// backend (the device ID "null" in hex) on machines without sound hardware: it
	// records silence, so it is no real device and is left out.
	miniaudioNullLabel = "6e756c6c"
)

var screensOnce sync.Mutex

// RescanScreens registers the X11 screens of the current $DISPLAY. mediadevices looks for
// screens once, when the program starts; call this after a display appears (as tests do
// after starting Xvfb).
func RescanScreens() {
	screensOnce.Lock()
	defer screensOnce.Unlock()
	for _, d := range driver.GetManager().Query(driver.FilterDeviceType(driver.Screen)) {
		driver.GetManager().Delete(d.ID())
	}
	screen.Initialize()
}

func kindOf(t driver.DeviceType) Kind {
	switch t {
	case driver.Camera:
		return Camera
	case driver.Microphone:
		return Microphone
	case driver.Screen:
		return Screen
	}
	return 0
}

// Devices lists every device, real ones first (highest priority first), test drivers
// last, each kind together.
func Devices() []Device {
	probeMicrophones()
	logAudioMessages()
	var out []Device
	for _, d := range driver.GetManager().Query(func(driver.Driver) bool { return true }) {
		info := d.Info()
		k := kindOf(info.DeviceType)
		if k == 0 || (k == Microphone && info.Label == miniaudioNullLabel) {
			continue
		}
		out = append(out, Device{
			ID: d.ID(), Kind: k, Label: info.Label, Name: info.Name,
			Test:    info.Label == videoTestLabel || info.Label == audioTestLabel || info.Label == sceneLabel,
			Default: info.Priority > driver.PriorityNormal,
		})
	}
	slices.SortStableFunc(out, func(a, b Device) int {
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		if a.Test != b.Test {
			if a.Test {
				return 1
			}
			return -1
		}
		if a.Default != b.Default {
			if a.Default {
				return -1
			}
			return 1
		}
		// Among test cameras mediadevices' own comes first: it is the default.
		if a.Test && IsScene(a) != IsScene(b) {
			if IsScene(a) {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Label, b.Label)
	})
	return out
}

// ErrNoDevice is returned when no device of the wanted kind exists.
var ErrNoDevice = errors.New("no capture device")

// DefaultDevice picks the device of kind k to use when the user chose none: a real
// device when there is one, the test driver otherwise.
//
// For Screen it is the first X11 screen of $DISPLAY (capture.DefaultDevice(capture.Screen)
// is how a session records the screen); the screens are looked for again when none is
// known, since a display may have appeared after the program started.
func DefaultDevice(k Kind) (Device, error) {
	for pass := 0; pass < 2; pass++ {
		for _, d := range Devices() {
			if d.Kind == k {
				return d, nil
			}
		}
		if k != Screen || os.Getenv("DISPLAY") == "" {
			break
		}
		RescanScreens()
	}
	if k == Screen && os.Getenv("DISPLAY") == "" {
		return Device{}, fmt.Errorf("%w: no screen (no X11 display: $DISPLAY is not set)", ErrNoDevice)
	}
	return Device{}, fmt.Errorf("%w: no %s", ErrNoDevice, k)
}

// TestDevice returns mediadevices' test driver of kind k (Camera or Microphone).
func TestDevice(k Kind) (Device, error) {
	for _, d := range Devices() {
		if d.Kind == k && d.Test && !IsScene(d) {
			return d, nil
		}
	}
	return Device{}, fmt.Errorf("%w: no test %s", ErrNoDevice, k)
}

func find(id string) (driver.Driver, error) {
	probeMicrophones()
	ds := driver.GetManager().Query(driver.FilterID(id))
	if len(ds) == 0 {
		return nil, fmt.Errorf("%w: device %q is gone", ErrNoDevice, id)
	}
	return ds[0], nil
}

// VideoWant is the picture a caller asks a video device for.
type VideoWant struct {
	Width, Height int
	FrameRate     float64
}

// VideoSource is an open video device.
type VideoSource struct {
	video.Reader
	// Width, Height and FrameRate are what the device was opened with; the frames' real
	// size is authoritative (the encoder configures itself from the first frame).
	Width, Height int
	FrameRate     float64
	Device        Device
	guard         *closeGuard
}

// Close releases the device; Read returns io.EOF afterwards.
func (s *VideoSource) Close() error { return s.guard.close() }

// closeGuard makes closing a device safe while another goroutine is inside its Read.
// Some drivers never return from a Read that was waiting when they were closed
// (mediadevices' videotest waits on a ticker that Close stops), so Close marks the source
// closed, waits up to closeWait for the Read in progress to come back, and only then
// closes the driver.
type closeGuard struct {
	d       driver.Driver
	mu      sync.Mutex
	closed  bool
	reading chan struct{} // open while a Read is in progress
	done    bool
	err     error
}

const closeWait = time.Second

func (g *closeGuard) begin() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.reading = make(chan struct{})
	return true
}

// end reports whether the source was closed during the Read.
func (g *closeGuard) end() (closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.reading)
	g.reading = nil
	return g.closed
}

func (g *closeGuard) close() error {
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return g.err
	}
	g.closed = true
	reading := g.reading
	g.mu.Unlock()
	if reading != nil {
		t := time.NewTimer(closeWait)
		select {
		case <-reading:
		case <-t.C:
		}
		t.Stop()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done {
		g.done = true
		if g.d != nil {
			g.err = g.d.Close()
		}
	}
	return g.err
}

func guardVideo(g *closeGuard, r video.Reader) video.Reader {
	return video.ReaderFunc(func() (image.Image, func(), error) {
		if !g.begin() {
			return nil, func() {}, io.EOF
		}
		img, release, err := r.Read()
		if g.end() {
			if err == nil {
				release()
			}
			return nil, func() {}, io.EOF
		}
		return img, release, err
	})
}

func guardAudio(g *closeGuard, r audio.Reader) audio.Reader {
	return audio.ReaderFunc(func() (wave.Audio, func(), error) {
		if !g.begin() {
			return nil, func() {}, io.EOF
		}
		chunk, release, err := r.Read()
		if g.end() {
			if err == nil {
				release()
			}
			return nil, func() {}, io.EOF
		}
		return chunk, release, err
	})
}

// OpenVideo opens a camera or screen with the properties nearest to want. Test drivers
// and screens produce exactly the size (screens: the screen's size) and rate asked for.
func OpenVideo(dev Device, want VideoWant) (*VideoSource, error) {
	d, err := find(dev.ID)
	if err != nil {
		return nil, err
	}
	rec, ok := d.(driver.VideoRecorder)
	if !ok {
		return nil, fmt.Errorf("capture: %s %q does not capture video", dev.Kind, dev.Label)
	}
	if err := d.Open(); err != nil {
		return nil, fmt.Errorf("capture: opening %s %q: %w", dev.Kind, dev.Label, err)
	}
	p := nearestVideo(d.Properties(), want)
	switch {
	case dev.Test:
		p.Width, p.Height, p.FrameRate = want.Width, want.Height, float32(want.FrameRate)
		p.FrameFormat = frame.FormatYUYV
	case dev.Kind == Screen:
		p.FrameRate = float32(want.FrameRate)
	}
	r, err := rec.VideoRecord(p)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("capture: starting %s %q at %dx%d: %w", dev.Kind, dev.Label, p.Width, p.Height, err)
	}
	g := &closeGuard{d: d}
	w, h := p.Width, p.Height
	if dev.Kind == Screen {
		r, w, h = fitDecoder(r, w, h)
	}
	return &VideoSource{Reader: guardVideo(g, r), Width: w, Height: h, FrameRate: float64(p.FrameRate), Device: dev, guard: g}, nil
}

// fitDecoder scales pictures larger than a viewer's VP8 decoder takes (vp8.MaxWidth ×
// MaxHeight) down to fit, keeping their shape: a screen shared across two monitors (5120×1440)
// would otherwise be encoded at its full size and no viewer could show it. Sizes stay even
// (4:2:0). Smaller pictures pass untouched.
func fitDecoder(r video.Reader, w, h int) (video.Reader, int, int) {
	if w <= vp8.MaxWidth && h <= vp8.MaxHeight {
		return r, w, h
	}
	f := max(float64(w)/vp8.MaxWidth, float64(h)/vp8.MaxHeight)
	sw, sh := int(float64(w)/f)&^1, int(float64(h)/f)&^1
	sw, sh = max(min(sw, vp8.MaxWidth), 2), max(min(sh, vp8.MaxHeight), 2)
	return video.Scale(sw, sh, nil)(r), sw, sh
}

func nearestVideo(ps []prop.Media, want VideoWant) prop.Media {
	var best prop.Media
	bestScore := -1.0
	for _, p := range ps {
		dw := float64(p.Width-want.Width) / float64(max(want.Width, 1))
		dh := float64(p.Height-want.Height) / float64(max(want.Height, 1))
		df := 0.0
		if p.FrameRate > 0 && want.FrameRate > 0 {
			df = (float64(p.FrameRate) - want.FrameRate) / want.FrameRate
			if df < 0 {
				df *= 2 // too slow is worse than too fast (extra frames are dropped)
			}
		}
		score := dw*dw + dh*dh + 0.5*df*df
		// Prefer formats that need no decompression.
		if p.FrameFormat == frame.FormatMJPEG {
			score += 0.01
		}
		if bestScore < 0 || score < bestScore {
			best, bestScore = p, score
		}
	}
	return best
}

// AudioWant is the sound a caller asks a microphone for.
type AudioWant struct {
	SampleRate int // the encoder's rate; 48000 for Opus
	Channels   int
}

// AudioSource is an open microphone.
type AudioSource struct {
	audio.Reader
	SampleRate, Channels int
	Device               Device
	guard                *closeGuard
}

// Close releases the device; Read returns io.EOF afterwards.
func (s *AudioSource) Close() error { return s.guard.close() }

// OpenAudio opens a microphone at the wanted rate and channels when the device offers
// them, else at its nearest.
func OpenAudio(dev Device, want AudioWant) (*AudioSource, error) {
	d, err := find(dev.ID)
	if err != nil {
		return nil, err
	}
	rec, ok := d.(driver.AudioRecorder)
	if !ok {
		return nil, fmt.Errorf("capture: %s %q does not capture audio", dev.Kind, dev.Label)
	}
	if err := d.Open(); err != nil {
		return nil, fmt.Errorf("capture: opening microphone %q: %w", dev.Label, err)
	}
	var best prop.Media
	bestScore := -1
	for _, p := range d.Properties() {
		score := abs(p.SampleRate-want.SampleRate) + 10000*abs(p.ChannelCount-want.Channels)
		if bestScore < 0 || score < bestScore {
			best, bestScore = p, score
		}
	}
	if best.SampleRate == 0 {
		best.SampleRate, best.ChannelCount = want.SampleRate, want.Channels
	}
	r, err := rec.AudioRecord(best)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("capture: starting microphone %q: %w", dev.Label, err)
	}
	g := &closeGuard{d: d}
	return &AudioSource{Reader: guardAudio(g, r), SampleRate: best.SampleRate, Channels: best.ChannelCount, Device: dev, guard: g}, nil
}

// NewAudioSource makes a source of sound from a reader of the caller's (a generated tone,
// a file): the broadcaster takes any rate and mono or stereo. Close makes Read return
// io.EOF (after waiting up to 1 s for a Read in progress).
func NewAudioSource(r audio.Reader, sampleRate, channels int) *AudioSource {
	g := &closeGuard{}
	return &AudioSource{Reader: guardAudio(g, r), SampleRate: sampleRate, Channels: channels, Device: Device{Label: "generated", Kind: Microphone}, guard: g}
}

// NewVideoSource makes a source of pictures from a reader of the caller's (a generated
// pattern). Close makes Read return io.EOF.
func NewVideoSource(r video.Reader, width, height int, frameRate float64) *VideoSource {
	g := &closeGuard{}
	return &VideoSource{Reader: guardVideo(g, r), Width: width, Height: height, FrameRate: frameRate, Device: Device{Label: "generated", Kind: Camera}, guard: g}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
