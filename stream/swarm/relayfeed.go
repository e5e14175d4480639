package swarm

import (
	"sync"
	"sync/atomic"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
)

// relayFeed is a viewer's verified reader as a relay serves it. A reader holds no sync points
// (only the appender marks them), so the newest one the source announced is added to its
// head: downstream viewers then join the live edge at a key frame as they would at the seller.
// A sync point is only where to start playing; the blocks are verified as always.
type relayFeed struct {
	replicate.Feed
	sp atomic.Uint64 // the source's newest sync point + 1 (0: none)
}

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

// Subscribe passes the reader's heads on with the sync point added. Its goroutine ends with
// the returned cancel function. Overflow policy as the feed's: one head held, a newer one
// replaces it.
func (f *relayFeed) Subscribe() (<-chan feed.Head, func()) {
	in, unsub := f.Feed.Subscribe()
	out := make(chan feed.Head, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case h, ok := <-in:
				if !ok {
					close(out) // the feed closed
					return
				}
				f.patch(&h)
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
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); unsub() }) }
}
