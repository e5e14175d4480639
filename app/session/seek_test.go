package session

import (
	"context"
	"image"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestSeek: a viewer joins a live stream a few seconds in (so it holds none of the start),
// seeks back by time, and playback restarts at the key frame at or before that time, found
// by fetching a handful of blocks; a time before the start, past the live edge, and into
// what is now held behave as they should.
func TestSeek(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	preset := broadcast.Low
	preset.KeyFrameInterval = time.Second
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "seek", Description: "a free test stream",
		Preset: preset, Video: video, Audio: audio, Price: price.Price{}, Network: loopback, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	// Past the seller's MaxLiveLag (90 blocks, 6 s at 15 a second), so that it does not push
	// the viewer everything: it joins at the newest key frame. Counted in blocks, not
	// seconds: a busy machine captures fewer pictures.
	for b.Snapshot().Blocks < 120 {
		select {
		case <-ctx.Done():
			t.Fatalf("the broadcaster holds %d blocks", b.Snapshot().Blocks)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := card.Parse(b.Card().String())
	if err != nil {
		t.Fatal(err)
	}
	vd, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var decoded []time.Duration
	var players []int64      // which player decoded each picture (outputs when it did)
	var outputs atomic.Int64 // audio outputs opened (one a player)
	v, err := NewViewer(ViewerConfig{Data: vd, Secrets: secrets.NewMemory(), Card: c, Network: loopback, Logger: testLog(t),
		Audio: func() playback.AudioOutput { outputs.Add(1); return silentAudio() }, OnDecoded: func(pts time.Duration, _ *image.RGBA) {
			mu.Lock()
			decoded = append(decoded, pts)
			players = append(players, outputs.Load())
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	pictures := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), decoded...)
	}
	waitFor := func(what string, ok func([]time.Duration) bool) {
		t.Helper()
		for !ok(pictures()) {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: pictures %v; viewer %+v", what, pictures(), v.Snapshot())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitFor("joining", func(p []time.Duration) bool { return len(p) >= 5 })
	joinedAt := pictures()[0]
	if joinedAt < 2*time.Second {
		t.Fatalf("joined at %v: the test wants the viewer to hold nothing of the start", joinedAt)
	}
	held := func() (n int) {
		f := v.currentFeed()
		for i := uint64(1); i < f.Length(); i++ {
			if f.Has(i) {
				n++
			}
		}
		return n
	}
	before := held()
	if f := v.currentFeed(); 2*uint64(before) > f.Length() {
		t.Fatalf("the viewer holds %d of %d blocks before seeking: the test wants it to hold little of the start", before, f.Length())
	}

	if v.Snapshot().Resumed {
		t.Fatal("a stream never resumed is said to be resumed")
	}
	if _, _, err := v.Seek(ctx, -time.Second); err == nil {
		t.Fatal("a seek before the start was taken")
	}
	tests := []struct {
		name string
		to   time.Duration
	}{
		{"back, into what is not held", 1500 * time.Millisecond},
		{"to the very start", 0},
		{"into what is now held", 700 * time.Millisecond},
	}
	for _, tc := range tests {
		mu.Lock()
		decoded, players = nil, nil
		mu.Unlock()
		asked := time.Now()
		at, live, err := v.Seek(ctx, tc.to)
		if err != nil || live {
			t.Fatalf("%s: %v (live %v)", tc.name, err, live)
		}
		took := time.Since(asked)
		if tc.to == 1500*time.Millisecond {
			t.Logf("the seek fetched %d blocks", held()-before)
		}
		// The key frame at or before the time: at most a key-frame interval (and a frame) before.
		if at > tc.to || at < tc.to-preset.KeyFrameInterval-100*time.Millisecond {
			t.Fatalf("%s: seeking to %v restarts at %v", tc.name, tc.to, at)
		}
		// The old player may decode a picture or two between the reset above and its stop;
		// the new one is the last player made (each opens one audio output, after the old one
		// stopped), so its pictures are those decoded since.
		player := outputs.Load()
		mu.Lock()
		for len(decoded) > 0 && players[0] != player {
			decoded, players = decoded[1:], players[1:]
		}
		mu.Unlock()
		waitFor(tc.name, func(p []time.Duration) bool { return len(p) >= 10 })
		p := pictures()
		if tc.to == 0 {
			// Before the first picture: from block 1, sound first.
			if at != 0 || p[0] > preset.KeyFrameInterval {
				t.Fatalf("%s: restarted at %v, first picture %v", tc.name, at, p[0])
			}
		} else if p[0] != at {
			t.Fatalf("%s: restarted at %v, first picture %v", tc.name, at, p[0])
		}
		for i := 1; i < len(p); i++ {
			if p[i] <= p[i-1] {
				t.Fatalf("%s: picture %v after %v", tc.name, p[i], p[i-1])
			}
		}
		v.playMu.Lock()
		st := v.player.Stats()
		v.playMu.Unlock()
		m, err := v.blockMedia(ctx, 0, st.StartBlock)
		if _, ok := startsAt(m, true); err != nil || !ok && st.StartBlock != 1 {
			t.Fatalf("%s: the player started at block %d, which is not a sync block (%v)", tc.name, st.StartBlock, err)
		}
		t.Logf("%s: seek to %v → block %d at %v in %v; first picture %v", tc.name, tc.to, st.StartBlock, at, took, p[0])
	}

	// Past the live edge: live again.
	at, live, err := v.Seek(ctx, time.Hour)
	if err != nil || !live {
		t.Fatalf("seeking past the live edge: %v (live %v)", err, live)
	}
	mu.Lock()
	decoded = nil
	mu.Unlock()
	waitFor("going live", func(p []time.Duration) bool { return len(p) >= 3 })
	if p := pictures(); p[0] < at-preset.KeyFrameInterval-time.Second {
		t.Fatalf("seeking past the edge (%v) did not go live: first picture at %v", at, p[0])
	}

	// The controls at once, from several goroutines, as a window's buttons, the command
	// line's -from and a resumed stream's new header meet them: each stops the player it
	// replaces before the next starts (this panicked, "WaitGroup is reused", when a seek met
	// the header's restart), and a new header leaves a player the user moved where it is.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 12 {
				switch (g + i) % 6 {
				case 0:
					if _, _, err := v.Seek(ctx, time.Duration(i)*100*time.Millisecond); err != nil {
						t.Errorf("seek: %v", err)
					}
				case 1:
					v.GoLive()
				case 2:
					v.Pause()
				case 3:
					v.Resume()
				case 4:
					v.restartLive()
				case 5:
					v.GoToStart()
				}
			}
		})
	}
	wg.Wait()
	at, _, err = v.Seek(ctx, 700*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	v.restartLive()
	v.playMu.Lock()
	from := v.from
	v.playMu.Unlock()
	if from == 0 {
		t.Fatalf("a new header moved the player the user sought to %v back to live", at)
	}
	mu.Lock()
	decoded = nil
	mu.Unlock()
	waitFor("after the controls", func(p []time.Duration) bool { return len(p) >= 3 })
	// Stop meets the controls too, and controls after it start nothing: no player outlives
	// the session, and no audio output is opened that nothing would close.
	for g := range 3 {
		wg.Go(func() {
			for i := range 20 {
				switch (g + i) % 4 {
				case 0:
					v.GoLive()
				case 1:
					v.Pause()
				case 2:
					v.Resume()
				case 3:
					v.GoToStart()
				}
			}
		})
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	opened := outputs.Load()
	v.GoLive()
	v.Pause()
	v.Resume()
	v.restartLive()
	v.playMu.Lock()
	running := v.playCancel != nil
	v.playMu.Unlock()
	if running || outputs.Load() != opened {
		t.Fatalf("controls after Stop started a player (running %v, audio outputs %d then %d)", running, opened, outputs.Load())
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
}

// A pause as the player starts, before it has reached a block: play goes on where that player
// was to start (here the live edge), not from the run's first block.
func TestPauseAsThePlayerStartsKeepsItsPlace(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	v := startLoopbackViewer(ctx, t, b.Card())
	defer v.Stop()
	waitFor(t, "a few seconds of stream, playing", time.Minute, func() bool {
		f := v.Snapshot()
		return f.FramesDecoded > 10 && f.BehindLive < 30 && b.Snapshot().Blocks > 60
	})
	v.GoLive()
	v.Pause()
	v.playMu.Lock()
	from := v.from
	v.playMu.Unlock()
	if from != 0 && from < 30 {
		t.Fatalf("paused as Go live's player started, play would go on from block %d of a stream of %d", from, b.Snapshot().Blocks)
	}
	v.Resume()
	waitFor(t, "playing at the live edge again", time.Minute, func() bool { return v.Snapshot().BehindLive < 30 })
}

// TestFiguresCountEveryPlayer: the pictures decoded and shown are the session's, not the
// current player's: a control that starts a new player (Go to start, a seek, play after a
// pause) does not take them back to zero. Before, `watch` ended on "decoded 129 frames" after
// a session that decoded 1 542.
func TestFiguresCountEveryPlayer(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	v := startLoopbackViewer(ctx, t, b.Card())
	defer v.Stop()
	waitFor(t, "pictures", time.Minute, func() bool { return v.Snapshot().FramesDecoded > 20 })
	before := v.Snapshot()
	v.GoToStart()
	after := v.Snapshot()
	if after.FramesDecoded < before.FramesDecoded || after.FramesShown < before.FramesShown {
		t.Fatalf("after Go to start: decoded %d, shown %d; before it %d, %d", after.FramesDecoded, after.FramesShown, before.FramesDecoded, before.FramesShown)
	}
	waitFor(t, "pictures from the start", time.Minute, func() bool { return v.Snapshot().FramesDecoded > before.FramesDecoded+10 })
}
