package p2p

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"go.uber.org/goleak"
)

// cancelAfter is a context that is done from its n-th Err call on: a start-up cancelled at
// each step in turn, without timing.
type cancelAfter struct {
	context.Context
	calls, n atomic.Int32
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) >= c.n.Load() {
		return context.Canceled
	}
	return nil
}

// New honours its context: cancelled before or during start-up, it returns the context's
// error and leaves nothing running.
func TestNewHonoursContext(t *testing.T) {
	before := goleak.IgnoreCurrent() // taken now: taken at the check, it would ignore every leak
	sk := testIdentity(t)
	stopped := 0
	for n := int32(1); n <= 8; n++ {
		c := &cancelAfter{Context: context.Background()}
		c.n.Store(n)
		node, err := New(c, Config{Identity: sk, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Reachability: ReachabilityPublic})
		if err == nil {
			if c.calls.Load() >= n {
				t.Fatalf("cancelled at check %d: New succeeded anyway", n)
			}
			node.Close() // start-up made fewer checks than n: done before the cancel
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled at check %d: %v, want context.Canceled", n, err)
		}
		stopped++
	}
	if stopped < 3 {
		t.Fatalf("New stopped for %d of the cancelled contexts: it must check before it starts and between its steps", stopped)
	}
	// Nothing New started is left once it returned an error (the goroutines libp2p leaves
	// for the process's lifetime excepted).
	noLeaks(t, before)
}

// noLeaks waits up to 10 s for the goroutines started since before to end.
func noLeaks(t *testing.T, before goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := goleak.Find(append(leakOptions(), before)...)
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testIdentity(t *testing.T) crypto.PrivKey {
	t.Helper()
	b, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParseIdentity(b)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}
