package feed

import (
	"crypto/ed25519"
	"time"
)

// BenchTree exposes the in-memory tree to the benchmark program: proof
// generation and verification without storage, so that their cost can be set
// next to the physical floor of the hashing and signature checks.
type BenchTree struct {
	w *tree
	s *signer
}

// NewBenchTree is a writer tree signing with kp.
func NewBenchTree(kp *KeyPair) *BenchTree {
	s, err := newSigner(*kp, Compat)
	if err != nil {
		panic(err)
	}
	return &BenchTree{w: &tree{}, s: s}
}

// Append adds blocks under one signature.
func (b *BenchTree) Append(blocks [][]byte) {
	leaves := make([]Node, len(blocks))
	for i, d := range blocks {
		leaves[i] = LeafNode(b.w.length+uint64(i), d)
	}
	for _, n := range b.w.appendLeaves(nil, leaves) {
		b.w.nodes.put(n)
	}
	b.w.signature = b.s.sign(b.w.hash(), b.w.length, b.w.fork)
}

// DownloadAll has a fresh in-memory reader fetch and verify every block in
// order, as a reader that asks for missingNodes does. It returns the parent
// hashes verification computed and the number of signature checks.
func (b *BenchTree) DownloadAll() (parents, upgrades int) {
	r := &tree{}
	blocks := make([][]byte, 0)
	_ = blocks
	for i := uint64(0); i < b.w.length; i++ {
		req := Request{Block: &BlockRequest{Index: i, Nodes: r.missingNodes(i)}}
		if i == 0 {
			req.Upgrade = &UpgradeRequest{Start: 0, Length: b.w.length}
			req.Block.Nodes = 0
		}
		p, err := b.w.proof(req)
		if err != nil {
			panic(err)
		}
		p.Block.Value = benchValue(b.w, i)
		res, err := r.verify(p, b.s.verifier)
		if err != nil {
			panic(err)
		}
		parents += len(p.Block.Nodes)
		if res.upgraded {
			upgrades++
			parents += len(res.nodes) - 1 - 2*len(p.Block.Nodes) // parents made growing the roots
			r.roots, r.length, r.byteLength, r.fork, r.signature = res.roots, res.length, res.byteLength, res.fork, res.signature
		}
		for _, n := range res.nodes {
			r.nodes.put(n)
		}
	}
	return parents, upgrades
}

// benchValues holds the blocks of the bench tree, set by SetValues.
var benchValues [][]byte

// SetBenchValues gives DownloadAll the block contents (the tree keeps only hashes).
func SetBenchValues(v [][]byte) { benchValues = v }

func benchValue(_ *tree, i uint64) []byte { return benchValues[i] }

// Floor times the physical floor of verifying blocks: one leaf hash each, the
// given number of parent hashes and signature verifications. It returns
// microseconds per block.
func Floor(blocks [][]byte, parents, upgrades int) float64 {
	kp, _ := KeyPairFromSeed(make([]byte, 32))
	msg := Signable(nil, [32]byte{}, 1, 0)
	sig := ed25519.Sign(kp.Secret, msg)
	a, b := Node{Index: 0, Size: 1}, Node{Index: 2, Size: 1}
	t := time.Now()
	for _, d := range blocks {
		LeafHash(d)
	}
	for i := 0; i < parents; i++ {
		ParentNode(a, b)
	}
	for i := 0; i < upgrades; i++ {
		ed25519.Verify(kp.Public, msg, sig)
	}
	return float64(time.Since(t).Nanoseconds()) / 1e3 / float64(len(blocks))
}
