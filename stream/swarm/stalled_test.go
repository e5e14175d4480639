package swarm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// freezable serves a relay's verified copy until freeze: from then on it stops advancing (its
// own source stalled, or it lies by silence). Head and Length stay, no new head is announced,
// and the session it serves stays up (keep-alives), so the viewer sees no error.
type freezable struct {
	*feed.Feed
	mu     sync.Mutex
	frozen *feed.Head
}

func (f *freezable) freeze() {
	h := f.Feed.Head()
	f.mu.Lock()
	f.frozen = &h
	f.mu.Unlock()
}

func (f *freezable) isFrozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen != nil
}

func (f *freezable) Head() feed.Head {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen != nil {
		return *f.frozen
	}
	return f.Feed.Head()
}

func (f *freezable) Length() uint64 { return f.Head().Length }

// Subscribe passes the feed's heads on until the feed is frozen. Its goroutine ends with the
// returned cancel function, which waits for it.
func (f *freezable) Subscribe() (<-chan feed.Head, func()) {
	in, unsub := f.Feed.Subscribe()
	out := make(chan feed.Head, 1)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			var h feed.Head
			var ok bool
			select {
			case <-done:
				return
			case h, ok = <-in:
				if !ok {
					close(out)
					return
				}
			}
			if f.isFrozen() {
				continue
			}
			offerNewest(out, h)
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); unsub(); <-exited }) }
}

// A viewer whose relay stalls while every other source it knows is full leaves it: a full
// standby well ahead is visited, and its redirect names a relay with free slots that the
// viewer did not know. Before, a full standby was no reason to leave a source, the stalled
// relay's keep-alives held the session, and the viewer stayed on it for good (45 s at block
// 63 while the seller reached 1429, a free relay at the live edge one redirect away).
func TestStalledRelayLeftForAFullStandbysRedirect(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	serveOrigin(t, sn, sf, 2) // relays 1 and 2 fill it
	startAppending(t, sf)

	p1 := startPlain(t, sn.AddrInfo(), sf.Key())
	fz := &freezable{Feed: p1.feed}
	srv1, err := Serve(ServeConfig{Host: p1.node.Host(), Feed: fz, Logger: quiet(), depth: func() uint8 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv1.Close() })
	p2 := startPlain(t, sn.AddrInfo(), sf.Key())
	srv2, err := Serve(ServeConfig{Host: p2.node.Host(), Feed: p2.feed, MaxViewers: 1, Logger: quiet(), depth: func() uint8 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Close() })
	for _, r := range []*plainRig{p1, p2} {
		waitFor(t, 20*time.Second, "a relay at the live edge", func() bool { return r.feed.Length()+5 >= sf.Length() })
	}

	// Relay 3 takes relay 2's only slot and relays too (4 free slots). It links with its
	// source as a relaying viewer does, so relay 2's redirects name it.
	p3 := startPlain(t, p2.node.AddrInfo(), sf.Key())
	waitFor(t, 20*time.Second, "relay 3 at the live edge", func() bool { return p3.feed.Length()+5 >= sf.Length() })
	srv3, err := Serve(ServeConfig{Host: p3.node.Host(), Feed: p3.feed, Logger: quiet(), depth: func() uint8 { return 2 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv3.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv3.haves.open(ctx, p2.node.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "relay 2 linked with relay 3", func() bool {
		h, ok := srv2.haves.get(p3.node.ID())
		return ok && h.Relay && h.Free > 0 && srv2.Free() == 0
	})

	// The viewer watches through relay 1 (the seller turns it away: full, and it knows no
	// relay to name), then learns of relay 2 (as from the DHT) and keeps it and the seller
	// as standbys, both full. It knows nothing of relay 3.
	b := startSwarm(t, sn.AddrInfo(), sf.Key(), func(c *Config) { c.Hints = []peer.AddrInfo{p1.node.AddrInfo()} })
	waitFor(t, 20*time.Second, "the viewer on relay 1 at the live edge", func() bool {
		return b.sw.Stats().Active == p1.node.ID() && b.sw.Connected() && b.sw.Feed().Length()+5 >= sf.Length()
	})
	b.sw.learn([]peer.AddrInfo{p2.node.AddrInfo()})
	waitFor(t, 20*time.Second, "the viewer with the seller and relay 2 as standbys, both full", func() bool {
		hs, oks := b.sw.haves.get(sn.ID())
		h2, ok2 := b.sw.haves.get(p2.node.ID())
		return oks && ok2 && hs.Free == 0 && h2.Free == 0 && b.sw.haves.linked(sn.ID()) && b.sw.haves.linked(p2.node.ID())
	})
	b.sw.mu.Lock()
	_, knows := b.sw.cands[p3.node.ID()]
	b.sw.mu.Unlock()
	if st := b.sw.Stats(); knows || st.Active != p1.node.ID() {
		t.Fatalf("before the stall the viewer must be on relay 1 and not know relay 3: knows it %v, %+v", knows, st)
	}

	fz.freeze()
	stalled, at := time.Now(), b.sw.Feed().Length()
	// Generous: the viewer moves in about a second; only staying on the stalled relay hits it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := b.sw.Stats()
		if st.Active == p3.node.ID() && st.Depth == 3 && b.sw.Connected() && b.sw.Feed().Length() > max(at, fz.Length())+30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the viewer stayed on its stalled relay: at block %d for %v (relay 1 frozen at %d), while the seller is at %d and relay 3 (free slots, named by relay 2's redirect) at %d; %+v",
				b.sw.Feed().Length(), time.Since(stalled).Round(time.Second), fz.Length(), sf.Length(), p3.feed.Length(), st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	moved := time.Since(stalled)
	checkBlocks(t, b.sw.Feed(), 0, sf.Length())
	if st := b.sw.Stats(); st.Banned != 0 {
		t.Fatalf("figures: %+v", st)
	}
	t.Logf("back at the live edge through relay 3 %v after relay 1 stalled", moved.Round(time.Millisecond))
}
