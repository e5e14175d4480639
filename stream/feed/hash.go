package feed

import (
	"encoding/binary"
	"hash"
	"sync"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
	"golang.org/x/crypto/blake2b"
)

// Hashes of Hypercore v10/v11: BLAKE2b-256 with a type byte in front and
// sizes as little-endian uint64.
//
//	leaf     H(0x00 ‖ u64(len) ‖ data)
//	parent   H(0x01 ‖ u64(left.size+right.size) ‖ left.hash ‖ right.hash)
//	tree     H(0x02 ‖ for each root: hash ‖ u64(index) ‖ u64(size))
const (
	typeLeaf   = 0
	typeParent = 1
	typeRoot   = 2
)

// Node is a node of the Merkle tree: its flat-tree index, the number of block
// bytes under it and its hash.
type Node struct {
	Index uint64
	Size  uint64
	Hash  [32]byte
}

// hashState is a pooled BLAKE2b-256 state with its scratch space, so that
// hashing allocates nothing (buffers passed through hash.Hash would escape).
type hashState struct {
	h   hash.Hash
	hdr [48]byte
	out [32]byte
}

var hasherPool = sync.Pool{New: func() any {
	h, _ := blake2b.New256(nil)
	return &hashState{h: h}
}}

func getHasher() *hashState {
	s := hasherPool.Get().(*hashState)
	s.h.Reset()
	return s
}

func (s *hashState) Write(p []byte) { s.h.Write(p) }

func sum(s *hashState) [32]byte {
	s.h.Sum(s.out[:0])
	out := s.out
	hasherPool.Put(s)
	return out
}

// LeafHash is the hash of block data.
func LeafHash(data []byte) [32]byte {
	h := getHasher()
	h.hdr[0] = typeLeaf
	binary.LittleEndian.PutUint64(h.hdr[1:9], uint64(len(data)))
	h.h.Write(h.hdr[:9])
	h.h.Write(data)
	return sum(h)
}

// LeafNode is the tree node of block i.
func LeafNode(i uint64, data []byte) Node {
	return Node{Index: 2 * i, Size: uint64(len(data)), Hash: LeafHash(data)}
}

// ParentNode joins two sibling nodes (in either order).
func ParentNode(a, b Node) Node {
	if a.Index > b.Index {
		a, b = b, a
	}
	size, h := hashParent(a, b)
	return Node{Index: flattree.Parent(a.Index), Size: size, Hash: h}
}

// hashParent hashes left child a and right child b.
func hashParent(a, b Node) (uint64, [32]byte) {
	var buf [9 + 64]byte
	size := a.Size + b.Size
	buf[0] = typeParent
	binary.LittleEndian.PutUint64(buf[1:], size)
	copy(buf[9:], a.Hash[:])
	copy(buf[41:], b.Hash[:])
	return size, blake2b.Sum256(buf[:])
}

// TreeHash hashes the roots (peaks) of a tree, left to right.
func TreeHash(roots []Node) [32]byte {
	h := getHasher()
	h.hdr[0] = typeRoot
	h.h.Write(h.hdr[:1])
	for _, r := range roots {
		copy(h.hdr[:32], r.Hash[:])
		binary.LittleEndian.PutUint64(h.hdr[32:], r.Index)
		binary.LittleEndian.PutUint64(h.hdr[40:], r.Size)
		h.h.Write(h.hdr[:])
	}
	return sum(h)
}

// Namespaces (Hypercore's caps): NS[i] = H(H("hypercore") ‖ byte(i)).
const (
	NSTree = iota
	NSReplicateInitiator
	NSReplicateResponder
	NSManifest
	NSDefaultSigner
	NSDefaultEncryption
	numNamespaces
)

var (
	hypercoreNameHash = blake2b.Sum256([]byte("hypercore"))
	namespaces        = func() (ns [numNamespaces][32]byte) {
		for i := range ns {
			ns[i] = blake2b.Sum256(append(hypercoreNameHash[:], byte(i)))
		}
		return ns
	}()
)

// Namespace returns Hypercore's namespace i (NSTree ... NSDefaultEncryption).
func Namespace(i int) [32]byte { return namespaces[i] }

// NameHash is H("hypercore"), the root of the namespaces.
func NameHash() [32]byte { return hypercoreNameHash }

// DiscoveryKey is the keyed BLAKE2b-256 of "hypercore" under the feed key: the
// name peers use to find a feed without learning its key.
func DiscoveryKey(key [32]byte) [32]byte {
	h, _ := blake2b.New256(key[:])
	h.Write([]byte("hypercore"))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ReplicationCapability proves knowledge of the feed key, bound to one
// encrypted session's handshake hash.
func ReplicationCapability(handshakeHash []byte, initiator bool, key [32]byte) [32]byte {
	h, err := blake2b.New256(handshakeHash)
	if err != nil {
		panic(err) // handshake hashes are 32 or 64 bytes; longer keys are a programming error
	}
	ns := namespaces[NSReplicateResponder]
	if initiator {
		ns = namespaces[NSReplicateInitiator]
	}
	h.Write(ns[:])
	h.Write(key[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}
