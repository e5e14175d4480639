package session

import (
	"context"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestStopFigures: after Stop, the figures are the feed's final state, not the figures loop's
// last snapshot (taken up to a second before the last block). The test stops the broadcast only
// once the feed has grown past the newest snapshot, so stale figures cannot pass by luck.
func TestStopFigures(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "figures", Preset: broadcast.Low,
		Video: video, Audio: audio, Price: price.Price{}, Network: loopback, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	waitFor(t, "figures with blocks", time.Minute, func() bool { return b.Snapshot().Blocks > 0 })
	snap := b.Snapshot()
	waitFor(t, "blocks appended after the snapshot", time.Minute, func() bool { return b.feed.Length() > snap.Blocks })
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	f := b.Snapshot()
	rec, err := sd.Stream(b.ID())
	if err != nil {
		t.Fatal(err)
	}
	if f.Live || f.Blocks != rec.Blocks || f.FeedBytes != rec.Bytes || f.Blocks <= snap.Blocks {
		t.Fatalf("stop figures: %d blocks, %d bytes (live %v); the feed's final state: %d blocks, %d bytes; a snapshot before the stop said %d blocks",
			f.Blocks, f.FeedBytes, f.Live, rec.Blocks, rec.Bytes, snap.Blocks)
	}
	if f.Until.IsZero() || f.Until.Before(f.Since) {
		t.Fatalf("live from %v until %v", f.Since, f.Until)
	}
}
