package replicate

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// batchCounter is a viewer's feed that records the size of each batch it verifies.
type batchCounter struct {
	*feed.Feed
	delay time.Duration // a slow viewer's verification
	mu    sync.Mutex
	sizes []int
}

func (c *batchCounter) VerifyBatch(ps []*feed.Proof) (int, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(ps))
	c.mu.Unlock()
	time.Sleep(c.delay)
	return c.Feed.VerifyBatch(ps)
}

func (c *batchCounter) batches() (n, proofs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sizes {
		proofs += s
	}
	return len(c.sizes), proofs
}

// A viewer catching up verifies the proofs queued behind each other together, never more
// than verifyBatch at once, and stores exactly what the seller has.
func TestViewerVerifiesBacklogInBatches(t *testing.T) {
	const n = 3000
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), n, 1024)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	var c *batchCounter
	r := startViewerWith(t, nil, sn.AddrInfo(), sf.Key(), false, func(cfg *ViewerConfig) {
		c = &batchCounter{Feed: cfg.Feed.(*feed.Feed)}
		cfg.Feed = c
		cfg.OnBlock = nil
	})
	r.waitAccess(t, wire.Free)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.viewer.Fetch(ctx, 0, n); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < n; i++ {
		got, err := r.feed.Get(i)
		if err != nil || !bytes.Equal(got, block(i, 1024)) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	total, biggest := 0, 0
	for _, s := range c.sizes {
		if s < 1 || s > verifyBatch {
			t.Fatalf("a batch of %d proofs (want 1..%d)", s, verifyBatch)
		}
		total += s
		biggest = max(biggest, s)
	}
	if total < n {
		t.Fatalf("%d proofs verified for %d blocks", total, n)
	}
	if biggest < 2 {
		t.Fatalf("%d proofs verified one at a time: the backlog was never verified together", total)
	}
	t.Logf("%d proofs in %d batches (largest %d)", total, len(c.sizes), biggest)
}

// A live viewer that verifies slower than the seller appends gets a push and a status for
// each block: the statuses wait for the proofs queued before them, so the backlog is still
// verified together, and a status is never seen before the blocks it announces are stored.
func TestLiveViewerBehindVerifiesTogether(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	var (
		c        *batchCounter
		statuses atomic.Int64
		early    atomic.Int64 // statuses seen before the blocks they announce
	)
	r := startViewerWith(t, nil, sn.AddrInfo(), sf.Key(), true, func(cfg *ViewerConfig) {
		c = &batchCounter{Feed: cfg.Feed.(*feed.Feed)}
		cfg.Feed = c
		cfg.OnBlock = nil
		cfg.OnStatus = func(st wire.Status) {
			statuses.Add(1)
			if c.Length() < st.Length {
				early.Add(1)
			}
		}
	})
	r.waitAccess(t, wire.Free)
	waitFor(t, 20*time.Second, "the first blocks", func() bool { return r.feed.Length() >= 10 })
	n0, p0 := c.batches()
	e0 := early.Load() // the status on connecting announces the seller's length at once
	c.mu.Lock()
	c.delay = 10 * time.Millisecond
	c.mu.Unlock()
	const n = 200
	for i := 10; i < 10+n; i++ {
		appendBlocks(t, sf, i, 1, 1024) // one signed push, then a status, each
		time.Sleep(time.Millisecond)
	}
	waitFor(t, 60*time.Second, "the live blocks", func() bool { return r.feed.Length() == 10+n })
	for i := uint64(0); i < 10+n; i++ {
		if got, err := r.feed.Get(i); err != nil || !bytes.Equal(got, block(i, 1024)) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	n1, p1 := c.batches()
	batches, proofs := n1-n0, p1-p0
	t.Logf("%d live proofs in %d batches, %d statuses", proofs, batches, statuses.Load())
	if e := early.Load() - e0; e > 0 {
		t.Fatalf("%d statuses were handed on before the blocks they announce were stored", e)
	}
	if statuses.Load() == 0 {
		t.Fatal("no status reached the viewer")
	}
	// 10 ms a batch against a push a millisecond: one at a time would take 2 s and 200
	// batches (196–198 with the statuses splitting them); the pushes queued behind one
	// another come in far fewer (36–37 on a quiet machine, 53 in a loaded make test, where
	// the seller appends slower than one a millisecond).
	if proofs < 2*batches {
		t.Fatalf("%d live proofs in %d batches: the statuses between them split the backlog", proofs, batches)
	}
}
