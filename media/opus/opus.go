// Package opus decodes Opus packets to PCM with libopus. Encoding uses mediadevices' own
// Opus encoder through its codec interfaces; this package is the viewer's half.
//
// It links the same libopus as that encoder: the static libopus 1.3.1 that mediadevices
// ships for each OS and architecture (or the system's, with -tags dynamic), pulled in by
// the blank import below. So one libopus is in the binary, and packaging for Windows and
// macOS needs no libopus of its own. The four functions used are declared here from
// libopus' stable API (unchanged since 1.0).
package opus

/*
#include <stdint.h>

typedef struct OpusDecoder OpusDecoder;
OpusDecoder *opus_decoder_create(int32_t Fs, int channels, int *error);
int opus_decode_float(OpusDecoder *st, const unsigned char *data, int32_t len, float *pcm, int frame_size, int decode_fec);
void opus_decoder_destroy(OpusDecoder *st);
const char *opus_strerror(int error);
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	_ "github.com/pion/mediadevices/pkg/codec/opus" // links libopus
)

// MaxPacketSize caps one packet handed to the decoder (RFC 6716 allows 1275 bytes a
// frame and up to 48 frames a packet).
const MaxPacketSize = 1275 * 48

// maxFrameMs is the longest Opus packet, 120 ms.
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
	dec := C.opus_decoder_create(C.int32_t(sampleRate), C.int(channels), &cerr)
	if cerr != 0 { // OPUS_OK
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
	n := C.opus_decode_float(d.dec, data, C.int32_t(len(packet)), (*C.float)(unsafe.Pointer(&pcm[0])), C.int(frame), 0)
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
