package feed

import (
	"testing"
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
