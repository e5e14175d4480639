package feed

import (
	"crypto/ed25519"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
)

// forgeBlock is what a hostile key holder can sign without building anything: a tree of length
// leaves (a power of two) whose nodes are made up, with a proof of its last block.
func forgeBlock(kp KeyPair, length uint64) *Proof {
	i := length - 1
	val := []byte("forged block")
	cur := LeafNode(i, val)
	var sibs []Node
	for cur.Index != length-1 {
		s := Node{Index: flattree.Sibling(cur.Index), Size: 1}
		s.Hash[0] = 7
		sibs = append(sibs, s)
		cur = ParentNode(cur, s)
	}
	sig := ed25519.Sign(kp.Secret, Signable(nil, TreeHash([]Node{cur}), length, 0))
	return &Proof{Block: &BlockProof{Index: i, Value: val, Nodes: sibs}, Upgrade: &UpgradeProof{Start: 0, Length: length, Signature: sig}}
}

// forgeUpgradeFrom10 extends a reader holding the real first 10 blocks (roots 7 and 17) to
// length with made-up siblings, signed by the key.
func forgeUpgradeFrom10(kp KeyPair, r7, r17 Node, length uint64) *Proof {
	cur := r17
	var nodes []Node
	for flattree.Parent(cur.Index) != 15 {
		s := Node{Index: flattree.Sibling(cur.Index), Size: 1}
		s.Hash[0] = 3
		nodes = append(nodes, s)
		cur = ParentNode(cur, s)
	}
	cur = ParentNode(r7, cur)
	for cur.Index != length-1 {
		s := Node{Index: flattree.Sibling(cur.Index), Size: 1}
		s.Hash[0] = 4
		nodes = append(nodes, s)
		cur = ParentNode(cur, s)
	}
	sig := ed25519.Sign(kp.Secret, Signable(nil, TreeHash([]Node{cur}), length, 0))
	return &Proof{Upgrade: &UpgradeProof{Start: 10, Length: length - 10, Nodes: nodes, Signature: sig}}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestSignedJumpFarAhead: a seller holding the key can sign a tree of any length and prove a
// block at its end. A reader must not pay memory or storage for the blocks before it (the
// stored-blocks bitset was dense: 512 MiB at 2^32, a crash near 2^62 on every later open), must
// keep what it holds readable across Close and Open, and refuses a length past maxLength before
// storing anything.
func TestSignedJumpFarAhead(t *testing.T) {
	w, kp := newWriter(t, Compat)
	for i := range 10 {
		mustAppend(t, w, block(i, 1024))
	}
	roots, err := w.Proof(Request{Upgrade: &UpgradeRequest{Start: 0, Length: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var r7, r17 Node
	for _, n := range roots.Upgrade.Nodes {
		switch n.Index {
		case 7:
			r7 = n
		case 17:
			r17 = n
		}
	}

	cases := []struct {
		name   string
		real10 bool // the reader first holds the real blocks 0-9
		proof  func() *Proof
		want   uint64 // the reader's length after; 0: refused
	}{
		{"a block at the last index", false, func() *Proof { return forgeBlock(kp, maxLength) }, maxLength},
		{"an upgrade from 10 to the longest length", true, func() *Proof { return forgeUpgradeFrom10(kp, r7, r17, maxLength) }, maxLength},
		{"a block past the longest length", false, func() *Proof { return forgeBlock(kp, 2*maxLength) }, 0},
		{"an upgrade past the longest length", true, func() *Proof { return forgeUpgradeFrom10(kp, r7, r17, 2*maxLength) }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReader(t, w)
			if c.real10 {
				for i := range uint64(10) {
					replicate(t, w, r, i)
				}
			}
			before := heapInUse()
			err := r.Verify(c.proof())
			grew := int64(heapInUse()) - int64(before)
			if c.want == 0 {
				if !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("verify: %v, want ErrInvalidProof", err)
				}
			} else if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if grew > 4<<20 {
				t.Errorf("the heap grew by %d MiB", grew>>20)
			}
			want := c.want
			if want == 0 && c.real10 {
				want = 10
			}
			check := func(f *Feed, when string) {
				t.Helper()
				if f.Length() != want {
					t.Fatalf("%s: length %d, want %d", when, f.Length(), want)
				}
				if c.real10 {
					if got, err := f.Get(9); err != nil || got[0] != 9 {
						t.Fatalf("%s: block 9: %v", when, err)
					}
				}
				if c.want != 0 && !c.real10 && !f.Has(maxLength-1) {
					t.Fatalf("%s: the proved block is not stored", when)
				}
				var seen []uint64
				f.Bitfield(0, f.Length(), func(i uint64) bool { seen = append(seen, i); return true })
				if n := uint64(len(seen)); n != f.Stored() {
					t.Fatalf("%s: Bitfield saw %d blocks, Stored says %d", when, n, f.Stored())
				}
			}
			check(r, "after verifying")
			dir := r.Dir()
			if err := r.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			before = heapInUse()
			re, err := Open(dir, Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer re.Close()
			if grew := int64(heapInUse()) - int64(before); grew > 4<<20 {
				t.Errorf("reopening grew the heap by %d MiB", grew>>20)
			}
			check(re, "after reopening")
		})
	}
}

// TestAppendStopsAtMaxLength: the writer refuses to pass maxLength rather than sign a tree no
// reader accepts.
func TestAppendStopsAtMaxLength(t *testing.T) {
	w, _ := newWriter(t, Compat)
	mustAppend(t, w, block(0, 8))
	w.mu.Lock()
	w.t.length = maxLength - 1 // as if it had appended that many (the next append is refused before use)
	w.mu.Unlock()
	if _, err := w.Append(block(1, 8), block(2, 8)); !errors.Is(err, ErrFull) {
		t.Fatalf("append past maxLength: %v", err)
	}
	w.mu.Lock()
	w.t.length = 1
	w.mu.Unlock()
}

// TestOpenRefusesRecordPastMaxLength: a log written by a version without the bound can hold a
// record past maxLength (a hostile upgrade it stored). Opening reports the damage and does not
// apply it (the old code crashed here, on every open).
func TestOpenRefusesRecordPastMaxLength(t *testing.T) {
	for _, c := range []struct {
		name string
		rec  record
	}{
		{"length", record{upgraded: true, length: 1 << 62, signature: make([]byte, 64)}},
		{"block", record{blocks: []blockRef{{index: 1<<62 - 1, entry: blockEntry{length: 1}}}}},
		{"node", record{nodes: []Node{{Index: 1<<63 - 1}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, _ := newWriter(t, Compat)
			r := newReader(t, w)
			mustAppend(t, w, block(0, 8))
			replicate(t, w, r, 0)
			dir := r.Dir()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			// The record goes after the checkpoint, in the log Close left empty.
			fs, err := openFiles(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := fs.readHeader()
			if err != nil || cp == nil {
				t.Fatalf("header: %v", err)
			}
			rec := c.rec
			rec.seq = cp.seq + 1
			if _, err := fs.appendLog(rec.encode(nil), nil); err != nil {
				t.Fatal(err)
			}
			fs.close()
			_, err = Open(dir, Options{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "past the longest feed") {
				t.Fatalf("open: %v", err)
			}
		})
	}
}
