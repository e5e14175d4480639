package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// waitEvent reads v's events until one of kind says want, or ctx ends.
func waitEvent(ctx context.Context, t *testing.T, v *Viewer, kind EventKind, want string) Event {
	t.Helper()
	var seen []string
	for {
		select {
		case ev := <-v.Events():
			seen = append(seen, ev.Text)
			if ev.Kind == kind && strings.Contains(ev.Text, want) {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no event saying %q; the viewer said %q; figures %+v", want, seen, v.Snapshot())
		}
	}
}

// TestViewerToldBroadcasterWentAway cuts a broadcaster's network while a viewer plays it (as
// a killed process or a lost link does: no word from it first): the viewer is told in plain
// words that the broadcaster went away and that it is reconnecting, and its figures say it is
// not connected and why. (A broadcaster that stops says so: TestStoppedBroadcastIsSaidToHaveEnded.)
func TestViewerToldBroadcasterWentAway(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, _ := OpenDataDir(t.TempDir())
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "going away", Preset: broadcast.Low,
		Video: video, Audio: audio, Price: price.Price{}, Network: loopback, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	v := startLoopbackViewer(ctx, t, b.Card())
	defer v.Stop()
	waitEvent(ctx, t, v, EventPlaying, "playing")
	if f := v.Snapshot(); !f.Connected || f.Reason != "" {
		t.Fatalf("playing, but the figures say %+v", f)
	}
	if err := b.node.Close(); err != nil {
		t.Fatal(err)
	}
	waitEvent(ctx, t, v, EventError, "The broadcaster went away; trying to reconnect")
	if f := v.Snapshot(); f.Connected || f.Reason != "The broadcaster went away; trying to reconnect" {
		t.Fatalf("the broadcaster went away, but the figures say %+v", f)
	}
}

// TestViewerToldBroadcasterUnreachable gives viewers cards whose address is a loopback port
// nothing listens on: after UnreachableAfter each is told the broadcaster cannot be reached
// and why, free (a swarm) and paid (the seller alone), and the figures say so.
func TestViewerToldBroadcasterUnreachable(t *testing.T) {
	defer checkLeaks(t)()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()
	seller := newPeerID(t)
	paid, _ := price.Parse("600 sats per minute")
	for _, tc := range []struct {
		name string
		c    card.Card
	}{
		{"free", card.Card{Name: "nobody home", Price: price.Price{}}},
		{"paid", card.Card{Name: "nobody home", Price: paid, Methods: []card.Method{card.OnChain}, Network: "simnet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := tc.c
			c.Feed[0] = 1
			c.Seller = seller.String()
			c.Addrs = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", dead)}
			vd, _ := OpenDataDir(t.TempDir())
			v, err := NewViewer(ViewerConfig{Data: vd, Secrets: secrets.NewMemory(), Card: c, Network: loopback, Logger: testLog(t),
				Audio: silentAudio, UnreachableAfter: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer v.Stop()
			ev := waitEvent(ctx, t, v, EventError, "The broadcaster cannot be reached: ")
			t.Logf("told: %s", ev.Text)
			if !strings.Contains(ev.Text, "nothing listens at the card's addresses") {
				t.Fatalf("the message does not say nothing listens at the address: %q", ev.Text)
			}
			if f := v.Snapshot(); f.Connected || f.Reason != ev.Text {
				t.Fatalf("the broadcaster cannot be reached, but the figures say %+v", f)
			}
		})
	}
}

// TestRelayedViewerNotToldOfARelayLeaving: a free stream's viewer served by another viewer (a
// relay) is not told "the broadcaster went away" when that relay leaves while the broadcaster
// is live: it finds another source within the swarm's switch time (for one of two such
// viewers, turned away by the full broadcaster and redirected, over a second) and plays on.
func TestRelayedViewerNotToldOfARelayLeaving(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	video, audio := testDevices(t)
	sd, _ := OpenDataDir(t.TempDir())
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "relayed", Preset: broadcast.Low,
		Video: video, Audio: audio, Price: price.Price{}, Network: loopback, Logger: testLog(t), DirectViewers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	viewer := func() *Viewer { return startLoopbackViewer(ctx, t, b.Card()) }
	relay := viewer()
	defer relay.Stop()
	waitFor(t, "the relay served by the broadcaster", time.Minute, func() bool { f := relay.Snapshot(); return f.Depth == 1 && f.Playing })
	// Two viewers served through the relay: when it leaves, the broadcaster has room for one
	// of them, and the other is turned away and redirected to it, which takes a while.
	var vs []*Viewer
	for range 2 {
		v := viewer()
		defer v.Stop()
		waitFor(t, "a viewer served through the relay", time.Minute, func() bool { f := v.Snapshot(); return f.Depth == 2 && f.Playing })
		vs = append(vs, v)
	}
	for _, v := range vs {
		for len(v.Events()) > 0 {
			<-v.Events()
		}
	}
	relay.Stop()
	// Past relayGrace and the swarm's switch: nothing but a source found again.
	deadline := time.After(relayGrace + 3*time.Second)
	for done := false; !done; {
		select {
		case ev := <-vs[0].Events():
			if ev.Kind == EventError {
				t.Fatalf("the relay left while the broadcaster is live, and a viewer was told %q", ev.Text)
			}
		case ev := <-vs[1].Events():
			if ev.Kind == EventError {
				t.Fatalf("the relay left while the broadcaster is live, and a viewer was told %q", ev.Text)
			}
		case <-deadline:
			done = true
		}
	}
	for _, v := range vs {
		waitFor(t, "the viewer served again", time.Minute, func() bool { f := v.Snapshot(); return f.Connected && f.Reason == "" })
	}
}

// startLoopbackViewer starts a viewer of card c on loopback, with its own data directory and
// secrets in memory; the caller stops it.
func startLoopbackViewer(ctx context.Context, t *testing.T, c card.Card) *Viewer {
	t.Helper()
	return startViewerWith(ctx, t, c, nil)
}

// startViewerWith starts a viewer of c on loopback, its config changed by edit (may be nil).
func startViewerWith(ctx context.Context, t *testing.T, c card.Card, edit func(*ViewerConfig)) *Viewer {
	t.Helper()
	vd, _ := OpenDataDir(t.TempDir())
	cfg := ViewerConfig{Data: vd, Secrets: secrets.NewMemory(), Card: c, Network: loopback, Logger: testLog(t), Audio: silentAudio}
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewViewer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return v
}

// startFreeBroadcaster goes live with a free stream from the test devices on loopback; the
// test stops it.
func startFreeBroadcaster(ctx context.Context, t *testing.T) *Broadcaster {
	t.Helper()
	video, audio := testDevices(t)
	sd, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "test", Preset: broadcast.Low,
		Video: video, Audio: audio, Price: price.Price{}, Network: loopback, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// A card this install sells, pasted into this install's own viewer (a seller trying their
// stream on one machine): said in words at once, and nothing is kept under Watched.
func TestWatchingOwnStreamIsSaid(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := secrets.NewMemory()
	video, audio := testDevices(t)
	sd, _ := OpenDataDir(t.TempDir())
	b, err := NewBroadcaster(BroadcasterConfig{Data: sd, Secrets: store, Name: "mine", Preset: broadcast.Low,
		Video: video, Audio: audio, Network: loopback, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	vd, _ := OpenDataDir(t.TempDir())
	v, err := NewViewer(ViewerConfig{Data: vd, Secrets: store, Card: b.Card(), Network: loopback, Logger: testLog(t), Audio: silentAudio})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = v.Start(ctx)
	if !errors.Is(err, ErrOwnStream) {
		t.Fatalf("watching one's own card: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("said after %v", d)
	}
	if w, _ := vd.Watched(); len(w) != 0 {
		t.Errorf("the failed watch is kept under Watched: %+v", w)
	}
}

// newPeerID is a fresh peer's ID, for a card's seller nobody runs.
func newPeerID(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestStoppedBroadcastIsSaidToHaveEnded: a broadcaster that stops tells its viewers, which say
// the stream ended instead of "went away; trying to reconnect" (the words of a broadcaster
// whose process died or whose network failed).
func TestStoppedBroadcastIsSaidToHaveEnded(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	v := startLoopbackViewer(ctx, t, b.Card())
	defer v.Stop()
	waitFor(t, "pictures", time.Minute, func() bool { return v.Snapshot().FramesDecoded > 10 })
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the viewer saying the stream ended", 10*time.Second, func() bool { return v.Snapshot().Reason == textEnded })
	for {
		select {
		case ev := <-v.Events():
			if ev.Text == textWentAway {
				t.Fatalf("the viewer also said %q", ev.Text)
			}
			if ev.Text != textEnded {
				continue
			}
		case <-time.After(time.Second):
			t.Fatal("no event said the stream ended")
		}
		break
	}
}
