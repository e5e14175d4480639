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
	// KeyFrameInterval is the most frames between two key frames (default 2 s worth).
	KeyFrameInterval int
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
		c.KeyFrameInterval = 2 * c.FrameRateNum / c.FrameRateDen
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

// Frame is one encoded VP8 frame.
type Frame struct {
	Data []byte
	Key  bool
}

// Encoder encodes images to VP8. It is safe for use by one goroutine at a time, except
// ForceKeyFrame and SetBitRate, which may be called from any goroutine.
type Encoder struct {
	cfg      Config
	enc      *C.dv_enc
	pts      int64 // frames encoded, libvpx's timestamp
	sinceKey int   // frames since the last key frame
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
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, bitRate: cfg.BitRate, appliedBR: cfg.BitRate}
	code := C.dv_enc_new(&e.enc, C.int(cfg.Width), C.int(cfg.Height), C.int(cfg.FrameRateNum), C.int(cfg.FrameRateDen),
		C.int(cfg.BitRate/1000), C.int(cfg.KeyFrameInterval), C.int(cfg.Threads), C.int(cfg.CPUUsed))
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

// Encode encodes one image, which must have the configured size. The returned data is a
// fresh slice owned by the caller.
func (e *Encoder) Encode(img image.Image) (Frame, error) {
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
	if e.pts == 0 || e.sinceKey >= e.cfg.KeyFrameInterval {
		force = true
	}
	for {
		var key C.int
		var code C.vpx_codec_err_t
		n := C.dv_enc_encode(e.enc, C.int64_t(e.pts), boolInt(force), (*C.uint8_t)(unsafe.Pointer(&e.out[0])), C.int(len(e.out)), &key, &code)
		if code != C.VPX_CODEC_OK {
			return Frame{}, vpxError("encoding", code)
		}
		if n < 0 {
			// Output buffer too small: the frame is lost inside libvpx, so grow the buffer
			// and encode this image again as a key frame.
			e.out = make([]byte, 2*len(e.out))
			force = true
			continue
		}
		e.pts++
		e.sinceKey++
		if key != 0 {
			// Restart the interval count at every key frame, forced or chosen by libvpx.
			e.sinceKey = 1
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
