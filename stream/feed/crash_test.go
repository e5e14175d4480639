package feed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The crash test runs this test binary as a child that appends in a loop and
// prints each length once Append has returned; the parent kills it with
// SIGKILL at random moments and checks, after every kill, that the feed
// reopens, verifies, and still holds every append that returned.

const (
	crashChildEnv = "DV_FEED_CRASH_CHILD"
	crashDurEnv   = "DV_FEED_CRASH_DURABILITY"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	// The feed's own goroutines (the background sync, Proof's group commit) end with Close.
	goleak.VerifyTestMain(m)
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
	dur, _ := strconv.Atoi(os.Getenv(crashDurEnv))
	o := Options{KeyPair: &kp, Durability: Durability(dur)}
	f, err := Open(dir, o)
	if err != nil {
		f, err = Create(dir, o)
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
	for _, tc := range []struct {
		name   string
		dur    Durability
		rounds int
	}{
		{"SyncBeforeShare", SyncBeforeShare, 25},
		{"ForkOnPowerLoss", ForkOnPowerLoss, 20},
	} {
		t.Run(tc.name, func(t *testing.T) { testCrashKill9(t, tc.dur, tc.rounds) })
	}
}

func testCrashKill9(t *testing.T, dur Durability, rounds int) {
	dir := t.TempDir()
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{9}, 32))
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var returned uint64
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashDurEnv, dur))
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

		f, err := Open(dir, Options{KeyPair: &kp, Durability: dur})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		if f.Head().Fork != 0 {
			t.Fatalf("round %d: a killed process (same boot) moved the feed to fork %d", round, f.Head().Fork)
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
	f.mu.Lock()
	if f.bgSync != nil && f.bgSync.Stop() {
		f.syncWG.Done() // a dead process's timers do not fire
	}
	f.closed = true
	f.mu.Unlock()
	f.syncWG.Wait()
	err := f.fs.close()
	unlockDir(f.lock)
	return err
}

// A pending proof carries everything but the signature, which it hands out
// only once the state it signs is synced: the bytes may leave early, the
// signature may not.
func TestPendingProofSignsOnlyWhenSynced(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 5)
	f, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 5; i++ {
		mustAppend(t, f, block(i, 30))
	}
	want, err := f.Proof(Request{Block: &BlockRequest{Index: 4}, Upgrade: &UpgradeRequest{Length: 5}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, f, block(5, 30))
	req := Request{Block: &BlockRequest{Index: 5}, Upgrade: &UpgradeRequest{Start: 5, Length: 1}}
	pp, err := f.ProofPending(req)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	syncedSeq, seq := f.syncedSeq, f.seq
	f.mu.Unlock()
	if syncedSeq >= seq {
		t.Fatal("ProofPending synced the feed; it should leave that to Signature")
	}
	if pp.Length != 6 || pp.Proof.Upgrade == nil || pp.Proof.Upgrade.Signature != nil {
		t.Fatalf("pending proof: length %d, upgrade %+v; want length 6 and no signature", pp.Length, pp.Proof.Upgrade)
	}
	key := f.Key()
	r, err := Create(t.TempDir(), Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Verify(want); err != nil {
		t.Fatal(err)
	}
	// What travels before the signature: encodable, and worthless on its own.
	enc, err := pp.Proof.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	early, err := DecodeProof(enc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(early); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a reader verified a proof without its signature: %v", err)
	}
	if r.Length() != 5 || r.Has(5) {
		t.Fatal("an unsigned proof left something stored")
	}
	sig, err := pp.Signature()
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	syncedSeq = f.syncedSeq
	f.mu.Unlock()
	if syncedSeq < seq {
		t.Fatalf("Signature returned before the signed state was synced (%d < %d)", syncedSeq, seq)
	}
	early.Upgrade.Signature = sig
	if err := r.Verify(early); err != nil {
		t.Fatal(err)
	}
	if r.Length() != 6 || !r.Has(5) {
		t.Fatalf("reader at length %d after the signed proof", r.Length())
	}
	// Without an upgrade there is nothing to wait for.
	pp, err = f.ProofPending(Request{Block: &BlockRequest{Index: 2, Nodes: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := pp.Signature(); sig != nil || err != nil {
		t.Fatalf("block-only pending proof: signature %x, %v", sig, err)
	}
}

// With ForkOnPowerLoss a signature leaves before the disk has what it signs. A
// power loss then takes shared appends; the next writer, on a new boot, moves
// to a new fork before it signs anything, so no length is signed twice with
// different blocks within one fork. A killed process on the same boot, a
// clean close, or a writer that synced before sharing cause no new fork.
func TestForkOnPowerLoss(t *testing.T) {
	dir := t.TempDir()
	kp := testKeyPair(t, 6)
	open := func(boot string) *Feed {
		t.Helper()
		f, err := Open(dir, Options{KeyPair: &kp, Durability: ForkOnPowerLoss, BootID: boot})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f, err := Create(dir, Options{KeyPair: &kp, Durability: ForkOnPowerLoss, BootID: "boot-a"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		mustAppend(t, f, block(i, 30))
	}
	shared, err := f.Proof(Request{Block: &BlockRequest{Index: 6}, Upgrade: &UpgradeRequest{Length: 7}})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	synced, syncedSeq, seq := f.syncedLog, f.syncedSeq, f.seq
	f.mu.Unlock()
	if syncedSeq >= seq {
		t.Fatal("ForkOnPowerLoss synced before sharing")
	}
	key := f.Key()
	old, err := Create(t.TempDir(), Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Verify(shared); err != nil {
		t.Fatal(err)
	}

	// Power loss: the log loses everything after the last sync; the machine boots again.
	f.crash()
	if err := os.Truncate(dir+"/oplog", synced); err != nil {
		t.Fatal(err)
	}
	f = open("boot-b")
	h := f.Head()
	if h.Fork != 1 || h.Length >= 7 {
		t.Fatalf("after power loss: fork %d length %d, want fork 1 and the lost appends gone", h.Fork, h.Length)
	}
	for i := h.Length; i < 9; i++ {
		mustAppend(t, f, []byte(fmt.Sprintf("new block %d after the power loss", i)))
	}
	// The reader that held the lost tail refuses the new fork; a new reader takes it.
	p, err := f.Proof(Request{Block: &BlockRequest{Index: 8}, Upgrade: &UpgradeRequest{Length: 9}})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Verify(p); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("a reader of fork 0 took fork 1's proof: %v", err)
	}
	fresh, err := Create(t.TempDir(), Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for i := uint64(0); i < 9; i++ {
		replicate(t, f, fresh, i)
	}
	if fresh.Head().Fork != 1 {
		t.Fatalf("new reader at fork %d", fresh.Head().Fork)
	}

	// The process killed (same boot): its writes are in the OS cache; no new fork.
	f.crash()
	f = open("boot-b")
	if h := f.Head(); h.Fork != 1 || h.Length != 9 {
		t.Fatalf("after a kill on the same boot: fork %d length %d, want 1 and 9", h.Fork, h.Length)
	}
	// A clean close, then another boot: nothing was lost, no new fork.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f = open("boot-c")
	if h := f.Head(); h.Fork != 1 || h.Length != 9 {
		t.Fatalf("after a clean close: fork %d length %d, want 1 and 9", h.Fork, h.Length)
	}
	// A damaged owner file is taken for the worst case.
	f.crash()
	if err := os.WriteFile(dir+"/"+ownerFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	f = open("boot-c")
	if h := f.Head(); h.Fork != 2 || h.Length != 9 {
		t.Fatalf("after a damaged owner file: fork %d length %d, want 2 and 9", h.Fork, h.Length)
	}
	if n, err := f.VerifyAll(); err != nil || n != 9 {
		t.Fatalf("verify all after the forks: %d, %v", n, err)
	}
	// A writer that synced before sharing (the default) and died: no new fork on a new boot.
	// (Opening it after the ForkOnPowerLoss writer died does fork once more.)
	f.crash()
	g, err := Open(dir, Options{KeyPair: &kp, BootID: "boot-d"})
	if err != nil {
		t.Fatal(err)
	}
	if h := g.Head(); h.Fork != 3 {
		t.Fatalf("a SyncBeforeShare writer after a dead ForkOnPowerLoss one: fork %d, want 3", h.Fork)
	}
	g.crash()
	g, err = Open(dir, Options{KeyPair: &kp, BootID: "boot-e"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if h := g.Head(); h.Fork != 3 {
		t.Fatalf("a SyncBeforeShare writer's death moved the feed to fork %d", h.Fork)
	}
}

// The background sync bounds what a power loss can take under ForkOnPowerLoss,
// and Close neither waits for its timer nor leaks it.
func TestForkOnPowerLossSyncsInBackground(t *testing.T) {
	kp := testKeyPair(t, 7)
	f, err := Create(t.TempDir(), Options{KeyPair: &kp, Durability: ForkOnPowerLoss})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, f, block(0, 100))
	deadline := time.Now().Add(10 * BackgroundSync)
	for {
		f.mu.Lock()
		done := f.syncedSeq >= f.seq
		f.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the append was never synced in the background")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustAppend(t, f, block(1, 100))
	t0 := time.Now()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*BackgroundSync {
		t.Fatalf("Close waited %v for the background sync's timer", d)
	}
}
