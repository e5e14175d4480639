package session

import (
	"context"
	"testing"
	"time"
)

// TestNoPlaybackSeekDownloadsFromThere: without playback (watch -no-play -from T) a seek moves
// the download to the block it found: the stored copy then holds the stream from there on,
// not only from the live edge the viewer joined at (before, the seek was accepted and
// nothing changed).
func TestNoPlaybackSeekDownloadsFromThere(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	// Past the seller's MaxLiveLag (90 blocks), so that the viewer joins at the newest key
	// frame and holds nothing of the start.
	waitFor(t, "the broadcaster's first 150 blocks", time.Minute, func() bool { return b.Snapshot().Blocks >= 150 })
	v := startViewerWith(ctx, t, b.Card(), func(c *ViewerConfig) { c.NoPlayback = true })
	defer v.Stop()
	waitFor(t, "the download's first blocks", time.Minute, func() bool { return v.Snapshot().Stored >= 10 })
	const span = 100 // blocks 1 to 100: the stream's first seconds
	held := func() (n int) {
		f := v.currentFeed()
		for i := uint64(1); i <= span; i++ {
			if f.Has(i) {
				n++
			}
		}
		return n
	}
	if n := held(); n > span/2 {
		t.Fatalf("the viewer holds %d of the first %d blocks before seeking: the test wants it to hold little of the start", n, span)
	}
	at, live, err := v.Seek(ctx, 0)
	if err != nil || live || at != 0 {
		t.Fatalf("seeking to the start: at %v, live %v, %v", at, live, err)
	}
	waitFor(t, "the start downloaded", 30*time.Second, func() bool { return held() == span })
	v.playMu.Lock()
	started := v.player != nil
	v.playMu.Unlock()
	if started {
		t.Fatal("the seek started a player")
	}
}
