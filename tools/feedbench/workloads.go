package main

import (
	"crypto/ed25519"
	"encoding/binary"
	"os"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

type workloads struct {
	tmp   string
	quick bool
}

// appendPlan is the reference's: sizes and counts of workload (a).
func (w *workloads) appendPlan() [][2]int {
	if w.quick {
		return [][2]int{{1024, 2000}, {16384, 1000}, {65536, 500}}
	}
	return [][2]int{{1024, 20000}, {16384, 6400}, {65536, 3200}}
}

// makeBlocks follows the reference: block i is size bytes of i&0xff, with i
// little-endian in bytes 0..3.
func makeBlocks(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(i)
		}
		if size >= 4 {
			binary.LittleEndian.PutUint32(b, uint32(i))
		}
		out[i] = b
	}
	return out
}

func seed() *feed.KeyPair {
	kp, _ := feed.KeyPairFromSeed(make([]byte, 32))
	return &kp
}

func (w *workloads) dir() string {
	d, err := os.MkdirTemp(w.tmp, "feedbench")
	if err != nil {
		panic(err)
	}
	return d
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// appendRun: a fresh writer appends one zero block (untimed), then n blocks
// one call per block or batch per call. The writer uses the manifest mode, as
// the reference's default v11 writer does.
func (w *workloads) appendRun(size, n, batch int, fsync bool) map[string]float64 {
	dir := w.dir()
	defer os.RemoveAll(dir)
	dur := feed.SyncBeforeShare
	if fsync {
		dur = feed.SyncEveryAppend
	}
	f, err := feed.Create(dir, feed.Options{KeyPair: seed(), Mode: feed.Manifest, Durability: dur})
	must(err)
	defer f.Close()
	_, err = f.Append(make([]byte, size))
	must(err)
	blocks := makeBlocks(n, size)
	t := time.Now()
	for i := 0; i < n; i += batch {
		_, err := f.Append(blocks[i:min(n, i+batch)]...)
		must(err)
	}
	s := time.Since(t).Seconds()
	return map[string]float64{"blocksPerSec": float64(n) / s, "MBps": float64(n*size) / 1e6 / s, "usPerBlock": s * 1e6 / float64(n)}
}

// proofRun: a fresh reader gets and verifies every block of an n-block feed
// in order, in process, through the Feed API with storage on both sides. It
// reports that cost next to its physical floor measured right after: one leaf
// hash per block, the parent hashes the proofs' nodes make verification
// compute, and one Ed25519 verify per upgrade. (The tree alone, without
// storage, against the same floor: go test -bench ProofTree ./stream/feed.)
func (w *workloads) proofRun(n, size int) map[string]float64 {
	blocks := makeBlocks(n, size)
	dir := w.dir()
	defer os.RemoveAll(dir)
	wf, err := feed.Create(dir+"/w", feed.Options{KeyPair: seed()})
	must(err)
	defer wf.Close()
	for i := 0; i < n; i += 256 {
		_, err := wf.Append(blocks[i:min(n, i+256)]...)
		must(err)
	}
	must(wf.Sync())
	key := wf.Key()
	rf, err := feed.Create(dir+"/r", feed.Options{Key: &key})
	must(err)
	defer rf.Close()
	var parents, upgrades int
	t := time.Now()
	for i := uint64(0); i < uint64(n); i++ {
		req := feed.Request{Block: &feed.BlockRequest{Index: i, Nodes: rf.MissingNodes(i)}}
		if i == 0 {
			req.Upgrade = &feed.UpgradeRequest{Start: 0, Length: uint64(n)}
			req.Block.Nodes = 0
		}
		p, err := wf.Proof(req)
		must(err)
		must(rf.Verify(p))
		parents += len(p.Block.Nodes)
		if p.Upgrade != nil {
			upgrades++
			parents += len(p.Upgrade.Nodes) + len(p.Upgrade.AdditionalNodes)
		}
	}
	us := float64(time.Since(t).Nanoseconds()) / 1e3 / float64(n)
	fl := floor(blocks, parents, upgrades)
	return map[string]float64{"usPerBlock": us, "floorUsPerBlock": fl, "overFloor": us / fl}
}

// floor times the physical floor of verifying blocks: one leaf hash each, the
// given number of parent hashes and signature verifications. It returns
// microseconds per block.
func floor(blocks [][]byte, parents, upgrades int) float64 {
	kp, _ := feed.KeyPairFromSeed(make([]byte, 32))
	msg := feed.Signable(nil, [32]byte{}, 1, 0)
	sig := ed25519.Sign(kp.Secret, msg)
	a, b := feed.Node{Index: 0, Size: 1}, feed.Node{Index: 2, Size: 1}
	t := time.Now()
	for _, d := range blocks {
		feed.LeafHash(d)
	}
	for i := 0; i < parents; i++ {
		feed.ParentNode(a, b)
	}
	for i := 0; i < upgrades; i++ {
		ed25519.Verify(kp.Public, msg, sig)
	}
	return float64(time.Since(t).Nanoseconds()) / 1e3 / float64(len(blocks))
}

// lateJoinRun: a writer holds n blocks of 1 KiB (256 per call); a fresh
// reader learns the signed length and then gets the last block, verified.
func (w *workloads) lateJoinRun(n int) map[string]float64 {
	dir := w.dir()
	defer os.RemoveAll(dir)
	wf, err := feed.Create(dir+"/w", feed.Options{KeyPair: seed(), Mode: feed.Manifest})
	must(err)
	defer wf.Close()
	blocks := makeBlocks(256, 1024)
	for i := 0; i < n; i += 256 {
		_, err := wf.Append(blocks[:min(256, n-i)]...)
		must(err)
	}
	must(wf.Sync()) // setup: the bulk fill reaches the disk before the timed part, as it would long before a viewer joins
	key := wf.Key()
	t := time.Now()
	rf, err := feed.Create(dir+"/r", feed.Options{Key: &key})
	must(err)
	defer rf.Close()
	p, err := wf.Proof(feed.Request{Upgrade: &feed.UpgradeRequest{Start: 0, Length: uint64(n)}, Manifest: true})
	must(err)
	must(rf.Verify(p))
	up := time.Since(t)
	p, err = wf.Proof(feed.Request{Block: &feed.BlockRequest{Index: uint64(n - 1), Nodes: rf.MissingNodes(uint64(n - 1))}})
	must(err)
	must(rf.Verify(p))
	_, err = rf.Get(uint64(n - 1))
	must(err)
	total := time.Since(t)
	return map[string]float64{"totalMs": ms(total), "upgradeMs": ms(up), "getMs": ms(total - up), "blocksStored": float64(rf.Stored())}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func leafHash(b []byte) { feed.LeafHash(b) }

var pa, pb = feed.Node{Index: 0, Size: 10, Hash: [32]byte{1}}, feed.Node{Index: 2, Size: 10, Hash: [32]byte{2}}

func parentHash() { feed.ParentNode(pa, pb) }
