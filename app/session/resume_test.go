package session

import (
	"context"
	"image"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/export"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestResumeAcrossHeaderChange stops a stream and resumes it under the same card at another
// preset (another picture size): a viewer watching across the change keeps playing, and the
// card stays the same.
func TestResumeAcrossHeaderChange(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, _ := OpenDataDir(t.TempDir())
	store := secrets.NewMemory()
	cfg := BroadcasterConfig{Data: sd, Secrets: store, Name: "resumable", Preset: broadcast.Low, Video: video, Audio: audio,
		Price: price.Price{}, Network: loopback, Logger: testLog(t)}
	a, err := NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	firstCard := a.Card()

	var mu sync.Mutex
	sizes := map[image.Point]int{}
	vd, _ := OpenDataDir(t.TempDir())
	v, err := NewViewer(ViewerConfig{Data: vd, Secrets: secrets.NewMemory(), Card: firstCard, Network: loopback, Logger: testLog(t),
		Audio: silentAudio, OnDecoded: func(_ time.Duration, img *image.RGBA) {
			mu.Lock()
			sizes[img.Rect.Size()]++
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	count := func(p image.Point) int { mu.Lock(); defer mu.Unlock(); return sizes[p] }
	low, medium := image.Pt(broadcast.Low.Width, broadcast.Low.Height), image.Pt(broadcast.Medium.Width, broadcast.Medium.Height)
	waitFor(t, "pictures of the first run", time.Minute, func() bool { return count(low) >= 15 })
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}

	cfg.Resume, cfg.Preset, cfg.Name = a.ID(), broadcast.Medium, ""
	cfg.Network.Listen = nil // a resumed stream listens where its card says
	b, err := NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if b.ID() != a.ID() || !b.Card().Equal(firstCard) {
		t.Fatalf("the resumed stream has another card:\n%+v\n%+v", b.Card(), firstCard)
	}
	deadline := time.Now().Add(time.Minute)
	for count(medium) < 15 {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("no pictures of the resumed run at its new size: sizes %v, viewer %+v, broadcaster %+v", sizes, v.Snapshot(), b.Snapshot())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := v.Snapshot(); st.FramesDecoded == 0 {
		t.Fatalf("viewer %+v", st)
	}

	// What the viewer held exports to one WebM file: the first run's pictures, up to the
	// header that changed their size.
	held, err := v.HeldSource()
	if err != nil {
		t.Fatal(err)
	}
	res, err := export.ToFile(ctx, held, filepath.Join(t.TempDir(), "held.webm"), export.Options{})
	if err != nil || res.VideoFrames < 10 || res.DamagedBlocks != 0 {
		t.Fatalf("exporting what the viewer held: %+v, %v", res, err)
	}
}
