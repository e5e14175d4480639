package vp8

/*
#cgo pkg-config: vpx
#cgo CFLAGS: -O3
#include "dv_vpx.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Config configures an Encoder. Zero fields take the defaults noted.
type Config struct {
	Width, Height int
	// FrameRateNum/FrameRateDen is the nominal frame rate (default 30/1). Rate control
	// spends BitRate over that many frames a second.
	FrameRateNum, FrameRateDen int
	// BitRate is the target in bits per second (default 1 Mbit/s).
	BitRate int
	// KeyFrameInterval is the most frames between two key frames (default 2 s worth),
	// used when KeyFrameEvery is 0.
	KeyFrameInterval int
	// KeyFrameEvery spaces key frames by capture time instead (EncodeAt's timestamps):
	// a key frame comes with the first frame at least this long after the previous key
	// frame (half a nominal frame of tolerance), whatever the real frame rate is.
	KeyFrameEvery time.Duration
	// CPUUsed is libvpx's speed setting: 1 (slowest, best) to 16 (fastest), or -1 to -16
	// for real-time adaptive speed, where libvpx picks the speed that meets the frame's
	// deadline starting from that value. Default -6, WebRTC's choice for VP8 on desktops.
	CPUUsed int
	// Threads is libvpx's thread count, default 1. libvpx's VP8 threads wait for each
	// other by spinning, so on a machine whose cores are busy with other work two threads
	// measured up to 15 times slower than one (BENCHMARKS.md); raise it only where cores
	// are to spare.
	Threads int
}

func (c *Config) setDefaults() error {
	if c.Width <= 0 || c.Height <= 0 || c.Width > 8192 || c.Height > 8192 {
		return fmt.Errorf("vp8: invalid frame size %dx%d", c.Width, c.Height)
	}
	if c.FrameRateNum <= 0 || c.FrameRateDen <= 0 {
		c.FrameRateNum, c.FrameRateDen = 30, 1
	}
	if c.BitRate <= 0 {
		c.BitRate = 1_000_000
	}
	if c.KeyFrameInterval <= 0 {
		c.KeyFrameInterval = max(1, 2*c.FrameRateNum/c.FrameRateDen)
	}
	if c.CPUUsed == 0 {
		c.CPUUsed = -6
	}
	c.CPUUsed = min(16, max(-16, c.CPUUsed))
	if c.Threads <= 0 {
		c.Threads = 1
	}
	c.Threads = min(c.Threads, runtime.NumCPU(), 8)
	return nil
}

// frameDur is the nominal frame duration.
func (c *Config) frameDur() time.Duration {
	return time.Duration(int64(time.Second) * int64(c.FrameRateDen) / int64(c.FrameRateNum))
}

// rateControl holds libvpx's rate-control settings. They were chosen by measurement
// (TestRateControl, BENCHMARKS.md "VP8 rate control"), not by guess: with each preset on
// a camera-like moving scene the bit rate over every 5 s window stays within ±15 % of the
// target, and on the test camera's noise block within 1.5×.
type rateControl struct {
	undershootPct, overshootPct             int
	bufMs, bufInitialMs, bufOptimalMs       int
	minQ, maxQ                              int
	dropFrame, staticThreshold, maxIntraPct int
}

// defaultRC: CBR with a 1 s buffer (a viewer's link sees what a second of video costs);
// the quantizer may go to VP8's coarsest (63) so that incompressible pictures are made
// cheaper instead of overspending; frame dropping lets libvpx skip a picture when the
// buffer is about to overflow (a noise burst) rather than blow the budget.
var defaultRC = rateControl{
	undershootPct: 50, overshootPct: 10,
	bufMs: 1000, bufInitialMs: 500, bufOptimalMs: 600,
	minQ: 4, maxQ: 63,
	dropFrame: 25, staticThreshold: 1, maxIntraPct: 450,
}

func (rc rateControl) c() C.dv_rc {
	return C.dv_rc{
		undershoot_pct: C.int(rc.undershootPct), overshoot_pct: C.int(rc.overshootPct),
		buf_sz: C.int(rc.bufMs), buf_initial_sz: C.int(rc.bufInitialMs), buf_optimal_sz: C.int(rc.bufOptimalMs),
		min_q: C.int(rc.minQ), max_q: C.int(rc.maxQ),
		drop_frame: C.int(rc.dropFrame), static_threshold: C.int(rc.staticThreshold), max_intra_pct: C.int(rc.maxIntraPct),
	}
}

// Frame is one encoded VP8 frame. Data is empty when rate control dropped the picture
// (the buffer was about to overflow); such a frame is not sent, and the next one decodes
// from the picture before it.
type Frame struct {
	Data []byte
	Key  bool
}

// Encoder encodes images to VP8. It is safe for use by one goroutine at a time, except
// ForceKeyFrame and SetBitRate, which may be called from any goroutine.
type Encoder struct {
	cfg      Config
	rc       rateControl
	enc      *C.dv_enc
	frames   int64         // frames given to libvpx
	lastPTS  int64         // libvpx timestamp (µs) of the previous frame
	sinceKey int           // frames since the last key frame
	lastKey  time.Duration // capture time of the last key frame
	dropped  int64         // frames rate control dropped
	out      []byte
	rgb      *image.RGBA // scratch for image types without a fast path

	mu        sync.Mutex // guards forceKey, bitRate and closed
	forceKey  bool
	bitRate   int
	appliedBR int
	closed    bool
}

// NewEncoder configures libvpx once for cfg.
func NewEncoder(cfg Config) (*Encoder, error) {
	return newEncoder(cfg, defaultRC)
}

func newEncoder(cfg Config, rc rateControl) (*Encoder, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, rc: rc, bitRate: cfg.BitRate, appliedBR: cfg.BitRate, lastPTS: -1}
	kfMax := cfg.KeyFrameInterval
	if cfg.KeyFrameEvery > 0 {
		// Time decides; libvpx may still start a key frame at a scene cut.
		kfMax = 1 << 30
	}
	code := C.dv_enc_new(&e.enc, C.int(cfg.Width), C.int(cfg.Height),
		C.int(cfg.BitRate/1000), C.int(kfMax), C.int(cfg.Threads), C.int(cfg.CPUUsed), rc.c())
	if code != C.VPX_CODEC_OK {
		return nil, vpxError("configuring the encoder", code)
	}
	// A VP8 frame is rarely larger than a raw I420 frame; frames that are get a retry.
	e.out = make([]byte, cfg.Width*cfg.Height*3/2+4096)
	return e, nil
}

// Config returns the configuration in effect, defaults filled in.
func (e *Encoder) Config() Config { return e.cfg }

// ForceKeyFrame makes the next encoded frame a key frame.
func (e *Encoder) ForceKeyFrame() error {
	e.mu.Lock()
	e.forceKey = true
	e.mu.Unlock()
	return nil
}

// SetBitRate changes the target bit rate from the next frame on.
func (e *Encoder) SetBitRate(bps int) error {
	if bps < 10_000 {
		return fmt.Errorf("vp8: bit rate %d too low", bps)
	}
	e.mu.Lock()
	e.bitRate = bps
	e.mu.Unlock()
	return nil
}

// ErrClosed is returned by an Encoder or Decoder used after Close.
var ErrClosed = errors.New("vp8: closed")

// Dropped is how many pictures rate control has dropped so far.
func (e *Encoder) Dropped() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped
}

// Encode encodes one image, which must have the configured size, as the next frame at the
// nominal frame rate. The returned data is a fresh slice owned by the caller.
func (e *Encoder) Encode(img image.Image) (Frame, error) {
	return e.EncodeAt(img, time.Duration(e.frames)*e.cfg.frameDur())
}

// EncodeAt encodes one image captured at t (any monotonic clock; later frames later).
// Rate control spends the bit rate over these times, so a camera delivering fewer
// pictures than nominal gets more bits for each, not fewer bits a second; KeyFrameEvery
// counts in these times too.
func (e *Encoder) EncodeAt(img image.Image, t time.Duration) (Frame, error) {
	e.mu.Lock()
	force, br, closed := e.forceKey, e.bitRate, e.closed
	e.forceKey = false
	e.mu.Unlock()
	if closed {
		return Frame{}, ErrClosed
	}
	b := img.Bounds()
	if b.Dx() != e.cfg.Width || b.Dy() != e.cfg.Height {
		return Frame{}, fmt.Errorf("vp8: frame is %dx%d, encoder is configured for %dx%d", b.Dx(), b.Dy(), e.cfg.Width, e.cfg.Height)
	}
	if br != e.appliedBR {
		if code := C.dv_enc_set_bitrate(e.enc, C.int(br/1000)); code != C.VPX_CODEC_OK {
			return Frame{}, vpxError("setting the bit rate", code)
		}
		e.appliedBR = br
	}
	e.load(img)
	fd := e.cfg.frameDur()
	switch {
	case e.frames == 0:
		force = true
	case e.cfg.KeyFrameEvery > 0:
		force = force || t-e.lastKey >= e.cfg.KeyFrameEvery-fd/2
	default:
		force = force || e.sinceKey >= e.cfg.KeyFrameInterval
	}
	pts := max(t.Microseconds(), e.lastPTS+1)
	for {
		var key C.int
		var code C.vpx_codec_err_t
		n := C.dv_enc_encode(e.enc, C.int64_t(pts), C.int64_t(fd.Microseconds()), boolInt(force), (*C.uint8_t)(unsafe.Pointer(&e.out[0])), C.int(len(e.out)), &key, &code)
		if code != C.VPX_CODEC_OK {
			return Frame{}, vpxError("encoding", code)
		}
		if n < 0 {
			// Output buffer too small: the frame is lost inside libvpx, so grow the buffer
			// and encode this image again as a key frame.
			e.out = make([]byte, 2*len(e.out))
			force = true
			pts++ // libvpx has seen this timestamp
			continue
		}
		e.frames++
		e.lastPTS = pts
		if n == 0 {
			e.mu.Lock()
			e.dropped++
			e.mu.Unlock()
			return Frame{}, nil
		}
		e.sinceKey++
		if key != 0 {
			// Restart the interval at every key frame, forced or chosen by libvpx.
			e.sinceKey, e.lastKey = 1, t
		}
		return Frame{Data: append([]byte(nil), e.out[:n]...), Key: key != 0}, nil
	}
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// load copies img into the encoder's I420 image.
func (e *Encoder) load(img image.Image) {
	vi := e.enc.img
	w, h := e.cfg.Width, e.cfg.Height
	cw, ch := (w+1)/2, (h+1)/2
	ys, us, vs := int(vi.stride[0]), int(vi.stride[1]), int(vi.stride[2])
	Y := unsafe.Slice((*byte)(unsafe.Pointer(vi.planes[0])), ys*h)
	U := unsafe.Slice((*byte)(unsafe.Pointer(vi.planes[1])), us*ch)
	V := unsafe.Slice((*byte)(unsafe.Pointer(vi.planes[2])), vs*ch)
	switch m := img.(type) {
	case *image.YCbCr:
		b := m.Rect
		for y := 0; y < h; y++ {
			copy(Y[y*ys:y*ys+w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):])
		}
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio420:
			for y := 0; y < ch; y++ {
				off := m.COffset(b.Min.X, b.Min.Y+2*y)
				copy(U[y*us:y*us+cw], m.Cb[off:off+cw])
				copy(V[y*vs:y*vs+cw], m.Cr[off:off+cw])
			}
			return
		case image.YCbCrSubsampleRatio422:
			// Vertical 2:1: average the two chroma rows.
			for y := 0; y < ch; y++ {
				o0 := m.COffset(b.Min.X, b.Min.Y+2*y)
				o1 := o0
				if 2*y+1 < h {
					o1 = m.COffset(b.Min.X, b.Min.Y+2*y+1)
				}
				ur, vr := U[y*us:y*us+cw], V[y*vs:y*vs+cw]
				cb0, cb1, cr0, cr1 := m.Cb[o0:o0+cw], m.Cb[o1:o1+cw], m.Cr[o0:o0+cw], m.Cr[o1:o1+cw]
				for x := range cw {
					ur[x] = uint8((uint16(cb0[x]) + uint16(cb1[x]) + 1) >> 1)
					vr[x] = uint8((uint16(cr0[x]) + uint16(cr1[x]) + 1) >> 1)
				}
			}
			return
		}
		// Other subsamplings: take chroma at each 2x2 block's top-left sample.
		for y := 0; y < ch; y++ {
			for x := 0; x < cw; x++ {
				off := m.COffset(b.Min.X+2*x, b.Min.Y+2*y)
				U[y*us+x], V[y*vs+x] = m.Cb[off], m.Cr[off]
			}
		}
		return
	case *image.RGBA:
		p := m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y):]
		C.dv_rgba_to_i420((*C.uint8_t)(unsafe.Pointer(&p[0])), C.int(m.Stride), C.int(w), C.int(h), vi)
		return
	}
	// Anything else (camera formats mediadevices already converts to YCbCr, so rare):
	// draw into RGBA first.
	if e.rgb == nil {
		e.rgb = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	draw.Draw(e.rgb, e.rgb.Rect, img, img.Bounds().Min, draw.Src)
	e.load(e.rgb)
}

// Close releases libvpx's encoder. It is safe to call more than once.
func (e *Encoder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	C.dv_enc_free(e.enc)
	e.enc = nil
	return nil
}
