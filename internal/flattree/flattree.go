// Package flattree is Hypercore's flat-tree indexing, the one home of the arithmetic that
// the feed (proofs, verification) and the replicator (how many nodes a proof carries) share.
// The Merkle tree is laid out in order in one array: even indexes are leaves (block i is
// node 2i), odd indexes are parents. All functions take and return flat-tree indexes.
package flattree

import "math/bits"

// Depth is the number of trailing one bits of i.
func Depth(i uint64) uint { return uint(bits.TrailingZeros64(^i)) }

// Offset is the position of i among the nodes of its depth.
func Offset(i uint64) uint64 { return i >> (Depth(i) + 1) }

// Index is the index of the node at depth d and offset o.
func Index(d uint, o uint64) uint64 { return (2*o+1)<<d - 1 }

// Parent is the index of i's parent.
func Parent(i uint64) uint64 {
	d := Depth(i)
	return Index(d+1, Offset(i)>>1)
}

// Sibling is the index of the other child of i's parent.
func Sibling(i uint64) uint64 {
	d := Depth(i)
	return Index(d, Offset(i)^1)
}

// LeftSpan and RightSpan are the first and last leaf under i.
func LeftSpan(i uint64) uint64 {
	d := Depth(i)
	return Offset(i) << (d + 1)
}

func RightSpan(i uint64) uint64 {
	d := Depth(i)
	return (Offset(i)+1)<<(d+1) - 2
}

// FullRoots appends to dst the roots (peaks) of the perfect subtrees that
// cover the first length blocks, left to right.
func FullRoots(dst []uint64, length uint64) []uint64 {
	var offset uint64
	for length > 0 {
		factor := uint64(1) << (63 - bits.LeadingZeros64(length)) // largest power of two <= length
		dst = append(dst, offset+factor-1)
		offset += 2 * factor
		length -= factor
	}
	return dst
}

// Iterator walks the tree the way Hypercore's flat-tree iterator does; proof
// generation and verification follow its steps so that the nodes come out in
// the same order as Hypercore's.
type Iterator struct {
	// Index is the node it is on, Offset that node's Offset, Factor twice the leaves under it.
	Index, Offset, Factor uint64
}

// NewIterator is an iterator at i.
func NewIterator(i uint64) *Iterator {
	it := &Iterator{}
	it.Seek(i)
	return it
}

// Seek moves the iterator to i.
func (it *Iterator) Seek(i uint64) {
	it.Index = i
	if i&1 == 1 {
		it.Offset = Offset(i)
		it.Factor = 2 << Depth(i)
	} else {
		it.Offset = i / 2
		it.Factor = 2
	}
}

// Contains reports whether i lies in the subtree rooted at the iterator.
func (it *Iterator) Contains(i uint64) bool {
	half := it.Factor / 2
	switch {
	case i > it.Index:
		return i < it.Index+half
	case i < it.Index:
		return i+half > it.Index
	}
	return true
}

// IsLeft reports whether the iterator is on a left child.
func (it *Iterator) IsLeft() bool { return it.Offset&1 == 0 }

// Sibling moves to the sibling and returns its index.
func (it *Iterator) Sibling() uint64 {
	if it.IsLeft() {
		it.Index += it.Factor
		it.Offset++
	} else {
		it.Index -= it.Factor
		it.Offset--
	}
	return it.Index
}

// Parent moves to the parent and returns its index.
func (it *Iterator) Parent() uint64 {
	if it.Offset&1 == 1 {
		it.Index -= it.Factor / 2
		it.Offset = (it.Offset - 1) / 2
	} else {
		it.Index += it.Factor / 2
		it.Offset /= 2
	}
	it.Factor *= 2
	return it.Index
}

// LeftChild moves to the left child (a leaf stays) and returns its index.
func (it *Iterator) LeftChild() uint64 {
	if it.Factor == 2 {
		return it.Index
	}
	it.Factor /= 2
	it.Index -= it.Factor / 2
	it.Offset *= 2
	return it.Index
}

// NextTree moves to the first leaf after the current subtree.
func (it *Iterator) NextTree() uint64 {
	it.Index = it.Index + it.Factor/2 + 1
	it.Offset = it.Index / 2
	it.Factor = 2
	return it.Index
}

// FullRoot grows the iterator (which must sit on a leaf) to the largest
// perfect subtree that starts there and ends before head (= 2*length). It
// returns false when no block is left before head.
func (it *Iterator) FullRoot(head uint64) bool {
	if head <= it.Index || it.Index&1 == 1 {
		return false
	}
	for head > it.Index+it.Factor+it.Factor/2 {
		it.Index += it.Factor / 2
		it.Factor *= 2
		it.Offset /= 2
	}
	return true
}

// LevelsToRoot is how many levels block i's path climbs to the root (peak) that covers it in
// a tree of length n. A proof with that many nodes verifies against the roots alone, whatever
// else the reader stores.
func LevelsToRoot(i, n uint64) uint64 {
	idx := 2 * i
	var k uint64
	for {
		p := Parent(idx)
		if RightSpan(p) >= 2*n {
			return k
		}
		idx = p
		k++
	}
}
