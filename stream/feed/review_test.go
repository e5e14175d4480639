package feed

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
)

// Regression tests from the review of this package.

// verifyWithin fails the test if Verify does not return within a few seconds.
func verifyWithin(t *testing.T, r *Feed, p *Proof) error {
	t.Helper()
	b, _ := p.MarshalBinary()
	dp, err := DecodeProof(b, 0) // a peer can send it
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- r.Verify(dp) }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Verify hangs on a forged upgrade proof")
		return nil
	}
}

func TestForgedUpgradesDoNotHang(t *testing.T) {
	w, _ := newWriter(t, Compat)
	r := newReader(t, w)
	// Additional nodes that overflow the iterator's factor.
	p := &Proof{Upgrade: &UpgradeProof{Start: 0, Length: 1 << 62,
		Nodes:           []Node{{Index: 1<<62 - 1}},
		AdditionalNodes: []Node{{Index: 1<<62 - 1 + 1<<63}, {Index: 5}},
		Signature:       make([]byte, 64)}}
	if err := verifyWithin(t, r, p); err == nil {
		t.Fatal("forged upgrade accepted")
	}
	// A chain of 63 merging siblings from a one-block upgrade.
	var extra []Node
	it := flattree.NewIterator(0)
	for k := 0; k < 63; k++ {
		extra = append(extra, Node{Index: it.Sibling()})
		it.Sibling()
		it.Parent()
	}
	extra = append(extra, Node{Index: 1})
	p = &Proof{Upgrade: &UpgradeProof{Start: 0, Length: 1, Nodes: []Node{{Index: 0}}, AdditionalNodes: extra, Signature: make([]byte, 64)}}
	if err := verifyWithin(t, r, p); err == nil {
		t.Fatal("forged upgrade accepted")
	}
	if r.Length() != 0 {
		t.Fatal("reader changed")
	}
}

func TestOneOwnerPerFeed(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 3)
	a, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := Open(dir, Options{KeyPair: &kp}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second reader handle: %v", err)
	}
	// A read-only look (the command line's info) while the owner appends
	// changes nothing on disk.
	for i := 0; i < 3; i++ {
		mustAppend(t, a, block(i, 20))
	}
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ro.Length() != 3 {
		t.Fatalf("read-only view has length %d", ro.Length())
	}
	if _, err := ro.Append([]byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only append: %v", err)
	}
	ro.Close()
	for i := 3; i < 6; i++ {
		mustAppend(t, a, block(i, 20))
	}
	if _, err := a.Proof(Request{Upgrade: &UpgradeRequest{Length: 6}}); err != nil {
		t.Fatal(err)
	}
	a.crash()
	g, err := Open(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Length() != 6 {
		t.Fatalf("length %d after reopen, but 6 appends returned", g.Length())
	}
}

func TestReplayedRecordsAreSyncedAgain(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 6)
	f, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, f, block(0, 10))
	mustAppend(t, f, block(1, 10))
	f.crash()
	g, err := Open(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.mu.Lock()
	seq, synced := g.seq, g.syncedSeq
	g.mu.Unlock()
	if synced >= seq {
		t.Fatalf("replayed records %d..%d taken as synced", synced, seq)
	}
	if _, err := g.Proof(Request{Upgrade: &UpgradeRequest{Length: 2}}); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.syncedSeq < seq {
		t.Fatal("a signature over replayed records left without a sync")
	}
}

func TestPowerLossDataBehindLog(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 5)
	f, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		mustAppend(t, f, block(i, 100))
	}
	if _, err := f.Proof(Request{Upgrade: &UpgradeRequest{Length: 4}}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, f, block(4, 100)) // never synced
	f.crash()
	// The log page reached the disk, the data page did not.
	if err := os.Truncate(filepath.Join(dir, "data"), 400); err != nil {
		t.Fatal(err)
	}
	g, err := Open(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Length() != 4 {
		t.Fatalf("length %d: the record whose block was lost was not rolled back", g.Length())
	}
	if _, err := g.VerifyAll(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, g, []byte("a new block 4"))
	if b, err := g.Get(4); err != nil || !bytes.Equal(b, []byte("a new block 4")) {
		t.Fatalf("append after rollback: %q %v", b, err)
	}
}

// TestOpenCostFollowsWhatIsStored: opening a sparse reader of a long feed, or
// the long feed itself, reads and keeps memory for what is used, not for the
// whole tree.
func TestOpenCostFollowsWhatIsStored(t *testing.T) {
	const n = 300_000
	kp := testKeyPair(t, 8)
	w, err := Create(t.TempDir(), Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([][]byte, 0, 4096)
	for i := 0; i < n; i++ {
		batch = append(batch, []byte{byte(i), byte(i >> 8), byte(i >> 16)})
		if len(batch) == cap(batch) || i == n-1 {
			mustAppend(t, w, batch...)
			batch = batch[:0]
		}
	}
	key := w.Key()
	rdir := t.TempDir()
	r, err := Create(rdir, Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.Proof(Request{Block: &BlockRequest{Index: n - 1}, Upgrade: &UpgradeRequest{Length: n}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(p); err != nil {
		t.Fatal(err)
	}
	r.Close()
	wdir := w.Dir()
	w.Close()
	for _, c := range []struct {
		name string
		dir  string
		o    Options
	}{{"sparse reader", rdir, Options{Key: &key}}, {"writer", wdir, Options{KeyPair: &kp}}} {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		f, err := Open(c.dir, c.o)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		alloc := float64(m1.TotalAlloc-m0.TotalAlloc) / (1 << 20)
		held := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / (1 << 20)
		t.Logf("%s of %d blocks: Open allocated %.1f MiB, holds %.1f MiB", c.name, n, alloc, held)
		if alloc > 16 || held > 8 {
			t.Errorf("%s: Open allocated %.1f MiB and holds %.1f MiB for a %d-block feed", c.name, alloc, held, n)
		}
		if c.name == "writer" {
			// It still serves old blocks with proofs.
			if _, err := f.Proof(Request{Block: &BlockRequest{Index: 12345}, Upgrade: &UpgradeRequest{Length: n}}); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
}

// A reader's meta is not synced; if power loss tears it, Create makes the
// reader again instead of refusing. A writer's is never replaced.
func TestTornReaderMetaIsRecreated(t *testing.T) {
	w, kp := newWriter(t, Compat)
	key := w.Key()
	dir := t.TempDir()
	r, err := Create(dir, Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	os.WriteFile(filepath.Join(dir, "meta"), nil, 0o600) // torn by power loss
	if _, err := Open(dir, Options{Key: &key}); err == nil {
		t.Fatal("opened a reader with a torn meta")
	}
	r, err = Create(dir, Options{Key: &key})
	if err != nil {
		t.Fatalf("recreate reader: %v", err)
	}
	r.Close()
	if _, err := Create(w.Dir(), Options{KeyPair: &kp}); !errors.Is(err, ErrExists) {
		t.Fatalf("create over a writer: %v", err)
	}
}

// Second review, ForkOnPowerLoss: a writer of another durability that takes over on the same
// boot from a killed ForkOnPowerLoss writer syncs what that writer shared before it records
// itself, so a later power loss cannot take shared appends without a new fork.
func TestSameBootTakeoverThenPowerLoss(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 11)
	a, err := Create(dir, Options{KeyPair: &kp, Durability: ForkOnPowerLoss, BootID: "boot-a"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		mustAppend(t, a, block(i, 30))
	}
	if _, err := a.Proof(Request{Block: &BlockRequest{Index: 6}, Upgrade: &UpgradeRequest{Length: 7}}); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	synced := a.syncedLog
	a.mu.Unlock()
	a.crash()                                                    // kill -9 on boot-a
	b, err := Open(dir, Options{KeyPair: &kp, BootID: "boot-a"}) // SyncBeforeShare, same boot
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	synced = max(synced, b.syncedLog) // what B synced survives
	b.mu.Unlock()
	b.crash()
	if err := os.Truncate(dir+"/oplog", synced); err != nil { // power loss
		t.Fatal(err)
	}
	c, err := Open(dir, Options{KeyPair: &kp, Durability: ForkOnPowerLoss, BootID: "boot-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := c.Head(); h.Length < 7 && h.Fork == 0 {
		t.Fatalf("lengths %d..7 were signed and shared on fork 0, lost, and fork 0 would sign them again", h.Length+1)
	}
}

// The background sync covers every append made before it runs, even when something else
// synced the one that armed it.
func TestBackgroundSyncCoversLaterAppends(t *testing.T) {
	kp := testKeyPair(t, 12)
	f, err := Create(t.TempDir(), Options{KeyPair: &kp, Durability: ForkOnPowerLoss})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mustAppend(t, f, block(0, 100)) // arms the timer
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, f, block(1, 100)) // no new timer: one is pending
	deadline := time.Now().Add(10 * BackgroundSync)
	for {
		f.mu.Lock()
		synced, seq := f.syncedSeq, f.seq
		f.mu.Unlock()
		if synced >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not synced (synced %d < seq %d)", synced, seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CheckFork confirms a writer's new fork from an upgrade proof alone, storing nothing, and
// refuses anything else.
func TestCheckFork(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 13)
	w, err := Create(dir, Options{KeyPair: &kp, Durability: ForkOnPowerLoss, BootID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustAppend(t, w, block(i, 40))
	}
	key := w.Key()
	r, err := Create(t.TempDir(), Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	replicate(t, w, r, 4)
	w.crash()
	w, err = Open(dir, Options{KeyPair: &kp, Durability: ForkOnPowerLoss, BootID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mustAppend(t, w, []byte("fork 1"))
	p, err := w.Proof(Request{Fork: 1, Upgrade: &UpgradeRequest{Start: 0, Length: w.Length()}, Manifest: true})
	if err != nil {
		t.Fatal(err)
	}
	fork, length, err := r.CheckFork(p)
	if err != nil || fork != 1 || length != w.Length() {
		t.Fatalf("CheckFork: fork %d length %d, %v", fork, length, err)
	}
	if h := r.Head(); h.Fork != 0 || h.Length != 5 {
		t.Fatalf("CheckFork changed the reader: %+v", h)
	}
	bad := *p
	up := *p.Upgrade
	up.Signature = append([]byte(nil), up.Signature...)
	up.Signature[0] ^= 1
	bad.Upgrade = &up
	if _, _, err := r.CheckFork(&bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a forged fork: %v", err)
	}
	claimed := *p
	claimed.Fork = 9 // the signature covers the fork
	if _, _, err := r.CheckFork(&claimed); err == nil {
		t.Fatal("a fork number the signature does not cover was accepted")
	}
	withBlock, err := w.Proof(Request{Block: &BlockRequest{Index: 0}, Upgrade: &UpgradeRequest{Start: 0, Length: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.CheckFork(withBlock); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("a proof with a block: %v", err)
	}
}

// An encrypted SyncBeforeShare feed does not let a block's ciphertext out before the disk
// has it (a power loss could otherwise have it encrypt another block under the same nonce).
func TestEncryptedPendingProofWaitsForTheDisk(t *testing.T) {
	kp := testKeyPair(t, 14)
	var pk [32]byte
	copy(pk[:], kp.Public)
	enc, err := NewXChaCha20Encryption(pk, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dur  Durability
		want bool // durable as soon as ProofPending returns
	}{{SyncBeforeShare, true}, {ForkOnPowerLoss, true}} {
		f, err := Create(t.TempDir(), Options{KeyPair: &kp, Encryption: enc, Durability: tc.dur})
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, f, block(0, 100))
		pp, err := f.ProofPending(Request{Block: &BlockRequest{Index: 0}, Upgrade: &UpgradeRequest{Length: 1}})
		if err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		synced := f.syncedSeq >= f.seq
		f.mu.Unlock()
		if pp.Durable() != tc.want || (tc.dur == SyncBeforeShare && !synced) {
			t.Fatalf("%v: durable %v, synced %v", tc.dur, pp.Durable(), synced)
		}
		f.Close()
	}
}
