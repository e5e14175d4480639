package feed

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/internal/faults"
)

// failSyncs swaps one of f's files ("data" or "log") for a closed handle, so that its next
// sync fails, as a disk whose writeback failed does once; the returned restore puts the real
// file back, whose syncs then succeed again, as Linux's do once the error has been reported
// (the lost pages are marked clean).
func failSyncs(t *testing.T, f *Feed, which string) (restore func()) {
	t.Helper()
	name := map[string]string{"data": "data", "log": "oplog"}[which]
	closed, err := os.Open(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	slot := map[string]**os.File{"data": &f.fs.data, "log": &f.fs.log}[which]
	f.mu.Lock()
	orig := *slot
	*slot = closed
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		*slot = orig
		f.mu.Unlock()
	}
}

// A sync that failed fails the feed, as a failed write does: what it should have made
// durable may be lost, and a retried sync would succeed over the lost pages, so no signature
// over them may leave afterwards, and every call says ErrStorage.
func TestFailedSyncFailsTheFeed(t *testing.T) {
	for _, which := range []string{"data", "log"} {
		t.Run(which, func(t *testing.T) {
			w, _ := newWriter(t, Compat)
			mustAppend(t, w, block(0, 100))
			if _, err := w.Proof(Request{Upgrade: &UpgradeRequest{Length: 1}}); err != nil {
				t.Fatal(err) // length 1 is synced
			}
			mustAppend(t, w, block(1, 100), block(2, 100))
			up := Request{Upgrade: &UpgradeRequest{Start: 1, Length: 2}}
			pending, err := w.ProofPending(up)
			if err != nil {
				t.Fatal(err)
			}
			restore := failSyncs(t, w, which)
			if p, err := w.Proof(up); !errors.Is(err, ErrStorage) {
				t.Fatalf("proof over an unsynced append whose %s sync failed: %v, %v; want ErrStorage", which, p, err)
			}
			restore() // the disk answers again; the lost pages are not coming back
			if p, err := w.Proof(up); !errors.Is(err, ErrStorage) {
				t.Fatalf("proof after a failed %s sync: signature %x, %v; want ErrStorage", which, p.Upgrade.Signature, err)
			}
			if sig, err := pending.Signature(); !errors.Is(err, ErrStorage) {
				t.Fatalf("pending signature after a failed %s sync: %x, %v; want ErrStorage", which, sig, err)
			}
			if pending.Durable() {
				t.Fatal("a proof of the unsynced append says it is durable")
			}
			if err := w.Sync(); !errors.Is(err, ErrStorage) {
				t.Fatalf("sync after a failed %s sync: %v; want ErrStorage", which, err)
			}
			if _, err := w.Append(block(3, 100)); !errors.Is(err, ErrStorage) {
				t.Fatalf("append after a failed %s sync: %v; want ErrStorage", which, err)
			}
			if _, err := w.Get(0); !errors.Is(err, ErrStorage) {
				t.Fatalf("get after a failed %s sync: %v; want ErrStorage", which, err)
			}
		})
	}
}

// A sync that fails in the background (ForkOnPowerLoss) or in a checkpoint fails the feed too.
func TestFailedBackgroundAndCheckpointSync(t *testing.T) {
	kp := testKeyPair(t, 9)
	f, err := Create(t.TempDir(), Options{KeyPair: &kp, Durability: ForkOnPowerLoss})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	mustAppend(t, f, block(0, 10))
	restore := failSyncs(t, f, "data")
	if err := f.Sync(); !errors.Is(err, ErrStorage) { // what the background sync runs
		t.Fatalf("sync: %v; want ErrStorage", err)
	}
	restore()
	if _, err := f.Append(block(1, 10)); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after a failed background sync: %v; want ErrStorage", err)
	}

	w, _ := newWriter(t, Compat)
	mustAppend(t, w, block(0, 10))
	restore = failSyncs(t, w, "data")
	w.mu.Lock()
	err = w.checkpointLocked()
	w.mu.Unlock()
	restore()
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("checkpoint whose data sync failed: %v; want ErrStorage", err)
	}
	if p, err := w.Proof(Request{Upgrade: &UpgradeRequest{Length: 1}}); !errors.Is(err, ErrStorage) {
		t.Fatalf("proof after a failed checkpoint sync: %v, %v; want ErrStorage", p, err)
	}
}

// A checkpoint writes a block's entry only once the block's bytes are synced: open trusts
// every entry in the blocks file, so an entry that reached the disk before its bytes (power
// loss in the checkpoint) would say the block is here while every read of it fails, and a
// reader would never fetch it again.
func TestCheckpointSyncsDataBeforeBlockEntries(t *testing.T) {
	for _, logKept := range []bool{true, false} {
		name := map[bool]string{true: "log kept", false: "log lost"}[logKept]
		t.Run(name, func(t *testing.T) {
			w, _ := newWriter(t, Compat)
			for i := 0; i < 4; i++ {
				mustAppend(t, w, block(i, 100))
			}
			key := w.Key()
			dir := t.TempDir()
			r, err := Create(dir, Options{Key: &key})
			if err != nil {
				t.Fatal(err)
			}
			replicate(t, w, r, 0)
			r.mu.Lock()
			err = r.checkpointLocked() // block 0 and the head are on disk for good
			dataEnd := r.dataEnd
			r.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			replicate(t, w, r, 2) // block-only: the reader has the head
			// Power loss in the next checkpoint, at its data sync: the data page holding
			// block 2 never reaches the disk.
			r.mu.Lock()
			data := r.fs.data
			r.mu.Unlock()
			restore := failSyncs(t, r, "data")
			r.mu.Lock()
			err = r.checkpointLocked()
			r.mu.Unlock()
			if err == nil {
				t.Fatal("a checkpoint whose data sync failed succeeded")
			}
			restore()
			r.crash()
			data.Close()
			if err := os.Truncate(filepath.Join(dir, "data"), int64(dataEnd)); err != nil {
				t.Fatal(err)
			}
			if !logKept { // a reader's log is synced only by checkpoints
				if err := os.Truncate(filepath.Join(dir, "oplog"), 0); err != nil {
					t.Fatal(err)
				}
			}
			r, err = Open(dir, Options{Key: &key})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			if b, err := r.Get(2); r.Has(2) || !errors.Is(err, ErrNotStored) {
				t.Fatalf("block 2 lost in the power loss: Has %v, Get %q, %v; want it not stored", r.Has(2), b, err)
			}
			replicate(t, w, r, 2)
			if b := mustGet(t, r, 2); !bytes.Equal(b, block(2, 100)) {
				t.Fatalf("block 2 fetched again: %q", b)
			}
			if b := mustGet(t, r, 0); !bytes.Equal(b, block(0, 100)) {
				t.Fatalf("block 0: %q", b)
			}
		})
	}
}

// A sync that fails outside the lock (Proof's group commit) is final for a checkpoint that
// syncs the same file before the failed sync has come back for the lock: on Linux the
// checkpoint's own sync would return nil over the lost pages and the checkpoint would call
// them synced.
func TestFailedSyncIsFinalForACheckpoint(t *testing.T) {
	w, _ := newWriter(t, Compat)
	mustAppend(t, w, block(0, 100))
	reached := make(chan struct{})
	gate := make(chan struct{})
	restoreHook := faults.SetBeforeSync(func(d string) {
		if d == w.Dir() {
			close(reached)
			<-gate
		}
	})
	t.Cleanup(restoreHook)
	restore := failSyncs(t, w, "data")
	done := make(chan error, 1)
	go func() { done <- w.Sync() }()
	<-reached // the sync holds the closed file and is about to sync it
	restore()
	restoreHook()
	w.mu.Lock()
	close(gate)
	// Wait, holding the lock the failed sync comes back for, until its sync has failed
	// (a bound, not a timing assertion: only a hung test waits that long).
	for deadline := time.Now().Add(time.Minute); w.syncErr.Load() == nil; runtime.Gosched() {
		if time.Now().After(deadline) {
			w.mu.Unlock()
			t.Fatal("the sync of the closed file never failed")
		}
	}
	err := w.checkpointLocked()
	synced := w.syncedSeq
	w.mu.Unlock()
	if !errors.Is(err, ErrStorage) || synced != 0 {
		t.Fatalf("checkpoint after a concurrent failed sync: %v, synced to %d; want ErrStorage and nothing synced", err, synced)
	}
	if err := <-done; !errors.Is(err, ErrStorage) {
		t.Fatalf("the failed sync: %v; want ErrStorage", err)
	}
	if _, err := w.Proof(Request{Upgrade: &UpgradeRequest{Length: 1}}); !errors.Is(err, ErrStorage) {
		t.Fatalf("proof: %v; want ErrStorage", err)
	}
}
