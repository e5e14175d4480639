package flattree

import (
	"slices"
	"testing"
)

func TestLevelsToRoot(t *testing.T) {
	cases := []struct{ i, n, want uint64 }{
		{0, 1, 0}, {0, 2, 1}, {1, 2, 1}, {2, 3, 0}, {0, 4, 2}, {3, 4, 2}, {4, 6, 1}, {5, 6, 1}, {6, 7, 0}, {7, 8, 3},
	}
	for _, c := range cases {
		if got := LevelsToRoot(c.i, c.n); got != c.want {
			t.Errorf("LevelsToRoot(%d, %d) = %d, want %d", c.i, c.n, got, c.want)
		}
	}
}

// The indexing functions against a tree drawn by hand (Hypercore's flat-tree):
//
//	      3
//	  1       5
//	0   2   4   6
func TestIndexing(t *testing.T) {
	cases := []struct {
		i                                    uint64
		depth                                uint
		offset, parent, sibling, left, right uint64
	}{
		{0, 0, 0, 1, 2, 0, 0}, {2, 0, 1, 1, 0, 2, 2}, {1, 1, 0, 3, 5, 0, 2},
		{5, 1, 1, 3, 1, 4, 6}, {3, 2, 0, 7, 11, 0, 6}, {6, 0, 3, 5, 4, 6, 6},
	}
	for _, c := range cases {
		if Depth(c.i) != c.depth || Offset(c.i) != c.offset || Parent(c.i) != c.parent || Sibling(c.i) != c.sibling ||
			LeftSpan(c.i) != c.left || RightSpan(c.i) != c.right || Index(c.depth, c.offset) != c.i {
			t.Errorf("node %d: depth %d offset %d parent %d sibling %d span [%d, %d], want %+v", c.i, Depth(c.i), Offset(c.i),
				Parent(c.i), Sibling(c.i), LeftSpan(c.i), RightSpan(c.i), c)
		}
	}
	for n, want := range map[uint64][]uint64{0: nil, 1: {0}, 2: {1}, 3: {1, 4}, 5: {3, 8}, 7: {3, 9, 12}} {
		if got := FullRoots(nil, n); !slices.Equal(got, want) {
			t.Errorf("FullRoots(%d) = %v, want %v", n, got, want)
		}
	}
	it := NewIterator(0)
	if it.Parent() != 1 || it.Parent() != 3 || it.LeftChild() != 1 || it.Sibling() != 5 || !it.Contains(6) || it.Contains(2) {
		t.Errorf("iterator walk ends at %+v", *it)
	}
}
