package replicate

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"
)

// Trust rests on the feed key, not on who serves the blocks: a viewer of a free stream can
// serve what it verified to another viewer, live edge included, and that viewer verifies
// every block against the feed key as it would from the seller.
func TestViewerServesVerifiedBlocksOfAFreeStream(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 100, 1024)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	a := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.viewer.Fetch(ctx, 0, 100); err != nil {
		t.Fatal(err)
	}
	// Viewer A serves its reader (free) on its own host; B's card names A.
	relay := startSeller(t, a.node, a.feed, nil, nil)
	b := startViewer(t, nil, a.node.AddrInfo(), sf.Key(), true)
	if err := b.viewer.Fetch(ctx, 0, 100); err != nil {
		t.Fatal(err)
	}
	// The live edge flows seller → A → B.
	for i := 100; i < 110; i++ {
		appendBlocks(t, sf, i, 1, 1024)
		waitFor(t, 10*time.Second, "the live block through viewer A", func() bool { return b.feed.Has(uint64(i)) })
	}
	for i := uint64(0); i < 110; i++ {
		if got, err := b.feed.Get(i); err != nil || !bytes.Equal(got, block(i, 1024)) {
			t.Fatalf("block %d at B: %v", i, err)
		}
	}
	if n, err := b.feed.VerifyAll(); err != nil || n != 110 {
		t.Fatalf("B's copy: %d blocks verified, %v", n, err)
	}
	if st := relay.Stats(b.node.ID()); st.Blocks < 110 {
		t.Fatalf("viewer A served %d blocks to B, want 110", st.Blocks)
	}
}
