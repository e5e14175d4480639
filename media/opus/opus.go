// Package opus decodes Opus packets to PCM with libopus (cgo, pkg-config opus). Encoding
// uses mediadevices' own Opus encoder through its codec interfaces; this package is the
// viewer's half.
package opus

/*
#cgo pkg-config: opus
#include <opus.h>
#include <stdlib.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// MaxPacketSize caps one packet handed to the decoder (RFC 6716 allows 1275 bytes a
// frame and up to 48 frames a packet).
const MaxPacketSize = 1275 * 48

// MaxFrameDuration is the longest Opus packet, 120 ms.
const maxFrameMs = 120

// ErrClosed is returned after Close.
var ErrClosed = errors.New("opus: decoder closed")

// Decoder turns Opus packets into interleaved float32 PCM.
type Decoder struct {
	dec        *C.OpusDecoder
	sampleRate int
	channels   int
}

// NewDecoder creates a decoder producing sampleRate Hz (8000, 12000, 16000, 24000 or
// 48000) with channels channels (1 or 2), whatever the packets were encoded at.
func NewDecoder(sampleRate, channels int) (*Decoder, error) {
	var cerr C.int
	dec := C.opus_decoder_create(C.opus_int32(sampleRate), C.int(channels), &cerr)
	if cerr != C.OPUS_OK {
		return nil, fmt.Errorf("opus: creating a %d Hz, %d-channel decoder: %s", sampleRate, channels, C.GoString(C.opus_strerror(cerr)))
	}
	return &Decoder{dec: dec, sampleRate: sampleRate, channels: channels}, nil
}

// MaxSamples is the most samples per channel one packet can decode to.
func (d *Decoder) MaxSamples() int { return d.sampleRate * maxFrameMs / 1000 }

// Decode decodes one packet into pcm (interleaved, at least MaxSamples()*channels long)
// and returns the samples per channel written. An empty packet asks for loss concealment
// of one 20 ms packet.
func (d *Decoder) Decode(packet []byte, pcm []float32) (int, error) {
	if d.dec == nil {
		return 0, ErrClosed
	}
	if len(packet) > MaxPacketSize {
		return 0, fmt.Errorf("opus: packet of %d bytes exceeds %d", len(packet), MaxPacketSize)
	}
	if len(pcm) < d.MaxSamples()*d.channels {
		return 0, fmt.Errorf("opus: output buffer of %d samples is too small", len(pcm))
	}
	var data *C.uchar
	frame := d.MaxSamples()
	if len(packet) > 0 {
		data = (*C.uchar)(unsafe.Pointer(&packet[0]))
	} else {
		frame = d.sampleRate / 50
	}
	n := C.opus_decode_float(d.dec, data, C.opus_int32(len(packet)), (*C.float)(unsafe.Pointer(&pcm[0])), C.int(frame), 0)
	if n < 0 {
		return 0, fmt.Errorf("opus: decoding a %d-byte packet: %s", len(packet), C.GoString(C.opus_strerror(n)))
	}
	return int(n), nil
}

// Close releases the decoder; it is safe to call more than once.
func (d *Decoder) Close() error {
	if d.dec != nil {
		C.opus_decoder_destroy(d.dec)
		d.dec = nil
	}
	return nil
}
