//go:build unix

package feed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A disk that fails to answer while a feed opens is a storage error: the log records past the
// last sync are not taken for blocks lost to a power loss and cut off, and the tree's nodes are
// not taken for corruption. Once the disk answers again the feed opens with everything in it.
// A FIFO stands for the failing file: reading it at an offset fails with ESPIPE.
func TestOpenReadErrorLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool // killed after appending (the log replays them); else closed (checkpointed)
	}{{"data", true}, {"tree", false}, {"tree", true}} {
		name := tc.name
		t.Run(fmt.Sprintf("%s/crash=%v", name, tc.crash), func(t *testing.T) {
			dir := t.TempDir()
			kp := testKeyPair(t, 5)
			f, err := Create(dir, Options{KeyPair: &kp})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				mustAppend(t, f, block(i, 50)) // unsynced: Open reads their blocks back
			}
			if tc.crash {
				f.crash()
			} else if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			logBefore, err := os.ReadFile(filepath.Join(dir, "oplog"))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			if err := os.Rename(path, path+".away"); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Open(dir, Options{KeyPair: &kp})
			if !errors.Is(err, ErrStorage) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("open with an unreadable %s file: %v; want ErrStorage, not ErrCorrupt", name, err)
			}
			if logAfter, _ := os.ReadFile(filepath.Join(dir, "oplog")); !bytes.Equal(logAfter, logBefore) {
				t.Fatalf("the failed open changed the log: %d bytes, was %d", len(logAfter), len(logBefore))
			}
			if err := os.Rename(path+".away", path); err != nil {
				t.Fatal(err)
			}
			f, err = Open(dir, Options{KeyPair: &kp})
			if err != nil {
				t.Fatalf("open once the disk answers: %v", err)
			}
			defer f.Close()
			if f.Length() != 4 {
				t.Fatalf("length %d after the failed open, want 4", f.Length())
			}
			for i := 0; i < 4; i++ {
				if b := mustGet(t, f, uint64(i)); !bytes.Equal(b, block(i, 50)) {
					t.Fatalf("block %d: %q", i, b)
				}
			}
		})
	}
}
