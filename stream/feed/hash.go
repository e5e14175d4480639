package feed

import (
	"encoding/binary"
	"hash"
	"sync"

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

var hasherPool = sync.Pool{New: func() any {
	h, _ := blake2b.New256(nil)
	return h
}}

func getHasher() hash.Hash {
	h := hasherPool.Get().(hash.Hash)
	h.Reset()
	return h
}

func sum(h hash.Hash) (out [32]byte) {
	h.Sum(out[:0])
	hasherPool.Put(h)
	return out
}

// LeafHash is the hash of block data.
func LeafHash(data []byte) [32]byte {
	var hdr [9]byte
	hdr[0] = typeLeaf
	binary.LittleEndian.PutUint64(hdr[1:], uint64(len(data)))
	h := getHasher()
	h.Write(hdr[:])
	h.Write(data)
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
	return Node{Index: flatParent(a.Index), Size: size, Hash: h}
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
	h.Write([]byte{typeRoot})
	var b [48]byte
	for _, r := range roots {
		copy(b[:32], r.Hash[:])
		binary.LittleEndian.PutUint64(b[32:], r.Index)
		binary.LittleEndian.PutUint64(b[40:], r.Size)
		h.Write(b[:])
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
