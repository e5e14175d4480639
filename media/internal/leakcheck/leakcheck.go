// Package leakcheck fails a test that leaves goroutines behind: Check records the
// goroutines running when it is called and, when the test ends, waits up to five seconds
// for every goroutine started since to finish.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check registers the check as a cleanup of t.
func Check(t testing.TB) {
	t.Helper()
	before := snapshot()
	t.Cleanup(func() {
		if left := leftSince(before, 5*time.Second); len(left) > 0 {
			t.Errorf("%d goroutines left running:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	})
}

func snapshot() map[string]bool {
	before := map[string]bool{}
	for _, g := range goroutines() {
		before[id(g)] = true
	}
	return before
}

// leftSince returns the stacks of goroutines not in before that are still running after
// waiting up to wait for them to end.
func leftSince(before map[string]bool, wait time.Duration) []string {
	var left []string
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		left = left[:0]
		for _, g := range goroutines() {
			if !before[id(g)] && !ignored(g) {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
	}
}

func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// id is the "goroutine N" part of a stack's first line.
func id(g string) string {
	first, _, _ := strings.Cut(g, "\n")
	f := strings.Fields(first)
	if len(f) < 2 {
		return first
	}
	return f[1]
}

// ignored goroutines belong to the runtime or the testing package.
func ignored(g string) bool {
	for _, s := range []string{"testing.(*T).Run", "testing.tRunner", "runtime.goexit0", "testing.runFuzzing", "os/signal.loop", "runtime.ensureSigM"} {
		if strings.Contains(g, s) && !strings.Contains(g, "dazaar-vision") {
			return true
		}
	}
	// The goroutine running this cleanup.
	return strings.Contains(g, "leakcheck.goroutines")
}
