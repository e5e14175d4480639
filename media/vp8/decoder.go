package vp8

/*
#cgo pkg-config: vpx
#cgo CFLAGS: -O3
#include "dv_vpx.h"
*/
import "C"

import (
	"fmt"
	"image"
	"unsafe"
)

// MaxFrameSize caps one compressed frame handed to the decoder.
const MaxFrameSize = 4 << 20

// MaxWidth and MaxHeight cap the picture a key frame may declare (4096×2304 covers 4K UHD).
// A VP8 key frame may declare up to 16383×16383, which libvpx spends half a second and a
// gigabyte on even when the rest is garbage: a stream's frames are refused above this before
// libvpx sees them.
const (
	MaxWidth  = 4096
	MaxHeight = 2304
)

// checkKeyFrameSize reads a key frame's declared size (RFC 6386 §9.1: a 3-byte frame tag, the
// start code 9d 01 2a, then 14-bit width and height) and refuses it above the caps.
func checkKeyFrameSize(data []byte) error {
	if data[0]&1 != 0 {
		return nil // an interframe keeps the key frame's size
	}
	if len(data) < 10 {
		return fmt.Errorf("vp8: key frame of %d bytes is shorter than its header", len(data))
	}
	w, h, ok := KeyFrameSize(data)
	if !ok {
		return fmt.Errorf("vp8: key frame without the start code")
	}
	if w == 0 || h == 0 || w > MaxWidth || h > MaxHeight {
		return fmt.Errorf("vp8: key frame of %d×%d pixels (the limit is %d×%d)", w, h, MaxWidth, MaxHeight)
	}
	return nil
}

// KeyFrameSize is the picture size a key frame declares (RFC 6386 §9.1); ok is false for an
// interframe or a frame too short or without the key frame's start code.
func KeyFrameSize(data []byte) (width, height int, ok bool) {
	if len(data) < 10 || data[0]&1 != 0 || data[3] != 0x9d || data[4] != 0x01 || data[5] != 0x2a {
		return 0, 0, false
	}
	return int(data[6]) | int(data[7]&0x3f)<<8, int(data[8]) | int(data[9]&0x3f)<<8, true
}

// Decoder decodes VP8 frames. Use it from one goroutine at a time.
type Decoder struct {
	ctx *C.vpx_codec_ctx_t
}

// NewDecoder creates a decoder.
func NewDecoder() (*Decoder, error) {
	d := &Decoder{}
	if code := C.dv_dec_new(&d.ctx, 1); code != C.VPX_CODEC_OK {
		return nil, vpxError("creating the decoder", code)
	}
	return d, nil
}

// decode runs libvpx on one frame; the image it returns is libvpx's and valid until the
// next call.
func (d *Decoder) decode(data []byte) (*C.vpx_image_t, error) {
	if d.ctx == nil {
		return nil, ErrClosed
	}
	if len(data) == 0 {
		return nil, ErrEmptyFrame
	}
	if len(data) > MaxFrameSize {
		return nil, fmt.Errorf("vp8: frame of %d bytes exceeds %d", len(data), MaxFrameSize)
	}
	if err := checkKeyFrameSize(data); err != nil {
		return nil, err
	}
	var img *C.vpx_image_t
	code := C.dv_dec_decode(d.ctx, (*C.uint8_t)(unsafe.Pointer(&data[0])), C.uint(len(data)), &img)
	if code != C.VPX_CODEC_OK {
		return nil, vpxError("decoding", code)
	}
	if img == nil {
		return nil, fmt.Errorf("vp8: decoder produced no picture")
	}
	if img.fmt != C.VPX_IMG_FMT_I420 {
		return nil, fmt.Errorf("vp8: unexpected decoded pixel format %d", img.fmt)
	}
	return img, nil
}

func planes(img *C.vpx_image_t) (w, h int, Y, U, V []byte, ys, us, vs int) {
	w, h = int(img.d_w), int(img.d_h)
	ch := (h + 1) / 2
	ys, us, vs = int(img.stride[0]), int(img.stride[1]), int(img.stride[2])
	Y = unsafe.Slice((*byte)(unsafe.Pointer(img.planes[0])), ys*h)
	U = unsafe.Slice((*byte)(unsafe.Pointer(img.planes[1])), us*ch)
	V = unsafe.Slice((*byte)(unsafe.Pointer(img.planes[2])), vs*ch)
	return
}

// Decode decodes one frame into a new 4:2:0 image owned by the caller. Frames must be fed
// in order from a key frame on; after an error, feed the next key frame.
func (d *Decoder) Decode(data []byte) (*image.YCbCr, error) {
	img, err := d.decode(data)
	if err != nil {
		return nil, err
	}
	w, h, Y, U, V, ys, us, vs := planes(img)
	dst := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	cw := (w + 1) / 2
	for y := 0; y < h; y++ {
		copy(dst.Y[y*dst.YStride:y*dst.YStride+w], Y[y*ys:])
	}
	for y := 0; y < (h+1)/2; y++ {
		copy(dst.Cb[y*dst.CStride:y*dst.CStride+cw], U[y*us:])
		copy(dst.Cr[y*dst.CStride:y*dst.CStride+cw], V[y*vs:])
	}
	return dst, nil
}

// Skip decodes one frame and keeps no picture: the decoder's state moves on to the next
// frame without the cost of a conversion (a player catching up on pictures nobody saw).
func (d *Decoder) Skip(data []byte) error {
	_, err := d.decode(data)
	return err
}

// DecodeRGBA decodes one frame and converts it to RGBA in dst, which it reuses when it
// has the frame's size (allocating a new one otherwise), and returns. RGBA is what a
// Fyne canvas draws without another conversion.
func (d *Decoder) DecodeRGBA(data []byte, dst *image.RGBA) (*image.RGBA, error) {
	img, err := d.decode(data)
	if err != nil {
		return nil, err
	}
	w, h, Y, U, V, ys, us, vs := planes(img)
	if dst == nil || dst.Rect.Dx() != w || dst.Rect.Dy() != h {
		dst = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	i420ToRGBA(w, h, Y, U, V, ys, us, vs, dst)
	return dst, nil
}

// i420ToRGBA converts w×h 4:2:0 planes into dst (at least w×h) with dv_i420_to_rgba.
func i420ToRGBA(w, h int, Y, U, V []byte, ys, us, vs int, dst *image.RGBA) {
	p := dst.Pix[dst.PixOffset(dst.Rect.Min.X, dst.Rect.Min.Y):]
	C.dv_i420_to_rgba((*C.uint8_t)(unsafe.Pointer(&Y[0])), C.int(ys), (*C.uint8_t)(unsafe.Pointer(&U[0])), C.int(us),
		(*C.uint8_t)(unsafe.Pointer(&V[0])), C.int(vs), C.int(w), C.int(h), (*C.uint8_t)(unsafe.Pointer(&p[0])), C.int(dst.Stride))
}

// Close releases the decoder. It is safe to call more than once.
func (d *Decoder) Close() error {
	if d.ctx != nil {
		C.dv_dec_free(d.ctx)
		d.ctx = nil
	}
	return nil
}
