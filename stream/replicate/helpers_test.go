package replicate

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("DV_SELLER_HELPER") == "1" {
		sellerProcess()
		return
	}
	if role := os.Getenv("DV_NETSIM_ROLE"); role != "" {
		runNetsimRole(role)
		return
	}
	if spec := os.Getenv("DV_NETSIM_BENCH"); spec != "" {
		runNetBench(spec)
		return
	}
	if os.Getenv("DV_FANOUT_VIEWERS") != "" {
		runFanoutViewers()
		return
	}
	if spec := os.Getenv("DV_FANOUT"); spec != "" {
		runFanout(spec)
		return
	}
	if os.Getenv("DV_HOSTILE_PEERS") != "" {
		runHostilePeers()
		return
	}
	if out := os.Getenv("DV_REPLBENCH"); out != "" {
		runBench(out)
		return
	}
	goleak.VerifyTestMain(m, leakOptions()...)
}

// leakOptions lists goroutines that libp2p and its dependencies start once per process and
// never stop, so that goleak reports only goroutines our code leaves behind.
func leakOptions() []goleak.Option {
	return xtest.LeakOptions()
}

// tb is what the helpers need of a testing.TB (the benchmarks pass their own).
type tb interface {
	Helper()
	Cleanup(func())
	Fatal(...any)
	Fatalf(string, ...any)
	TempDir() string
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newNode(t testing.TB, identity []byte) *p2p.Node {
	t.Helper()
	if identity == nil {
		var err error
		if identity, err = p2p.NewIdentity(); err != nil {
			t.Fatal(err)
		}
	}
	sk, err := p2p.ParseIdentity(identity)
	if err != nil {
		t.Fatal(err)
	}
	n, err := p2p.New(context.Background(), p2p.Config{Identity: sk, PrivateAddrs: true,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Reachability: p2p.ReachabilityPublic,
		Protocols: []protocol.ID{wire.Protocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// block returns the benchmark's block i: size bytes of i&0xff, with i little-endian first.
func block(i uint64, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i)
	}
	binary.LittleEndian.PutUint32(b, uint32(i))
	return b
}

// writerDurability is the durability of the feeds newWriter makes: the default, or what the
// benchmark's DV_DURABILITY asks for.
var writerDurability = feed.SyncBeforeShare

func newWriter(t tb, dir string, n, size int) (*feed.Feed, []byte) {
	t.Helper()
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	f, err := feed.Create(dir, feed.Options{KeyPair: &kp, Durability: writerDurability})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	appendBlocks(t, f, 0, n, size)
	return f, seed
}

func appendBlocks(t tb, f *feed.Feed, from, n, size int) {
	t.Helper()
	const batch = 256
	for i := 0; i < n; i += batch {
		var bs [][]byte
		for j := i; j < n && j < i+batch; j++ {
			bs = append(bs, block(uint64(from+j), size))
		}
		if _, err := f.Append(bs...); err != nil {
			t.Fatal(err)
		}
	}
}

func newReader(t tb, dir string, key [32]byte) *feed.Feed {
	t.Helper()
	f, err := feed.Create(dir, feed.Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fakeClock is go-clock's mock clock with one addition: Set moves the time without firing
// the timers that came due (a timer goroutine that runs late), which Advance then fires.
type fakeClock struct {
	*clock.Mock
	mu   sync.Mutex
	late time.Duration // how far Now is ahead of the mock's timers
}

func newFakeClock() *fakeClock {
	m := clock.NewMock()
	m.Set(time.Unix(1_800_000_000, 0))
	return &fakeClock{Mock: m}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Mock.Now().Add(c.late)
}

// Set moves the clock without firing timers.
func (c *fakeClock) Set(d time.Duration) {
	c.mu.Lock()
	c.late += d
	c.mu.Unlock()
}

// Advance moves the clock and fires the timers that came due (also those Set passed).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Mock.Add(c.late + d)
	c.late = 0
}

// testGate is a gate whose answers the test sets.
type testGate struct {
	mu        sync.Mutex
	allow     map[peer.ID]Allowance
	checks    int
	delivered map[peer.ID][]uint64
}

func newTestGate() *testGate {
	return &testGate{allow: map[peer.ID]Allowance{}, delivered: map[peer.ID][]uint64{}}
}

func (g *testGate) set(p peer.ID, a Allowance) {
	g.mu.Lock()
	g.allow[p] = a
	g.mu.Unlock()
}

func (g *testGate) Check(_ context.Context, p peer.ID) (Allowance, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks++
	return g.allow[p], nil
}

func (g *testGate) Delivered(p peer.ID, i uint64, _ int) {
	g.mu.Lock()
	g.delivered[p] = append(g.delivered[p], i)
	g.mu.Unlock()
}

func (g *testGate) deliveredTo(p peer.ID) []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.delivered[p]...)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type viewerRig struct {
	node   *p2p.Node
	feed   *feed.Feed
	viewer *Viewer
	cancel context.CancelFunc
	done   chan error
	blocks chan uint64
	access chan wire.Access
	apps   chan []byte
}

// startViewer runs a viewer of seller's feed until the test ends.
func startViewer(t testing.TB, node *p2p.Node, seller peer.AddrInfo, key [32]byte, live bool) *viewerRig {
	t.Helper()
	return startViewerWith(t, node, seller, key, live, nil)
}

func startViewerWith(t testing.TB, node *p2p.Node, seller peer.AddrInfo, key [32]byte, live bool, opt func(*ViewerConfig)) *viewerRig {
	t.Helper()
	if node == nil {
		node = newNode(t, nil)
	}
	r := &viewerRig{node: node, feed: newReader(t, filepath.Join(t.TempDir(), "viewer"), key),
		done: make(chan error, 1), blocks: make(chan uint64, 1<<16), access: make(chan wire.Access, 64),
		apps: make(chan []byte, 16)}
	cfg := ViewerConfig{Dialer: node, Seller: seller, Feed: r.feed, Live: live,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		OnBlock:  func(i uint64, _ []byte) { r.blocks <- i },
		OnAccess: func(a wire.Access) { r.access <- a },
		OnApp:    func(m []byte) { r.apps <- m },
	}
	if opt != nil {
		opt(&cfg)
	}
	v, err := NewViewer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.viewer = v
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- v.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *viewerRig) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

func (r *viewerRig) waitAccess(t testing.TB, want wire.AccessState) wire.Access {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case a := <-r.access:
			if a.State == want {
				return a
			}
		case <-timeout:
			t.Fatalf("no %s access decision within 20 s (last %+v)", want, r.viewer.Access())
		}
	}
}

func startSeller(t testing.TB, node *p2p.Node, f Feed, gate Gate, clock Clock) *Seller {
	t.Helper()
	s, err := NewSeller(SellerConfig{Host: node.Host(), Feed: f, Gate: gate, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (r *viewerRig) viewerStatus() wire.Status { return r.viewer.Status() }
