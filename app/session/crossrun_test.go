package session

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestResumedRunPlaysLive: a player that reaches the header of a resumed run goes on in the
// mode it played: following the live edge, the new run plays live (from its newest key frame,
// catching up after a stall); a replay the user chose plays the new run from its start.
// Before, every player went on as a replay from the new run's first block, so a live viewer
// kept, for good, whatever delay it had at the resume and every stall after it.
func TestResumedRunPlaysLive(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A stream stopped and resumed: two runs in one feed, each from its own header.
	video, audio := testDevices(t)
	sd, _ := OpenDataDir(t.TempDir())
	preset := broadcast.Low
	preset.KeyFrameInterval = time.Second
	cfg := BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "resumable", Preset: preset, Video: video, Audio: audio,
		Price: price.Free, Network: loopback, Logger: testLog(t)}
	a, err := NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first run", time.Minute, func() bool { return a.Snapshot().Blocks >= 30 })
	a.Stop()
	cfg.Resume, cfg.Name = a.ID(), ""
	cfg.Network.Listen = nil
	b, err := NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second run", time.Minute, func() bool { return b.Snapshot().Blocks >= b.header+60 })
	b.Stop()
	sync1, sync2, header := a.lastSync-1, b.lastSync-1, b.header
	if sync1 == 0 || sync1 >= header || sync2 <= header+1 {
		t.Fatalf("the runs' newest sync points: %d (header at 0), %d (header at %d)", sync1, sync2, header)
	}
	f, err := feed.Open(filepath.Join(sd.streamDir(a.ID()), "feed"), feed.Options{Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	cases := []struct {
		name string
		from uint64 // where the first player starts in the first run (0: live)
		want uint64 // the block the player of the second run starts at, counted from its header
	}{
		{"following live", 0, sync2 - header},
		{"a replay", 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A viewer over the stored feed, its seller's newest sync point that of the run
			// under the newest header it knows.
			v := &Viewer{log: testLog(t), ev: newEvents(), cfg: ViewerConfig{Audio: silentAudio}}
			v.ctx, v.cancel = context.WithCancel(ctx)
			defer v.cancel()
			v.src = newReaderSource()
			v.src.feed = func() *feed.Feed { return f }
			v.src.length = f.Length
			v.src.fetch = func(context.Context, uint64, bool) {}
			v.src.latest = func() (uint64, bool) {
				if v.src.base.Load() >= header {
					return sync2, true
				}
				return sync1, true
			}
			v.ctlMu.Lock()
			v.startPlayerLocked(0, c.from)
			v.ctlMu.Unlock()
			defer func() {
				v.ctlMu.Lock()
				v.stopPlayerLocked()
				v.ctlMu.Unlock()
			}()
			var start uint64
			waitFor(t, "the player of the second run", time.Minute, func() bool {
				v.playMu.Lock()
				defer v.playMu.Unlock()
				if v.playSrc.base.Load() != header {
					return false
				}
				start = v.player.Stats().StartBlock
				return start != 0
			})
			if start != c.want {
				t.Fatalf("the second run plays from its block %d, want %d (its newest key frame is at %d)", start, c.want, sync2-header)
			}
		})
	}
}
