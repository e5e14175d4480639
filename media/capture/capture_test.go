package capture

import (
	"errors"
	"io"
	"testing"
)

// TestDefaultsPreferRealDevices: the default of each kind is a real device when one
// exists, mediadevices' test driver otherwise, and the test drivers are always listed.
func TestDefaultsPreferRealDevices(t *testing.T) {
	devs := Devices()
	for _, k := range []Kind{Camera, Microphone} {
		real := false
		for _, d := range devs {
			if d.Kind == k && !d.Test {
				real = true
			}
		}
		def, err := DefaultDevice(k)
		if err != nil {
			t.Fatal(err)
		}
		if def.Test == real {
			t.Fatalf("%s: default %+v, real device present: %v", k, def, real)
		}
		td, err := TestDevice(k)
		if err != nil || !td.Test {
			t.Fatalf("%s: no test driver: %v", k, err)
		}
		t.Logf("%s: default %q (test driver: %v)", k, def.Label, def.Test)
	}
	if _, err := OpenVideo(Device{ID: "no such device"}, VideoWant{}); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("unknown device: %v", err)
	}
}

// TestTestDriverSizesAndClose: the test camera produces the size asked for, and Close
// ends a Read in progress with io.EOF instead of leaving it blocked.
func TestTestDriverSizesAndClose(t *testing.T) {
	d, _ := TestDevice(Camera)
	src, err := OpenVideo(d, VideoWant{Width: 320, Height: 240, FrameRate: 15})
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
		t.Fatalf("test camera gave %v", b)
	}
	closeEndsRead(t, src)
	// The device can be opened again.
	src2, err := OpenVideo(d, VideoWant{Width: 64, Height: 48, FrameRate: 30})
	if err != nil {
		t.Fatal(err)
	}
	src2.Close()

	a, _ := TestDevice(Microphone)
	as, err := OpenAudio(a, AudioWant{SampleRate: 48000, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	chunk, _, err := as.Read()
	if err != nil || chunk.ChunkInfo().SamplingRate != 48000 || chunk.ChunkInfo().Channels != 1 {
		t.Fatalf("test microphone: %v %+v", err, chunk)
	}
	as.Close()
}

// closeEndsRead closes src while a goroutine reads from it, and checks that the read ends
// with io.EOF instead of staying blocked.
func closeEndsRead(t *testing.T, src *VideoSource) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for {
			if _, _, err := src.Read(); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("read after close: %v", err)
	}
}
