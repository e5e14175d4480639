package session

import (
	"context"
	"image"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// leakOptions ignores goroutines libp2p's dependencies and the capture drivers start once per
// process and never stop.
func leakOptions() []goleak.Option {
	return xtest.LeakOptions()
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(liveChildEnv); dir != "" {
		liveChild(dir) // a broadcaster in its own process, for tests that kill it
		return
	}
	goleak.VerifyTestMain(m, leakOptions()...)
}

// checkLeaks fails t if goroutines started during the test are still running (deferred first).
func checkLeaks(t *testing.T) func() {
	opts := append(leakOptions(), goleak.IgnoreCurrent())
	return func() { goleak.VerifyNone(t, opts...) }
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// silentAudio plays at real time without a device.
func silentAudio() playback.AudioOutput { return audioout.NewSilent() }

var loopback = NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, LAN: true, Public: true}

func testDevices(t testing.TB) (*capture.Device, *capture.Device) {
	v, err := capture.TestDevice(capture.Camera)
	if err != nil {
		t.Fatal(err)
	}
	a, err := capture.TestDevice(capture.Microphone)
	if err != nil {
		t.Fatal(err)
	}
	return &v, &a
}

// TestFreeStreamEndToEnd goes live with the test camera and microphone, pastes the card's text
// into a viewer, and checks that pictures decode; stopping both leaves no goroutine behind.
func TestFreeStreamEndToEnd(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "test", Description: "a free test stream",
		Preset: broadcast.Low, Video: video, Audio: audio, Price: price.Price{}, Network: loopback, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	c, err := card.Parse(b.Card().String())
	if err != nil {
		t.Fatalf("the card does not parse back: %v", err)
	}
	vd, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var decoded atomic.Int64
	v, err := NewViewer(ViewerConfig{Data: vd, Secrets: secrets.NewMemory(), Card: c, Network: loopback, Logger: testLog(t),
		Audio: silentAudio, OnDecoded: func(time.Duration, *image.RGBA) { decoded.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	// "Downloaded" follows the blocks as they are stored, not a meter updated once a second
	// (which said 0 B while the first blocks played).
	for v.Snapshot().Stored == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no block stored; viewer %+v", v.Snapshot())
		case <-time.After(time.Millisecond):
		}
	}
	for wait := time.Now(); v.Snapshot().BytesDown == 0; time.Sleep(time.Millisecond) {
		if time.Since(wait) > 200*time.Millisecond {
			t.Fatalf("blocks stored but 0 bytes downloaded 200 ms later: %+v", v.Snapshot())
		}
	}
	for decoded.Load() < 20 {
		select {
		case <-ctx.Done():
			t.Fatalf("only %d pictures decoded; viewer %+v broadcaster %+v", decoded.Load(), v.Snapshot(), b.Snapshot())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if f := v.Snapshot(); f.Access != wire.Free || !f.Connected || f.BytesDown == 0 {
		t.Fatalf("viewer figures %+v", f)
	}
	// The broadcaster's figures see the viewer.
	deadline := time.Now().Add(10 * time.Second)
	for b.Snapshot().Viewers != 1 || b.Snapshot().BytesUp == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("broadcaster figures %+v", b.Snapshot())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	// Both are remembered: my stream (resumable) and the watched one.
	mine, err := sd.MyStreams()
	if err != nil || len(mine) != 1 || mine[0].ID != b.ID() || mine[0].Blocks == 0 {
		t.Fatalf("my streams %+v %v", mine, err)
	}
	watched, err := vd.Watched()
	if err != nil || len(watched) != 1 || watched[0].ID != b.ID() {
		t.Fatalf("watched %+v %v", watched, err)
	}
}

// TestFailedGoLiveReleasesDevices: when going live fails after the camera and microphone were
// opened (here networking cannot listen at the address asked for), they are closed again:
// before, their capture stayed open until the app quit, and a second Go live found the camera
// busy.
func TestFailedGoLiveReleasesDevices(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		video, audio := testDevices(t)
		sd, err := OpenDataDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "test",
			Preset: broadcast.Low, Video: video, Audio: audio, Price: price.Price{}, Network: unlistenable, Logger: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		err = b.Start(ctx)
		b.Stop()
		if err == nil {
			t.Fatal("went live without networking")
		}
		if !strings.Contains(err.Error(), "networking") {
			t.Fatalf("going live failed for another reason than networking: %v", err)
		}
	}
}
