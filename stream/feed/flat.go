package feed

import "math/bits"

// Flat-tree indexing (Hypercore's "flat-tree"): the Merkle tree is laid out in
// order in one array. Even indexes are leaves (block i is node 2i), odd indexes
// are parents. All functions take and return flat-tree indexes.

// flatDepth is the number of trailing one bits of i.
func flatDepth(i uint64) uint { return uint(bits.TrailingZeros64(^i)) }

// flatOffset is the position of i among the nodes of its depth.
func flatOffset(i uint64) uint64 { return i >> (flatDepth(i) + 1) }

// flatIndex is the index of the node at depth d and offset o.
func flatIndex(d uint, o uint64) uint64 { return (2*o+1)<<d - 1 }

func flatParent(i uint64) uint64 {
	d := flatDepth(i)
	return flatIndex(d+1, flatOffset(i)>>1)
}

func flatSibling(i uint64) uint64 {
	d := flatDepth(i)
	return flatIndex(d, flatOffset(i)^1)
}

// flatLeftSpan and flatRightSpan are the first and last leaf under i.
func flatLeftSpan(i uint64) uint64 {
	d := flatDepth(i)
	return flatOffset(i) << (d + 1)
}

func flatRightSpan(i uint64) uint64 {
	d := flatDepth(i)
	return (flatOffset(i)+1)<<(d+1) - 2
}

// flatFullRoots appends to dst the roots (peaks) of the perfect subtrees that
// cover the first length blocks, left to right.
func flatFullRoots(dst []uint64, length uint64) []uint64 {
	var offset uint64
	for length > 0 {
		factor := uint64(1) << (63 - bits.LeadingZeros64(length)) // largest power of two <= length
		dst = append(dst, offset+factor-1)
		offset += 2 * factor
		length -= factor
	}
	return dst
}

// flatIter walks the tree the way Hypercore's flat-tree iterator does; proof
// generation and verification follow its steps so that the nodes come out in
// the same order as Hypercore's.
type flatIter struct {
	index, offset, factor uint64
}

func newFlatIter(i uint64) *flatIter {
	it := &flatIter{}
	it.seek(i)
	return it
}

func (it *flatIter) seek(i uint64) {
	it.index = i
	if i&1 == 1 {
		it.offset = flatOffset(i)
		it.factor = 2 << flatDepth(i)
	} else {
		it.offset = i / 2
		it.factor = 2
	}
}

// contains reports whether i lies in the subtree rooted at the iterator.
func (it *flatIter) contains(i uint64) bool {
	half := it.factor / 2
	switch {
	case i > it.index:
		return i < it.index+half
	case i < it.index:
		return i+half > it.index
	}
	return true
}

func (it *flatIter) isLeft() bool { return it.offset&1 == 0 }

func (it *flatIter) sibling() uint64 {
	if it.isLeft() {
		it.index += it.factor
		it.offset++
	} else {
		it.index -= it.factor
		it.offset--
	}
	return it.index
}

func (it *flatIter) parent() uint64 {
	if it.offset&1 == 1 {
		it.index -= it.factor / 2
		it.offset = (it.offset - 1) / 2
	} else {
		it.index += it.factor / 2
		it.offset /= 2
	}
	it.factor *= 2
	return it.index
}

func (it *flatIter) leftChild() uint64 {
	if it.factor == 2 {
		return it.index
	}
	it.factor /= 2
	it.index -= it.factor / 2
	it.offset *= 2
	return it.index
}

// nextTree moves to the first leaf after the current subtree.
func (it *flatIter) nextTree() uint64 {
	it.index = it.index + it.factor/2 + 1
	it.offset = it.index / 2
	it.factor = 2
	return it.index
}

// fullRoot grows the iterator (which must sit on a leaf) to the largest
// perfect subtree that starts there and ends before head (= 2*length). It
// returns false when no block is left before head.
func (it *flatIter) fullRoot(head uint64) bool {
	if head <= it.index || it.index&1 == 1 {
		return false
	}
	for head > it.index+it.factor+it.factor/2 {
		it.index += it.factor / 2
		it.factor *= 2
		it.offset /= 2
	}
	return true
}
