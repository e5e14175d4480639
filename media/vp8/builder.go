package vp8

import (
	"sync"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
)

// Builder puts this encoder into mediadevices' pipelines: it implements
// codec.VideoEncoderBuilder, so it can go to mediadevices.WithVideoEncoders or be called
// directly on a video.Reader.
type Builder struct {
	// Config gives the bit rate, key frame interval, speed and threads. Width, Height and
	// the frame rate come from the source's properties, or from its first frame.
	Config Config
	// Clock, when set, stamps each frame with its capture time the moment the source
	// hands it over (ReadEncoder.ReadFrame returns it).
	Clock func() time.Duration
}

// RTPCodec describes VP8 for WebRTC, as mediadevices' own VP8 builder does.
func (b *Builder) RTPCodec() *codec.RTPCodec { return codec.NewRTPVP8Codec(90000) }

// BuildVideoEncoder wraps r. The libvpx encoder is created on the first frame, when the
// real frame size is known.
func (b *Builder) BuildVideoEncoder(r video.Reader, p prop.Media) (codec.ReadCloser, error) {
	cfg := b.Config
	if p.Width > 0 && p.Height > 0 {
		cfg.Width, cfg.Height = p.Width, p.Height
	}
	if p.FrameRate > 0 && cfg.FrameRateNum == 0 {
		cfg.FrameRateNum, cfg.FrameRateDen = int(p.FrameRate*1000+0.5), 1000
	}
	re := &ReadEncoder{r: r, cfg: cfg, clock: b.Clock}
	re.ctl = &controller{re: re}
	return re, nil
}

// StampedFrame is an encoded frame with the capture time of its picture.
type StampedFrame struct {
	Frame
	// Capture is the Builder's Clock reading when the source returned the picture.
	Capture time.Duration
}

// ReadEncoder pulls pictures from a video.Reader and encodes them (codec.ReadCloser).
type ReadEncoder struct {
	r     video.Reader
	cfg   Config
	clock func() time.Duration
	ctl   *controller

	mu  sync.Mutex // guards enc and cfg.BitRate against the controller
	enc *Encoder
}

// controller forwards requests to the encoder, or holds them until it exists.
type controller struct {
	re *ReadEncoder
}

func (c *controller) ForceKeyFrame() error {
	c.re.mu.Lock()
	defer c.re.mu.Unlock()
	if e := c.re.enc; e != nil {
		return e.ForceKeyFrame()
	}
	return nil // the first frame is a key frame anyway
}

func (c *controller) SetBitRate(bps int) error {
	c.re.mu.Lock()
	defer c.re.mu.Unlock()
	if e := c.re.enc; e != nil {
		return e.SetBitRate(bps)
	}
	c.re.cfg.BitRate = bps
	return nil
}

// Read implements codec.ReadCloser.
func (re *ReadEncoder) Read() ([]byte, func(), error) {
	f, err := re.ReadFrame()
	return f.Data, func() {}, err
}

// ReadFrame reads and encodes the next picture.
func (re *ReadEncoder) ReadFrame() (StampedFrame, error) {
	img, release, err := re.r.Read()
	if err != nil {
		return StampedFrame{}, err
	}
	defer release()
	var at time.Duration
	if re.clock != nil {
		at = re.clock()
	}
	re.mu.Lock()
	enc := re.enc
	if enc == nil {
		cfg := re.cfg
		b := img.Bounds()
		cfg.Width, cfg.Height = b.Dx(), b.Dy()
		enc, err = NewEncoder(cfg)
		if err != nil {
			re.mu.Unlock()
			return StampedFrame{}, err
		}
		re.enc = enc
	}
	re.mu.Unlock()
	var f Frame
	if re.clock != nil {
		f, err = enc.EncodeAt(img, at)
	} else {
		f, err = enc.Encode(img)
	}
	return StampedFrame{Frame: f, Capture: at}, err
}

// Encoder returns the libvpx encoder, nil before the first frame.
func (re *ReadEncoder) Encoder() *Encoder {
	re.mu.Lock()
	defer re.mu.Unlock()
	return re.enc
}

// Controller implements codec.Controllable: the result is a codec.KeyFrameController and a
// codec.BitRateController.
func (re *ReadEncoder) Controller() codec.EncoderController { return re.ctl }

// Close closes the encoder (not the source).
func (re *ReadEncoder) Close() error {
	re.mu.Lock()
	defer re.mu.Unlock()
	if re.enc != nil {
		return re.enc.Close()
	}
	return nil
}
