package swarm

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestViewerReturnsToASellerThatCameBack: a free stream's broadcaster goes away (its process
// killed) and comes back a few seconds later at the same address with the same identity, as
// `live -resume` does. The viewer, which knows no other source, is taking blocks again soon
// after. Before, the seller judged unreachable was retried on a backoff that grew with every
// failed dial while it was away, so the viewer stayed disconnected for a minute.
func TestViewerReturnsToASellerThatCameBack(t *testing.T) {
	checkLeaks(t)
	sk := newIdentity(t)
	sf := newWriter(t, 30)
	startAppending(t, sf)
	n1 := nodeOn(t, sk, "/ip4/127.0.0.1/tcp/0")
	srv1, err := Serve(ServeConfig{Host: n1.Host(), Feed: sf, Origin: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	addr := n1.Host().Addrs()[0]
	info := peer.AddrInfo{ID: n1.ID(), Addrs: n1.Host().Addrs()}
	links := &countingHandler{msg: "cannot link with a source"}
	v := startSwarm(t, info, sf.Key(), func(c *Config) { c.Logger = slog.New(links) })
	waitFor(t, 20*time.Second, "the first blocks", func() bool { return v.sw.Feed().Length() > 10 })

	_ = srv1.Close()
	_ = n1.Close()
	time.Sleep(8 * time.Second) // away: the viewer's dials fail meanwhile
	n2 := nodeOn(t, sk, addr.String())
	t.Cleanup(func() { n2.Close() })
	srv2, err := Serve(ServeConfig{Host: n2.Host(), Feed: sf, Origin: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Close() })
	back := time.Now()
	from := sf.Length()
	waitFor(t, 30*time.Second, "blocks from the seller that came back", func() bool { return v.sw.Feed().Length() > from+10 })
	t.Logf("taking blocks again %v after the seller came back", time.Since(back).Round(10*time.Millisecond))
	if d := time.Since(back); d > 10*time.Second {
		t.Fatalf("the viewer took %v to return to the seller", d)
	}
	// While it was away, the seller was dialled on a backoff (before: 8 000 failed links in
	// the 8 s, a dial storm that also pushed its next try a minute away).
	if n := links.n.Load(); n > 10 {
		t.Fatalf("%d failed links to the seller while it was away 8 s", n)
	}
}

// countingHandler counts the log records whose message is msg.
type countingHandler struct {
	msg string
	n   atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
