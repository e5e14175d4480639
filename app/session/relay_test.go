package session

import (
	"context"
	"image"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
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
