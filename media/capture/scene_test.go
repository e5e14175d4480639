package capture

import (
	"bytes"
	"image"
	"testing"
	"time"
)

// TestScene: the test scene is listed as a test camera after mediadevices' own (which
// stays the default and TestDevice), gives pictures of the size asked for at the rate
// asked for, paced from the first, each different from the last, and Close ends a Read
// in progress with io.EOF.
func TestScene(t *testing.T) {
	d, err := SceneDevice()
	if err != nil {
		t.Fatal(err)
	}
	if !d.Test || d.Kind != Camera || !IsScene(d) {
		t.Fatalf("scene listed as %+v", d)
	}
	if td, _ := TestDevice(Camera); IsScene(td) {
		t.Fatal("TestDevice(Camera) is the scene, want mediadevices' test camera")
	}
	if def, _ := DefaultDevice(Camera); IsScene(def) {
		t.Fatal("the scene became the default camera")
	}
	src, err := OpenVideo(d, VideoWant{Width: 320, Height: 240, FrameRate: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var prev []byte
	start := time.Now()
	const n = 11
	for i := range n {
		img, release, err := src.Read()
		if err != nil {
			t.Fatal(err)
		}
		y, ok := img.(*image.YCbCr)
		if !ok || y.Bounds() != image.Rect(0, 0, 320, 240) {
			t.Fatalf("picture %d: %T %v", i, img, img.Bounds())
		}
		if prev != nil && bytes.Equal(prev, y.Y) {
			t.Fatalf("picture %d repeats the one before", i)
		}
		prev = append(prev[:0], y.Y...)
		release()
	}
	// 11 pictures at 20 a second: the last is due 500 ms after the first.
	if took := time.Since(start); took < 490*time.Millisecond {
		t.Fatalf("%d pictures in %v: not paced at 20 a second", n, took)
	}
	closeEndsRead(t, src)
}
