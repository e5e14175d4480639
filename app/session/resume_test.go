package session

import (
	"context"
	"image"
	"path/filepath"
	"strings"
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
	// Not at another price: viewers hold the card with this one.
	paid := cfg
	paid.Price, _ = price.Parse("10 sats per minute")
	if pb, err := NewBroadcaster(paid); err != nil {
		t.Fatal(err)
	} else if err := pb.Start(ctx); err == nil || !strings.Contains(err.Error(), "keeps its price (free)") {
		pb.Stop()
		t.Fatalf("resumed at another price: %v", err)
	}
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

// TestBehindLiveOnResumedStream watches a stream that was stopped and resumed: the feed holds
// two runs, each from its own header, and the player counts blocks from the current run's.
// "Behind live" compares the play position with the seller's length counted the same way, so
// a viewer playing the resumed run at its live edge is a few blocks behind, not the whole
// first run behind.
func TestBehindLiveOnResumedStream(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, _ := OpenDataDir(t.TempDir())
	cfg := BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "resumable", Preset: broadcast.Low, Video: video, Audio: audio,
		Price: price.Price{}, Network: loopback, Logger: testLog(t)}
	a, err := NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The first run is long enough that counting the play position from its own header
	// and the seller's length from the feed's start cannot pass for being at the edge.
	const firstRun = 100
	waitFor(t, "the first run's blocks", time.Minute, func() bool { return a.Snapshot().Blocks >= firstRun })
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	run1 := a.Snapshot().Blocks

	cfg.Resume, cfg.Name = a.ID(), ""
	cfg.Network.Listen = nil // a resumed stream listens where its card says
	b, err := NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()

	// A seek or a live export just after Start (watch -from, watch -o -) waits until the
	// seller has said where the newest header is: it searched the first run (base 0) before,
	// and a seek past the edge started a live player under the first run's header.
	wd, _ := OpenDataDir(t.TempDir())
	w, err := NewViewer(ViewerConfig{Data: wd, Secrets: secrets.NewMemory(), Card: a.Card(), Network: loopback, Logger: testLog(t),
		Audio: silentAudio})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	playBase := func() uint64 {
		w.playMu.Lock()
		defer w.playMu.Unlock()
		return w.playSrc.base.Load()
	}
	for _, to := range []time.Duration{500 * time.Millisecond, 10 * time.Hour} {
		_, live, err := w.Seek(ctx, to)
		if err != nil {
			t.Fatal(err)
		}
		if got := playBase(); got != b.header || to == 10*time.Hour && !live {
			t.Fatalf("seek to %v just after Start: the player plays under the header at %d (live %v), want %d", to, got, live, b.header)
		}
	}
	src, err := w.SeekSource(ctx)
	if err != nil || src.(*readerSource).base.Load() != b.header {
		t.Fatalf("the live export's source: %v, want the header at %d", err, b.header)
	}
	w.Stop()

	vd, _ := OpenDataDir(t.TempDir())
	v, err := NewViewer(ViewerConfig{Data: vd, Secrets: secrets.NewMemory(), Card: a.Card(), Network: loopback, Logger: testLog(t),
		Audio: silentAudio})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	// Playing the resumed run live: the seller's length is well into the second run and the
	// viewer is within a second's blocks of it.
	const nearEdge = 30
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	var last ViewFigures
	for {
		f := v.Snapshot()
		if f.BehindLive > f.LiveEdge {
			t.Fatalf("behind live by more than the stream's length: %+v", f)
		}
		if f.Playing && f.FramesDecoded > 15 && f.LiveEdge > run1+nearEdge && f.BehindLive < nearEdge {
			t.Logf("first run %d blocks; viewer %d behind a live edge of %d", run1, f.BehindLive, f.LiveEdge)
			if !f.Resumed {
				t.Fatalf("the viewer plays a resumed stream's second run and does not say it is resumed: %+v", f)
			}
			return
		}
		last = f
		select {
		case <-wctx.Done():
			t.Fatalf("the viewer never said it plays at the resumed run's live edge (first run %d blocks): %+v", run1, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
