package capture

import (
	"bytes"
	"context"
	"testing"
)

// miniaudio reuses the buffer it hands to the data callback as soon as the callback returns
// (a stack buffer when it converts the rate or format; PulseAudio's on pa_stream_drop). The
// reader decodes the chunk later, so it must get a copy.
func TestHandOverCopiesTheChunk(t *testing.T) {
	ch := make(chan []byte, 1)
	buf := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	handOver(context.Background(), ch, buf)
	for i := range buf { // miniaudio fills its buffer with the next period
		buf[i] = 0xee
	}
	if got := <-ch; !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("the reader got % x: the device's buffer, overwritten after the callback returned", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch <- nil                    // the reader has not taken the last chunk
	handOver(ctx, ch, []byte{9}) // returns once the device closes
}
