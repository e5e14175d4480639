package feed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/internal/faults"
)

// stallSyncs makes every sync of the feed in dir hang until the returned release is called
// (also at the end of the test, before the feed's Close waits for the sync).
func stallSyncs(t testing.TB, dir string) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	restore := faults.SetBeforeSync(func(d string) {
		if d == dir {
			<-gate
		}
	})
	var once sync.Once
	release = func() { once.Do(func() { restore(); close(gate) }) }
	t.Cleanup(release)
	return release
}

// A pending proof's signature waits for the disk, but a caller with a context stops waiting
// when it ends; the sync goes on and a later call gets the signature once it is done.
func TestSignatureContextStalledSync(t *testing.T) {
	w, _ := newWriter(t, Compat)
	release := stallSyncs(t, w.Dir())
	h := mustAppend(t, w, block(0, 100))
	pp, err := w.ProofPending(Request{Block: &BlockRequest{Index: 0}, Upgrade: &UpgradeRequest{Start: 0, Length: h.Length}})
	if err != nil {
		t.Fatal(err)
	}
	if pp.Durable() {
		t.Fatal("a proof of an unsynced append says it is durable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := pp.SignatureContext(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stalled sync: %v, want the context's deadline", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SignatureContext did not return when its context ended")
	}
	release()
	sig, err := pp.SignatureContext(context.Background())
	if err != nil || len(sig) == 0 {
		t.Fatalf("after the disk came back: %x, %v", sig, err)
	}
	if !pp.Durable() {
		t.Fatal("not durable after the sync")
	}
}

// A failure of the reader's own disk is ErrStorage, not an invalid proof: the replicator
// must not blame the seller for it.
func TestStorageFailureIsErrStorage(t *testing.T) {
	w, _ := newWriter(t, Compat)
	r := newReader(t, w)
	mustAppend(t, w, block(0, 100), block(1, 100))
	replicate(t, w, r, 0)
	p, err := w.Proof(Request{Block: &BlockRequest{Index: 1, Nodes: r.MissingNodes(1)}})
	if err != nil {
		t.Fatal(err)
	}
	r.fs.data.Close() // the disk goes away under the reader
	err = r.Verify(p)
	if !errors.Is(err, ErrStorage) || errors.Is(err, ErrInvalidProof) {
		t.Fatalf("write to a closed file: %v, want ErrStorage", err)
	}
	// The feed stays failed, and says so the same way.
	if err := r.Verify(p); !errors.Is(err, ErrStorage) {
		t.Fatalf("after a failed write: %v, want ErrStorage", err)
	}
	bad := *p
	bad.Block = &BlockProof{Index: 1, Value: []byte("forged"), Nodes: p.Block.Nodes}
	w2, _ := newWriter(t, Compat)
	r2 := newReader(t, w2)
	mustAppend(t, w2, block(0, 100), block(1, 100))
	replicate(t, w2, r2, 0)
	if err := r2.Verify(&bad); errors.Is(err, ErrStorage) || !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("forged block: %v, want ErrInvalidProof only", err)
	}
}

// Replacing the meta or owner file: the old bytes or the new ones, and an error names the
// file people know of, never the temporary file it went through.
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	for _, body := range []string{"first", "second, longer than the first"} {
		if err := replaceFile(dir, "meta", []byte(body), true); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "meta")); err != nil || string(got) != body {
			t.Fatalf("meta holds %q, %v; want %q", got, err, body)
		}
	}
	// The target is a directory that is not empty: the rename fails.
	if err := os.MkdirAll(filepath.Join(dir, "owner", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := replaceFile(dir, "owner", []byte("new"), true)
	if err == nil {
		t.Fatal("replacing a directory worked")
	}
	if regexp.MustCompile(`owner([0-9]+|\.tmp)`).MatchString(err.Error()) || !strings.Contains(err.Error(), filepath.Join(dir, "owner")) {
		t.Fatalf("error %q names the temporary file or not the target", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
}
