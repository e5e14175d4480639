package feed

import (
	"crypto/ed25519"
	"encoding/binary"
	"testing"
	"time"
)

// Go benchmarks of the feed's hot paths; `make bench` runs the fuller
// comparison against the reference (feedbench).

func benchAppend(b *testing.B, size, batch int, dur Durability) {
	kp := testKeyPair(b, 1)
	f, err := Create(b.TempDir(), Options{KeyPair: &kp, Durability: dur})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	blocks := make([][]byte, batch)
	for i := range blocks {
		blocks[i] = block(i, size)
	}
	b.SetBytes(int64(size * batch))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Append(blocks...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend1KiB(b *testing.B)               { benchAppend(b, 1024, 1, SyncBeforeShare) }
func BenchmarkAppend1KiBBatch100(b *testing.B)       { benchAppend(b, 1024, 100, SyncBeforeShare) }
func BenchmarkAppend16KiB(b *testing.B)              { benchAppend(b, 16384, 1, SyncBeforeShare) }
func BenchmarkAppend16KiBBatch100(b *testing.B)      { benchAppend(b, 16384, 100, SyncBeforeShare) }
func BenchmarkAppend64KiB(b *testing.B)              { benchAppend(b, 65536, 1, SyncBeforeShare) }
func BenchmarkAppend64KiBBatch100(b *testing.B)      { benchAppend(b, 65536, 100, SyncBeforeShare) }
func BenchmarkAppend1KiBFsync(b *testing.B)          { benchAppend(b, 1024, 1, SyncEveryAppend) }
func BenchmarkAppend64KiBBatch100Fsync(b *testing.B) { benchAppend(b, 65536, 100, SyncEveryAppend) }

// BenchmarkLiveTailProof is the per-block cost on the live path: append one
// block, prove it to a reader holding the previous peaks, verify and store it.
func BenchmarkLiveTailProof(b *testing.B) {
	w, _ := newWriter(b, Compat)
	r := newReader(b, w)
	data := block(1, 16384)
	mustAppend(b, w, data)
	replicate(b, w, r, 0)
	b.SetBytes(16384)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := mustAppend(b, w, data)
		p, err := w.Proof(Request{Block: &BlockRequest{Index: h.Length - 1}, Upgrade: &UpgradeRequest{Start: h.Length - 1, Length: 1}})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Verify(p); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTree is the in-memory tree without storage: proof generation and
// verification alone, so that their cost can be set next to the physical floor
// of the hashing and signature checks (BenchmarkProofTree).
type benchTree struct {
	w      *tree
	s      *signer
	values [][]byte // the blocks' contents (the tree keeps only hashes)
}

// newBenchTree is a writer tree signing with kp.
func newBenchTree(kp *KeyPair) *benchTree {
	s, err := newSigner(*kp, Compat)
	if err != nil {
		panic(err)
	}
	return &benchTree{w: &tree{}, s: s}
}

// Append adds blocks under one signature.
func (b *benchTree) Append(blocks [][]byte) {
	b.values = append(b.values, blocks...)
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
func (b *benchTree) DownloadAll() (parents, upgrades int) {
	r := &tree{}
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
		p.Block.Value = b.values[i]
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

// floor times the physical floor of verifying blocks: one leaf hash each, the
// given number of parent hashes and signature verifications. It returns
// microseconds per block.
func floor(blocks [][]byte, parents, upgrades int) float64 {
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

// BenchmarkProofTree is proof generation and verification alone (no storage) for a reader
// that downloads a 10000 x 1 KiB feed in order, set next to its physical floor: one leaf
// hash per block, the parent hashes verification computed and one Ed25519 verify per
// upgrade. It reports us/block, floor-us/block and x-over-floor (goal <= 1.5).
func BenchmarkProofTree(b *testing.B) {
	const n = 10000
	kp := testKeyPair(b, 1)
	blocks := make([][]byte, n)
	for i := range blocks {
		blocks[i] = make([]byte, 1024)
		for j := range blocks[i] {
			blocks[i][j] = byte(i)
		}
		binary.LittleEndian.PutUint32(blocks[i], uint32(i))
	}
	tr := newBenchTree(&kp)
	for i := 0; i < n; i += 256 {
		tr.Append(blocks[i:min(n, i+256)])
	}
	b.ResetTimer()
	var ours, fl time.Duration
	for i := 0; i < b.N; i++ {
		// Ours and the floor alternate, so that a burst of load hits both alike.
		t := time.Now()
		parents, upgrades := tr.DownloadAll()
		ours += time.Since(t)
		fl += time.Duration(floor(blocks, parents, upgrades) * float64(n) * 1e3)
	}
	us := float64(ours.Nanoseconds()) / 1e3 / float64(b.N*n)
	f := float64(fl.Nanoseconds()) / 1e3 / float64(b.N*n)
	b.ReportMetric(us, "us/block")
	b.ReportMetric(f, "floor-us/block")
	b.ReportMetric(us/f, "x-over-floor")
}
