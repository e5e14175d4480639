package replicate

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// batchCounter is a viewer's feed that records the size of each batch it verifies.
type batchCounter struct {
	*feed.Feed
	mu    sync.Mutex
	sizes []int
}

func (c *batchCounter) VerifyBatch(ps []*feed.Proof) (int, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(ps))
	c.mu.Unlock()
	return c.Feed.VerifyBatch(ps)
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
