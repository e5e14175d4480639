// Package vp8 is a VP8 encoder and decoder over libvpx (cgo, pkg-config vpx).
//
// Unlike mediadevices v0.9.4's encoder, which reconfigures libvpx before every frame and
// leaves its speed at cpu_used 0, this encoder is configured once, sets cpu_used and
// threads, and is reconfigured only when the bit rate is changed. Builder plugs it into
// mediadevices' codec interfaces (codec.VideoEncoderBuilder).
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
)

func vpxError(what string, code C.vpx_codec_err_t) error {
	return fmt.Errorf("vp8: %s: %s", what, C.GoString(C.vpx_codec_err_to_string(code)))
}

// IsKeyFrame reports whether a VP8 frame is a key frame (RFC 6386 §9.1: the low bit of the
// first byte is 0).
func IsKeyFrame(frame []byte) bool {
	return len(frame) >= 3 && frame[0]&1 == 0
}

// ErrEmptyFrame is returned when asked to decode no bytes.
var ErrEmptyFrame = errors.New("vp8: empty frame")
