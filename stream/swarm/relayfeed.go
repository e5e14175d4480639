package swarm

import (
	"sync"
	"sync/atomic"

	"github.com/dazaarvision/dazaar-vision/internal/wakeup"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
)

// relayFeed is a viewer's verified reader as a relay serves it. A reader holds no sync points
// (only the appender marks them), so the newest one the source announced is added to its
// head: downstream viewers then join the live edge at a key frame as they would at the seller.
// A sync point is only where to start playing; the blocks are verified as always.
//
// A reader can hold a signed length before its newest block: a proof for block i may carry an
// upgrade past i+1 when the source's feed grew while the proof was made, and block i+1 comes
// in the next push. A head announced then would have the relay push a block it does not hold
// (its viewers would miss it), so heads are passed on only once their newest block is held;
// arrived (called for every verified block) passes on a head held back for it.
type relayFeed struct {
	replicate.Feed
	sp atomic.Uint64 // the source's newest sync point + 1 (0: none)
	// wake is notified when a block arrived: every subscriber (one per viewer served) wakes.
	// A coalescing token woke one of them; the others held their heads back until the next
	// upgrade, and after the last one for good.
	wake wakeup.Signal
}

func newRelayFeed(f replicate.Feed) *relayFeed { return &relayFeed{Feed: f} }

// arrived tells the feed that a block was verified and stored.
func (f *relayFeed) arrived() { f.wake.Notify() }

func (f *relayFeed) patch(h *feed.Head) {
	if sp := f.sp.Load(); sp > 0 && sp-1 < h.Length && (!h.HasSyncPoint || h.SyncPoint < sp-1) {
		h.SyncPoint, h.HasSyncPoint = sp-1, true
	}
}

// Head is the reader's head with the source's newest sync point.
func (f *relayFeed) Head() feed.Head {
	h := f.Feed.Head()
	f.patch(&h)
	return h
}

// Subscribe passes the reader's heads on with the sync point added, each once its newest
// block is held. Its goroutine ends with the returned cancel function, which waits for it. Overflow policy as the
// feed's: one head held, a newer one replaces it.
func (f *relayFeed) Subscribe() (<-chan feed.Head, func()) {
	in, unsub := f.Feed.Subscribe()
	out := make(chan feed.Head, 1)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		type mark struct {
			fork, length, sp uint64
			hasSP            bool
		}
		var sent mark
		woken := f.wake.C()
		for {
			select {
			case <-done:
				return
			case _, ok := <-in:
				if !ok {
					close(out) // the feed closed
					return
				}
			case <-woken:
			}
			// The next arrival's signal is taken before the head is read, so a block stored
			// after this look wakes the loop again.
			woken = f.wake.C()
			h := f.Head() // the newest, whichever woke us
			m := mark{h.Fork, h.Length, h.SyncPoint, h.HasSyncPoint}
			if m == sent || (h.Length > 0 && !f.Feed.Has(h.Length-1)) {
				continue
			}
			sent = m
			offerNewest(out, h)
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); unsub(); <-exited }) }
}

// offerNewest puts h in out, a channel of one head, replacing a head not yet taken: whoever
// reads out wants the newest head, not every one (the feed's own subscriptions work so).
func offerNewest(out chan feed.Head, h feed.Head) {
	select {
	case out <- h:
	default:
		select {
		case <-out:
		default:
		}
		select {
		case out <- h:
		default:
		}
	}
}
