package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// The live view's preview: the broadcaster's own stream decoded from its feed, pictures in
// order and at the preset's size, nothing after Stop, no goroutine left.
func TestBroadcasterPreview(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	d, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var pts []time.Duration
	var sizeOK = true
	stopped := false
	var late int
	sink := playback.FrameSinkFunc(func(f *playback.Frame) {
		mu.Lock()
		if stopped {
			late++
		}
		pts = append(pts, f.PTS)
		if b := f.Image.Bounds(); b.Dx() != broadcast.Low.Width || b.Dy() != broadcast.Low.Height {
			sizeOK = false
		}
		mu.Unlock()
		f.Release()
	})
	b, err := NewBroadcaster(BroadcasterConfig{Data: d, Secrets: secrets.NewMemory(), Name: "preview", Preset: broadcast.Low,
		Video: video, Audio: audio, Price: price.Price{}, Network: loopback, Logger: testLog(t), Preview: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		mu.Lock()
		n := len(pts)
		mu.Unlock()
		if n >= 15 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("only %d pictures in the preview; %+v", n, b.Snapshot())
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.Stop()
	mu.Lock()
	stopped = true
	mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if late != 0 {
		t.Fatalf("%d pictures after Stop", late)
	}
	if !sizeOK {
		t.Fatal("a preview picture is not the preset's size")
	}
	for i := 1; i < len(pts); i++ {
		if pts[i] <= pts[i-1] {
			t.Fatalf("picture %d at %v after %v", i, pts[i], pts[i-1])
		}
	}
}
