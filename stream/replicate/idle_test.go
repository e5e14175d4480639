package replicate

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/network"
)

// TestViewerDropsStalledSeller: a seller that goes silent after its first messages, or that
// sends a frame one byte at a time, no longer holds the viewer's session for ever: after
// IdleTimeout the session ends with ErrStalled, the viewer says so in its log and reconnects.
func TestViewerDropsStalledSeller(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	const idle = 800 * time.Millisecond
	cases := []struct {
		name  string
		after func(s network.Stream, stop <-chan struct{}) // what the seller does after status and access
	}{
		{"silent", func(network.Stream, <-chan struct{}) {}},
		{"a byte at a time", func(s network.Stream, stop <-chan struct{}) {
			frame := binary.AppendUvarint(nil, 200)
			frame = append(frame, byte(wire.TApp))
			frame = append(frame, bytes.Repeat([]byte{'x'}, 199)...)
			for _, b := range frame {
				if _, err := s.Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(idle / 2):
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newNode(t, nil)
			sessions := make(chan struct{}, 64)
			stop := make(chan struct{})
			var handlers sync.WaitGroup
			defer handlers.Wait()
			defer close(stop)
			fake.Host().SetStreamHandler(wire.Protocol, func(s network.Stream) {
				handlers.Add(1)
				defer handlers.Done()
				sessions <- struct{}{}
				w := wire.NewWriter(s)
				_ = w.Frame(wire.TStatus, wire.Status{Length: 10}.AppendBinary)
				_ = w.Frame(wire.TAccess, wire.Access{State: wire.Free}.AppendBinary)
				_ = w.Flush()
				handlers.Add(1)
				go func() { defer handlers.Done(); _, _ = io.Copy(io.Discard, s) }()
				tc.after(s, stop)
				<-stop
				s.Reset()
			})
			var logs xtest.SyncBuffer
			r := startViewerWith(t, nil, fake.AddrInfo(), sf.Key(), true, func(c *ViewerConfig) {
				c.IdleTimeout = idle
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			<-sessions
			waitFor(t, 20*time.Second, "the viewer to drop the stalled session and dial again", func() bool {
				return len(sessions) > 0
			})
			r.stop()
			if !strings.Contains(logs.String(), ErrStalled.Error()) {
				t.Fatalf("the viewer's log does not say why it reconnected:\n%s", logs.String())
			}
		})
	}
}

// TestSellerKeepAliveHoldsIdleSession: a seller with nothing to send (no appends) sends a
// status every KeepAlive, so a viewer with a short IdleTimeout keeps its one session.
func TestSellerKeepAliveHoldsIdleSession(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	sn := newNode(t, nil)
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, KeepAlive: 150 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	statuses := 0
	r := startViewerWith(t, nil, sn.AddrInfo(), sf.Key(), true, func(c *ViewerConfig) {
		c.IdleTimeout = time.Second
		c.OnStatus = func(wire.Status) { mu.Lock(); statuses++; mu.Unlock() }
	})
	waitFor(t, 10*time.Second, "the viewer to catch up", func() bool { return r.feed.Length() == 10 })
	time.Sleep(3 * time.Second) // three idle timeouts with nothing appended
	r.stop()
	mu.Lock()
	defer mu.Unlock()
	if n := r.viewer.nsess.Load(); n != 1 {
		t.Fatalf("%d sessions: the idle one was dropped", n)
	}
	if statuses < 5 {
		t.Fatalf("%d statuses in 3 s of keep-alives every 150 ms", statuses)
	}
}

// TestViewerWriteToNonReadingSeller: a seller that keeps its session alive (a status every
// so often) but never reads no longer blocks the viewer's writes for ever: a write gets
// IdleTimeout, like a read, and fails when it runs out (before, Send blocked once the
// stream's window was full, and so did the handler and any Fetch behind it).
func TestViewerWriteToNonReadingSeller(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	const idle = 800 * time.Millisecond
	fake := newNode(t, nil)
	stop := make(chan struct{})
	var handlers sync.WaitGroup
	defer handlers.Wait()
	defer close(stop)
	fake.Host().SetStreamHandler(wire.Protocol, func(s network.Stream) {
		handlers.Add(1)
		defer handlers.Done()
		defer s.Reset()
		w := wire.NewWriter(s)
		_ = w.Frame(wire.TAccess, wire.Access{State: wire.Free}.AppendBinary)
		for {
			_ = w.Frame(wire.TStatus, wire.Status{Length: 10}.AppendBinary)
			if w.Flush() != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(idle / 4):
			}
		}
	})
	r := startViewerWith(t, nil, fake.AddrInfo(), sf.Key(), true, func(c *ViewerConfig) { c.IdleTimeout = idle })
	defer r.stop()
	waitFor(t, 20*time.Second, "a session", func() bool { return r.viewer.Connected() })
	failed := make(chan error, 1)
	go func() {
		msg := make([]byte, wire.MaxApp)
		for {
			if err := r.viewer.Send(msg); err != nil {
				failed <- err
				return
			}
		}
	}()
	select {
	case err := <-failed:
		t.Logf("the viewer's write gave up: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("a seller that does not read holds the viewer's write for ever")
	}
}
