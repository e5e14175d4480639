package session

import (
	"context"
	"errors"
	"image"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/internal/headermsg"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestFreeStreamThroughARelayingViewer: a free stream's broadcaster serving one viewer
// directly sends the second to the first, which relays it; the second viewer decodes
// pictures whose every block it verified, and the figures on all three sides say so.
func TestFreeStreamThroughARelayingViewer(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "test", Description: "a relayed free stream",
		Preset: broadcast.Low, Video: video, Audio: audio, Price: price.Price{}, Network: loopback, DirectViewers: 1, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	c, err := card.Parse(b.Card().String())
	if err != nil {
		t.Fatal(err)
	}
	watch := func() (*Viewer, *atomic.Int64) {
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
		return v, &decoded
	}
	waitDecoded := func(v *Viewer, d *atomic.Int64, n int64) {
		t.Helper()
		for d.Load() < n {
			select {
			case <-ctx.Done():
				t.Fatalf("only %d pictures decoded; viewer %+v broadcaster %+v", d.Load(), v.Snapshot(), b.Snapshot())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	a, ad := watch()
	defer a.Stop()
	waitDecoded(a, ad, 10)
	// The broadcaster's have link from A (A relays) comes up with A's first Have.
	deadline := time.Now().Add(20 * time.Second)
	for f := a.Snapshot(); f.Depth != 1 || !f.SourceIsSeller || f.Upstreams < 1; f = a.Snapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("viewer A's figures %+v", f)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // A's Have reaches the broadcaster (sent at most every 100 ms)
	bv, bd := watch()
	defer bv.Stop()
	waitDecoded(bv, bd, 20)
	deadline = time.Now().Add(20 * time.Second)
	for {
		f, fa, fb := bv.Snapshot(), a.Snapshot(), b.Snapshot()
		if f.Depth == 2 && f.Source == a.Self() && f.Access == wire.Free && fa.Downstreams == 1 && fa.RelayedBytes > 0 &&
			fb.Viewers == 1 && fb.Redirected >= 1 && fb.DirectLimit == 1 {
			t.Logf("B: depth %d through %s, %d bytes down; A relayed %d bytes; broadcaster sent %d bytes, redirected %d",
				f.Depth, f.Source, f.BytesDown, fa.RelayedBytes, fb.BytesUp, fb.Redirected)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("figures: B %+v\nA %+v\nbroadcaster %+v", f, fa, fb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, v := range []*Viewer{bv, a} {
		if err := v.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestFreeStreamViewerChecksHeaderClaims: app messages are not signed, so a free stream's
// viewer, whose source may be any relaying viewer, moves to an announced stream header only
// when the signed stream has one there. A claim far beyond the stream and one naming a media
// block leave the viewer playing where it was, and neither is passed on to its own viewers;
// before the check, the first froze playback for good (waiting for a block that never comes).
func TestFreeStreamViewerChecksHeaderClaims(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	var decoded atomic.Int64
	v := startViewerWith(ctx, t, b.Card(), func(c *ViewerConfig) {
		c.OnDecoded = func(time.Duration, *image.RGBA) { decoded.Add(1) }
	})
	defer v.Stop()
	waitFor(t, "first pictures", time.Minute, func() bool { return decoded.Load() >= 10 })
	// Both claims go to the viewer as its source's word (here the seller's node stands for a
	// lying relay: the viewer cannot tell them apart, and checks both the same way).
	for _, h := range []uint64{1 << 40, 3} {
		if err := b.seller.Send(v.self, headermsg.Encode(h)); err != nil {
			t.Fatal(err)
		}
	}
	// The media claim is settled once block 3 is checked (it is held: the viewer joined at the
	// first key frame's block or before), the far one stays waiting, bounded.
	waitFor(t, "the media block's claim checked", time.Minute, func() bool {
		v.hdrMu.Lock()
		defer v.hdrMu.Unlock()
		return !slices.Contains(v.hdrClaims, 3)
	})
	n := decoded.Load()
	waitFor(t, "pictures after the claims", time.Minute, func() bool { return decoded.Load() >= n+15 })
	if base := v.src.base.Load(); base != 0 {
		t.Fatalf("the viewer moved to a header at block %d on a source's word", base)
	}
	if f := v.Snapshot(); f.Resumed {
		t.Fatalf("the viewer reports a resumed stream: %+v", f)
	}
	if fwd := v.sw.Forwarded(); fwd != nil {
		if h, _ := headermsg.Decode(fwd); h != 0 {
			t.Fatalf("the viewer passes on a header claim it did not check: block %d", h)
		}
	}
	// Claims beyond the stream are bounded: many of them keep at most maxHeaderClaims.
	for i := range 3 * maxHeaderClaims {
		v.offerHeader(1<<41 + uint64(i))
	}
	v.hdrMu.Lock()
	if k := len(v.hdrClaims); k > maxHeaderClaims {
		t.Errorf("%d claims held, want at most %d", k, maxHeaderClaims)
	}
	v.hdrMu.Unlock()
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestNoPlaybackControlsStartNoPlayer: a viewer made with NoPlayback (watch -no-play, -o -)
// downloads; the player's controls start no player (before, live, start or resume opened the
// sound device that -no-play promises not to touch).
func TestNoPlaybackControlsStartNoPlayer(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	var opened atomic.Int64
	v := startViewerWith(ctx, t, b.Card(), func(c *ViewerConfig) {
		c.NoPlayback = true
		c.Audio = func() playback.AudioOutput { opened.Add(1); return silentAudio() }
	})
	defer v.Stop()
	v.GoLive()
	v.GoToStart()
	v.Pause()
	v.Resume()
	waitFor(t, "the download's first 20 blocks", time.Minute, func() bool { return v.Snapshot().Stored >= 20 })
	v.playMu.Lock()
	started := v.player != nil
	v.playMu.Unlock()
	if started || opened.Load() != 0 {
		t.Fatalf("a player started (%v) and opened the sound device %d times", started, opened.Load())
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
}

// failingAudio is a sound device that is gone.
type failingAudio struct{}

func (failingAudio) Start(int, int, func([]float32)) error {
	return errors.New("the sound device is gone")
}
func (failingAudio) Latency() time.Duration { return 0 }
func (failingAudio) Close() error           { return nil }

// TestPlaybackStoppedIsTold: a player that stops on its own is reported in the figures (not
// playing, and why), and a control that starts a player again clears it.
func TestPlaybackStoppedIsTold(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	var opened atomic.Int64
	v := startViewerWith(ctx, t, b.Card(), func(c *ViewerConfig) {
		c.Audio = func() playback.AudioOutput {
			if opened.Add(1) == 1 {
				return failingAudio{}
			}
			return silentAudio()
		}
	})
	defer v.Stop()
	waitFor(t, "the stop told", 30*time.Second, func() bool {
		f := v.Snapshot()
		return strings.Contains(f.PlaybackStopped, "the sound device is gone") && !f.Playing
	})
	v.GoLive()
	waitFor(t, "playing again", 30*time.Second, func() bool { f := v.Snapshot(); return f.PlaybackStopped == "" && f.Playing })
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
}
