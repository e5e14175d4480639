package ledger

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The kill -9 test runs this test binary as a child that bills delivered blocks (33 ms of media
// each, as the app does at 30 fps) for several viewers in a loop and prints each viewer's total
// once Consume has returned; the parent kills it with SIGKILL at random moments and checks that
// the reopened ledger gives no viewer back PersistEveryMillis or more.

const (
	crashChildEnv = "DV_LEDGER_CRASH_CHILD"
	crashViewers  = 5
	crashBlockMs  = 33
)

// TestMain runs the crash child when asked to, and otherwise fails the package if a test leaves
// goroutines behind.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	goleak.VerifyTestMain(m)
}

func crashKey(v int) Key { return Key{Stream: "stream", Viewer: fmt.Sprint("viewer", v)} }

func crashChild(path string) {
	l, err := Open(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		v := i % crashViewers
		if _, err := l.Consume(crashKey(v), crashBlockMs); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		fmt.Fprintln(out, v, l.Balance(crashKey(v)).ConsumedMillis)
		out.Flush()
	}
}

func TestConsumeKill9GivesBackUnderOneSecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	var worst, base uint64 // base: viewer 0's total on disk before the round
	for round := 0; round < 20; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		type line struct {
			v     int
			total uint64
		}
		lines := make(chan line, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 2 {
					continue
				}
				v, _ := strconv.Atoi(f[0])
				n, _ := strconv.ParseUint(f[1], 10, 64)
				lines <- line{v, n}
			}
		}()
		billed := make([]uint64, crashViewers)
		// Let the child bill a few seconds of media per viewer (well past PersistEveryMillis), then
		// kill it at a random moment.
		want := base + uint64(rng.IntN(4000)+1500)
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child ended early: %s", round, stderr.String())
				}
				billed[l.v] = max(billed[l.v], l.total)
				if billed[0] >= want {
					break wait
				}
			case <-deadline:
				t.Fatalf("round %d: child made too little progress: %v", round, billed)
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for l := range lines {
			billed[l.v] = max(billed[l.v], l.total)
		}
		cmd.Wait()

		l, err := Open(path, nil)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		for v, b := range billed {
			got := l.Balance(crashKey(v)).ConsumedMillis
			// The child may have written one more block's total than it printed before it died.
			if got > b+crashBlockMs {
				t.Fatalf("round %d viewer %d: %d ms consumed on disk, only %d billed", round, v, got, b)
			}
			if got+PersistEveryMillis <= b {
				t.Fatalf("round %d viewer %d: kill -9 gave back %d ms of the %d billed (bound %d ms)", round, v, b-got, b, PersistEveryMillis)
			}
			if b > got {
				worst = max(worst, b-got)
			}
		}
		base = l.Balance(crashKey(0)).ConsumedMillis
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("20 kills: at most %d ms given back to one viewer (bound %d ms)", worst, PersistEveryMillis)
}
