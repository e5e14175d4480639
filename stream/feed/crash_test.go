package feed

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The crash test runs this test binary as a child that appends in a loop and
// prints each length once Append has returned; the parent kills it with
// SIGKILL at random moments and checks, after every kill, that the feed
// reopens, verifies, and still holds every append that returned.

const crashChildEnv = "DV_FEED_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashBlock(i uint64) []byte {
	b := make([]byte, 1+int(i%700))
	for j := range b {
		b[j] = byte(i*31 + uint64(j))
	}
	return b
}

func crashChild(dir string) {
	checkpointCount = 64 // checkpoint often so that kills land inside checkpoints too
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{9}, 32))
	f, err := Open(dir, Options{KeyPair: &kp})
	if err != nil {
		f, err = Create(dir, Options{KeyPair: &kp})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		n := f.Length()
		var err error
		if n%5 == 0 {
			// A batch of three under one signature.
			_, err = f.Append(crashBlock(n), crashBlock(n+1), crashBlock(n+2))
		} else {
			_, err = f.Append(crashBlock(n))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		fmt.Fprintln(out, f.Length())
		out.Flush()
	}
}

func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{9}, 32))
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var returned uint64
	const rounds = 25
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan uint64, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
					lines <- n
				}
			}
			close(lines)
		}()
		// Wait for the first append of this round, then kill at a random moment.
		select {
		case n, ok := <-lines:
			if !ok {
				t.Fatalf("round %d: child ended early: %s", round, stderr.String())
			}
			returned = max(returned, n)
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: child made no progress", round)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		for n := range lines {
			returned = max(returned, n)
		}
		cmd.Wait()

		f, err := Open(dir, Options{KeyPair: &kp})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		if f.Length() < returned {
			t.Fatalf("round %d: length %d after kill, but appends up to %d had returned", round, f.Length(), returned)
		}
		if n, err := f.VerifyAll(); err != nil || n != f.Length() {
			t.Fatalf("round %d: verify after kill: %d blocks, %v", round, n, err)
		}
		for _, i := range []uint64{0, f.Length() / 2, f.Length() - 1} {
			if b, err := f.Get(i); err != nil || !bytes.Equal(b, crashBlock(i)) {
				t.Fatalf("round %d: block %d wrong after kill: %v", round, i, err)
			}
		}
		returned = f.Length()
		if err := f.crash(); err != nil { // no checkpoint: the next child opens the crashed state as is
			t.Fatal(err)
		}
	}
	t.Logf("%d kills, %d blocks appended, every returned append kept", rounds, returned)
}

// TestPowerLossNeverResigns simulates power loss by dropping every log write
// after the last sync, and checks the durability rule: a signature that left
// the process (through Proof) is on disk, so the reopened feed never signs a
// different block at a length it may have shared.
func TestPowerLossNeverResigns(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 4)
	f, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustAppend(t, f, block(i, 30))
	}
	shared, err := f.Proof(Request{Block: &BlockRequest{Index: 4}, Upgrade: &UpgradeRequest{Length: 5}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, f, block(5, 30)) // not shared: may be lost
	mustAppend(t, f, block(6, 30))
	f.mu.Lock()
	synced, seq, syncedSeq := f.syncedLog, f.seq, f.syncedSeq
	f.mu.Unlock()
	if syncedSeq >= seq {
		t.Fatalf("appends that were not shared were synced (%d >= %d): SyncBeforeShare should be lazy", syncedSeq, seq)
	}
	f.crash()
	// Power loss: everything after the last sync is gone.
	if err := os.Truncate(dir+"/oplog", synced); err != nil {
		t.Fatal(err)
	}
	f, err = Open(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Length() != 5 {
		t.Fatalf("length %d after power loss, want the shared 5", f.Length())
	}
	// A reader that got the shared proof accepts what the feed signs next.
	key := f.Key()
	r, err := Create(t.TempDir(), Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Verify(shared); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, f, []byte("a different block 5 is fine: length 6 was never shared"))
	replicate(t, f, r, 5)

	// With SyncEveryAppend every append is on disk when it returns.
	g, err := Create(t.TempDir(), Options{KeyPair: &kp, Durability: SyncEveryAppend})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mustAppend(t, g, []byte("x"))
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.syncedSeq != g.seq {
		t.Fatal("SyncEveryAppend returned before syncing")
	}
}

// crash drops a feed as a killed process would: files closed, lock released
// (the kernel does both), nothing checkpointed or synced.
func (f *Feed) crash() error {
	err := f.fs.close()
	unlockDir(f.lock)
	return err
}
