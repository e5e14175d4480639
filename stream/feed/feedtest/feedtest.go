// Package feedtest holds what other packages' tests build from feeds: one home for a reader's
// copy of a stream that holds only some of its blocks.
package feedtest

import (
	"testing"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// SparseCopy makes a reader of w's stream in dir holding only the blocks held, each proved by
// w and verified as a viewer's would be. The caller closes it.
func SparseCopy(t testing.TB, w *feed.Feed, dir string, held []uint64) *feed.Feed {
	t.Helper()
	key := w.Key()
	r, err := feed.Create(dir, feed.Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range held {
		req := feed.Request{Block: &feed.BlockRequest{Index: i, Nodes: r.MissingNodes(i)}, Manifest: true}
		if l := w.Length(); r.Length() < l {
			req.Upgrade = &feed.UpgradeRequest{Start: r.Length(), Length: l - r.Length()}
			req.Block.Nodes = 0
		}
		if _, known := r.Mode(); known {
			req.Manifest = false
		}
		p, err := w.Proof(req)
		if err != nil {
			r.Close()
			t.Fatal(err)
		}
		if err := r.Verify(p); err != nil {
			r.Close()
			t.Fatalf("block %d: %v", i, err)
		}
	}
	return r
}
