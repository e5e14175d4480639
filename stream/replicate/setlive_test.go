package replicate

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// slowStartDialer is a viewer's dialer whose replication streams hold their first Write for
// delay (a session coming up slowly): started is closed when that write begins.
type slowStartDialer struct {
	*p2p.Node
	h slowStartHost
}

func newSlowStartDialer(n *p2p.Node, delay time.Duration) slowStartDialer {
	net := &slowStartNet{Network: n.Host().Network(), delay: delay, started: make(chan struct{})}
	return slowStartDialer{Node: n, h: slowStartHost{Host: n.Host(), net: net}}
}

func (d slowStartDialer) Host() host.Host { return d.h }

type slowStartHost struct {
	host.Host
	net *slowStartNet
}

func (h slowStartHost) Network() network.Network { return h.net }

type slowStartNet struct {
	network.Network
	delay   time.Duration
	once    sync.Once
	started chan struct{}
}

func (n *slowStartNet) NewStream(ctx context.Context, p peer.ID) (network.Stream, error) {
	s, err := n.Network.NewStream(ctx, p)
	if err != nil {
		return nil, err
	}
	return &slowStartStream{Stream: s, net: n}, nil
}

type slowStartStream struct {
	network.Stream
	net   *slowStartNet
	wrote sync.Once
}

func (s *slowStartStream) Write(b []byte) (int, error) {
	s.wrote.Do(func() {
		s.net.once.Do(func() { close(s.net.started) })
		time.Sleep(s.net.delay)
	})
	return s.Stream.Write(b)
}

// A SetLive(false) made while the session's first status is on its way (the session is not
// registered yet) still reaches the seller: a paused viewer is neither pushed nor billed the
// blocks appended after it, and SetLive(true) brings the pushes back.
func TestSetLiveDuringSessionSetup(t *testing.T) {
	gate := newTestGate()
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 0, 100)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, gate, nil)
	vn := newNode(t, nil)
	gate.set(vn.ID(), Allowance{Until: time.Now().Add(time.Hour)})
	d := newSlowStartDialer(vn, 300*time.Millisecond)
	r := startViewerWith(t, vn, sn.AddrInfo(), sf.Key(), true, func(c *ViewerConfig) { c.Dialer = d })
	select {
	case <-d.h.net.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the viewer did not open a stream")
	}
	r.viewer.SetLive(false) // the user pauses while the session comes up
	r.waitAccess(t, wire.Allowed)
	// The corrected status follows the first one as soon as the session is registered, so it
	// may reach the seller after the access answer: a block appended in that moment may still
	// be pushed (as after any pause, within a round trip). Once it has arrived, nothing is.
	appendBlocks(t, sf, 0, 1, 100)
	time.Sleep(2 * time.Second)
	before := len(gate.deliveredTo(vn.ID()))
	appendBlocks(t, sf, 1, 4, 100)
	time.Sleep(2 * time.Second) // pushes, had there been any, arrive in milliseconds
	if got := gate.deliveredTo(vn.ID()); len(got) > before {
		t.Fatalf("the paused viewer was pushed and billed blocks %v (%d before the pause could have reached the seller)", got, before)
	}
	r.viewer.SetLive(true)
	waitFor(t, 20*time.Second, "pushes after SetLive(true)", func() bool { return len(gate.deliveredTo(vn.ID())) == 5 })
}
