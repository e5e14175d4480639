package feed

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fileState is what ReadHead must leave alone: each file's bytes, size and modification time.
func fileState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%x %d %v %v", sha256.Sum256(b), info.Size(), info.ModTime().UnixNano(), info.Mode())
	}
	return out
}

func sameFiles(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("%s: files %v became %v", what, before, after)
	}
	for name, s := range before {
		if after[name] != s {
			t.Fatalf("%s changed %s: %s → %s", what, name, s, after[name])
		}
	}
}

// TestReadHead reads the head of a feed its writer holds open (locked), and with a torn record
// at the log's end (a writer caught mid-write): the signed head is the writer's, and no file is
// touched, not even to cut the torn bytes.
func TestReadHead(t *testing.T) {
	w, _ := newWriter(t, Compat)
	for i := range 10 {
		mustAppend(t, w, block(i, 300))
	}
	if _, err := w.AppendSync(block(10, 50), block(11, 70)); err != nil {
		t.Fatal(err)
	}
	want := w.Head()
	dir := w.Dir()
	before := fileState(t, dir)
	h, err := ReadHead(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h.Length != 12 || h.Length != want.Length || h.ByteLength != want.ByteLength || h.Fork != want.Fork ||
		h.TreeHash != want.TreeHash || !bytes.Equal(h.Signature, want.Signature) || !h.HasSyncPoint || h.SyncPoint != 10 {
		t.Fatalf("head %+v, the writer's %+v", h, want)
	}
	sameFiles(t, "reading the head of a held feed", before, fileState(t, dir))

	appendTo(dir, "oplog", []byte{200, 0, 0, 0, 1, 2, 3}) // a record's first bytes
	before = fileState(t, dir)
	if h, err = ReadHead(dir); err != nil || h.Length != want.Length || h.TreeHash != want.TreeHash {
		t.Fatalf("head with a torn log tail: %+v %v", h, err)
	}
	sameFiles(t, "reading the head past a torn record", before, fileState(t, dir))

	if _, err := ReadHead(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no feed: %v", err)
	}
}

// TestReadHeadOfLiveAndKilledWriter reads the head of a feed another process is appending to
// (checkpointing every 64 records, so reads meet checkpoints): every read succeeds and holds at
// least every append that had returned. After kill -9 the head read changes nothing and is
// what the next writer opens.
func TestReadHeadOfLiveAndKilledWriter(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashDurEnv, ForkOnPowerLoss))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var returned atomic.Uint64
	first := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil && n > returned.Load() {
				if returned.Swap(n) == 0 {
					close(first)
				}
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatalf("the writer made no progress: %s", stderr.String())
	}
	var last uint64
	for i := 0; i < 100 || last < 3000; i++ {
		floor := returned.Load()
		h, err := ReadHead(dir)
		if err != nil {
			t.Fatalf("read %d of a live feed: %v", i, err)
		}
		if h.Length < floor || h.Length < last {
			t.Fatalf("read %d: length %d, but appends up to %d had returned (previous read %d)", i, h.Length, floor, last)
		}
		last = h.Length
		if i > 10000 {
			t.Fatalf("the writer is stuck at %d blocks: %s", last, stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-ended
	cmd.Wait()

	before := fileState(t, dir)
	h, err := ReadHead(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, "reading the head after kill -9", before, fileState(t, dir))
	if h.Length < returned.Load() {
		t.Fatalf("head %d after kill, but appends up to %d had returned", h.Length, returned.Load())
	}
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{9}, 32))
	f, err := Open(dir, Options{KeyPair: &kp, Durability: ForkOnPowerLoss})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Head(); got.Length != h.Length || got.TreeHash != h.TreeHash || got.Fork != h.Fork {
		t.Fatalf("the head read %+v; the next writer opens %+v", h, got)
	}
	t.Logf("%d blocks; the last live read saw %d", h.Length, last)
}
