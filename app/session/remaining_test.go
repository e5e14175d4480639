package session

import (
	"context"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// The paid time left counts down while the stream plays and stands still while it is paused:
// the seller does not charge paused time.
func TestRemainingStopsWhilePaused(t *testing.T) {
	allowed := wire.Access{State: wire.Allowed, RemainingMs: 60_000}
	cases := []struct {
		name   string
		paused bool
		want   time.Duration
	}{
		{"playing: 10 s of the minute used", false, 50 * time.Second},
		{"paused since the seller's update: none used", true, 60 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &Viewer{}
			v.access, v.accessAt = allowed, time.Now().Add(-10*time.Second)
			v.paused.Store(c.paused)
			if got := v.Remaining(); !near(got, c.want) {
				t.Fatalf("Remaining() = %v, want %v", got, c.want)
			}
		})
	}
}

// near says whether a countdown read got is want, less at most the 2 s a loaded machine may
// take between setting up and reading it.
func near(got, want time.Duration) bool { return got <= want && got > want-2*time.Second }

// Paused 10 s after the seller's update: 50 s stay left however long the pause lasts; playing
// on counts down again from there.
func TestRemainingPauseAndPlay(t *testing.T) {
	allowed := wire.Access{State: wire.Allowed, RemainingMs: 60_000}
	v := &Viewer{}
	v.access, v.accessAt = allowed, time.Now().Add(-10*time.Second)
	if was := v.setPaused(true); was {
		t.Fatal("the viewer was paused already")
	}
	first := v.Remaining()
	time.Sleep(300 * time.Millisecond)
	if got := v.Remaining(); !near(first, 50*time.Second) || got != first {
		t.Fatalf("paused: Remaining() went from %v to %v, want 50 s both times", first, got)
	}
	if was := v.setPaused(false); !was {
		t.Fatal("the viewer was not paused")
	}
	time.Sleep(300 * time.Millisecond)
	if got := v.Remaining(); got > first-250*time.Millisecond || got < first-2*time.Second {
		t.Fatalf("playing again: Remaining() = %v, want about %v less 300 ms", got, first)
	}
}

// connectedUpstream is a link that is up and carries nothing.
type connectedUpstream struct{}

func (connectedUpstream) Run(ctx context.Context) error               { <-ctx.Done(); return nil }
func (connectedUpstream) Status() wire.Status                         { return wire.Status{} }
func (connectedUpstream) Connected() bool                             { return true }
func (connectedUpstream) Send([]byte) error                           { return nil }
func (connectedUpstream) Fetch(context.Context, uint64, uint64) error { return nil }

// While no block arrives (the broadcaster's machine died: its link looks up for 30 s more) the
// countdown stands still, as the seller charges for blocks delivered; it counts again from the
// next block.
func TestCountdownStandsStillWhileNoBlockArrives(t *testing.T) {
	v := &Viewer{rv: connectedUpstream{}, src: newReaderSource()}
	v.access, v.accessAt = wire.Access{State: wire.Allowed, RemainingMs: 60_000}, time.Now()
	v.onBlock(0, []byte("a block"))
	time.Sleep(300 * time.Millisecond)
	flowing := v.Remaining()
	if flowing > 60*time.Second-250*time.Millisecond {
		t.Fatalf("blocks arriving: Remaining() = %v, want it counting down", flowing)
	}
	v.lastBlock.Store(time.Now().Add(-StarvedAfter - time.Second).UnixNano()) // the last block, long ago
	first := v.Remaining()
	time.Sleep(300 * time.Millisecond)
	if got := v.Remaining(); got != first {
		t.Fatalf("no block for %v: Remaining() went from %v to %v, want it standing still", StarvedAfter, first, got)
	}
	if s := v.starved(); s < StarvedAfter {
		t.Fatalf("starved() = %v, want at least %v", s, StarvedAfter)
	}
	v.onBlock(1, []byte("the next block"))
	time.Sleep(300 * time.Millisecond)
	if got := v.Remaining(); got > first-250*time.Millisecond || got < first-2*time.Second {
		t.Fatalf("blocks again: Remaining() = %v, want about %v less 300 ms", got, first)
	}
	if s := v.starved(); s != 0 {
		t.Fatalf("starved() = %v with blocks arriving", s)
	}
}

// TestFreeStreamStarvedIsTold: a free stream's figures say how long no block has arrived, as a
// paid one's do (before: 0 always, so a dead broadcaster's viewers read "free" for the 30 s its
// link still said up); not while paused.
func TestFreeStreamStarvedIsTold(t *testing.T) {
	v := &Viewer{rv: connectedUpstream{}, src: newReaderSource()}
	v.access, v.accessAt = wire.Access{State: wire.Free}, time.Now()
	v.onBlock(0, []byte("a block"))
	if s := v.starved(); s != 0 {
		t.Fatalf("blocks arriving: starved() = %v", s)
	}
	v.lastBlock.Store(time.Now().Add(-StarvedAfter - time.Second).UnixNano())
	if s := v.starved(); s < StarvedAfter {
		t.Fatalf("no block for %v: starved() = %v", StarvedAfter+time.Second, s)
	}
	v.paused.Store(true)
	if s := v.starved(); s != 0 {
		t.Fatalf("paused: starved() = %v", s)
	}
}
