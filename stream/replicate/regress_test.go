package replicate

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Viewer.Send accepts wire.MaxApp bytes, so the seller's reader must take a frame of the type
// byte plus MaxApp (it once capped frames at 64 KiB including the type byte, ending the session).
func TestAppMessageOfExactlyMaxAppReachesSeller(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 1, 16)
	sn := newNode(t, nil)
	got := make(chan int, 1)
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, Gate: newTestGate(), Logger: quietLogger(),
		OnApp: func(_ peer.ID, msg []byte) { got <- len(msg) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), false)
	r.waitAccess(t, wire.Refused)
	if err := r.viewer.Send(make([]byte, wire.MaxApp)); err != nil {
		t.Fatalf("Send refused a message of exactly MaxApp: %v", err)
	}
	select {
	case n := <-got:
		t.Logf("seller got %d bytes", n)
	case <-time.After(3 * time.Second):
		t.Fatalf("a %d-byte app message (allowed by Viewer.Send) never reached OnApp; sessions made: %d",
			wire.MaxApp, r.viewer.nsess.Load())
	}
}

// A manifest-mode feed (Hypercore v11, `feed create -mode manifest`) replicates to a viewer
// that knows only the key from the card: the seller's first upgrade carries the manifest.
func TestManifestModeFeedReplicatesToKeyOnlyViewer(t *testing.T) {
	seed := make([]byte, 32)
	seed[0] = 7
	kp, _ := feed.KeyPairFromSeed(seed)
	sf, err := feed.Create(filepath.Join(t.TempDir(), "seller"), feed.Options{KeyPair: &kp, Mode: feed.Manifest})
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	appendBlocks(t, sf, 0, 10, 100)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	r.waitAccess(t, wire.Free)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.viewer.Fetch(ctx, 0, 10); err != nil {
		t.Fatalf("manifest-mode feed did not replicate: %v (viewer sessions %d, stored %d)",
			err, r.viewer.nsess.Load(), r.feed.Stored())
	}
}

// countingFeed counts the proofs the seller makes for the live push's first request.
type countingFeed struct {
	*feed.Feed
	upgrades atomic.Int64
}

func (c *countingFeed) Proof(r feed.Request) (*feed.Proof, error) {
	p, _, err := c.ProofLength(r)
	return p, err
}

func (c *countingFeed) ProofLength(r feed.Request) (*feed.Proof, uint64, error) {
	if r.Upgrade != nil && r.Block != nil {
		c.upgrades.Add(1)
	}
	return c.Feed.ProofLength(r)
}

func (c *countingFeed) ProofPending(r feed.Request) (*feed.PendingProof, error) {
	if r.Upgrade != nil && r.Block != nil {
		c.upgrades.Add(1)
	}
	return c.Feed.ProofPending(r)
}

// The shared live-proof cache is single flight: the sessions woken by one append wait for the
// first one's proof instead of each making it (once 400 proofs for 20 appends to 20 viewers).
func TestLiveProofMadeOncePerAppendForManyViewers(t *testing.T) {
	wf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	cf := &countingFeed{Feed: wf}
	sn := newNode(t, nil)
	startSeller(t, sn, cf, nil, nil)
	const viewers = 20
	var rigs []*viewerRig
	for i := 0; i < viewers; i++ {
		h := lightHost()
		t.Cleanup(func() { h.Close() })
		rigs = append(rigs, startViewerWith(t, nil, sn.AddrInfo(), wf.Key(), true, func(c *ViewerConfig) {
			c.Dialer = hostDialer{h}
			c.Logger = quietLogger()
		}))
	}
	// Everyone at the live edge first.
	appendBlocks(t, wf, 10, 1, 1024)
	waitFor(t, 20*time.Second, "all viewers at 11", func() bool {
		for _, r := range rigs {
			if r.feed.Length() < 11 {
				return false
			}
		}
		return true
	})
	const appends = 20
	before := cf.upgrades.Load()
	for i := 0; i < appends; i++ {
		appendBlocks(t, wf, 11+i, 1, 16<<10)
		waitFor(t, 20*time.Second, "live block everywhere", func() bool {
			for _, r := range rigs {
				if !r.feed.Has(uint64(11 + i)) {
					return false
				}
			}
			return true
		})
	}
	made := cf.upgrades.Load() - before
	t.Logf("%d appends, %d viewers: the seller made %d live proofs (ideal %d)", appends, viewers, made, appends)
	if made > 2*appends {
		t.Fatalf("proof cache missed: %d proofs for %d appends (%.1f per append)", made, appends, float64(made)/appends)
	}
}

// sizeGate is free and sums the bytes it is told were delivered.
type sizeGate struct {
	mu    sync.Mutex
	bytes int
}

func (g *sizeGate) Check(context.Context, peer.ID) (Allowance, error) {
	return Allowance{Free: true}, nil
}
func (g *sizeGate) Delivered(_ peer.ID, _ uint64, n int) {
	g.mu.Lock()
	g.bytes += n
	g.mu.Unlock()
}
func (g *sizeGate) total() int { g.mu.Lock(); defer g.mu.Unlock(); return g.bytes }

// Delivered (billing) and the per-peer counters follow what reached the stream, not what
// entered the send loop's buffer: a connection that drops before the flush bills nothing.
type deadWriter struct{}

func (deadWriter) Write([]byte) (int, error) { return 0, errors.New("stream reset") }

func TestDeliveredOnlyAfterBytesReachStream(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 2, 1024)
	gate := &sizeGate{}
	s := &Seller{cfg: SellerConfig{Feed: sf, Gate: gate, Clock: clock.New(), MaxLiveLag: 90}}
	appendBlocks(t, sf, 2, 8, 1024) // one append of 8 blocks
	h := sf.Head()
	s.head.Store(&h)
	ss := &sellerSession{s: s, c: &peerCounters{}, peer: peer.ID("viewer"), decided: true,
		allow: Allowance{Free: true}, follow: true, vlenHint: 2, hinted: true}
	l := &sendLoop{ss: ss, w: wire.NewWriter(deadWriter{})}
	err := l.pushLive()
	ferr := l.flush()
	t.Logf("pushLive: %v; flush: %v; billed %d bytes; stats %d blocks, %d bytes sent", err, ferr, gate.total(), ss.c.blocks.Load(), ss.c.sent.Load())
	if ferr == nil {
		t.Fatal("flush to a dead stream succeeded")
	}
	if gate.total() > 0 || ss.c.blocks.Load() != 0 || ss.c.sent.Load() != 0 {
		t.Fatalf("nothing reached the stream (%v) yet the gate was told %d block bytes were delivered (stats: %d blocks, %d bytes)",
			ferr, gate.total(), ss.c.blocks.Load(), ss.c.sent.Load())
	}
	// The same blocks to a live stream are billed once flushed, each once.
	gate2 := &sizeGate{}
	s.cfg.Gate = gate2
	ss2 := &sellerSession{s: s, c: &peerCounters{}, peer: peer.ID("viewer"), decided: true,
		allow: Allowance{Free: true}, follow: true, vlenHint: 2, hinted: true}
	l2 := &sendLoop{ss: ss2, w: wire.NewWriter(&clockWriter{c: newFakeClock()})}
	if err := l2.pushLive(); err != nil {
		t.Fatal(err)
	}
	if gate2.total() != 0 {
		t.Fatalf("billed %d bytes while they were still in the buffer", gate2.total())
	}
	if err := l2.flush(); err != nil {
		t.Fatal(err)
	}
	if gate2.total() != 8*1024 || ss2.c.blocks.Load() != 8 {
		t.Fatalf("after the flush: billed %d bytes, %d blocks; want 8 blocks of 1024", gate2.total(), ss2.c.blocks.Load())
	}
}

// A block checked as allowed and buffered must not leave once the deadline has passed: the
// flush refuses (the session ends) rather than send it late. (On a real stream the write
// deadline set to the viewer's deadline stops a write blocked on flow control too.)
type clockWriter struct {
	c     *fakeClock
	until time.Time
	late  int
}

func (w *clockWriter) Write(b []byte) (int, error) {
	if !w.c.Now().Before(w.until) {
		w.late += len(b)
	}
	return len(b), nil
}

func TestNoBufferedBytesLeaveAfterDeadline(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 2, 1024)
	clock := newFakeClock()
	until := clock.Now().Add(time.Minute)
	s := &Seller{cfg: SellerConfig{Feed: sf, Gate: &sizeGate{}, Clock: clock, MaxLiveLag: 90}}
	appendBlocks(t, sf, 2, 8, 1024)
	h := sf.Head()
	s.head.Store(&h)
	ss := &sellerSession{s: s, c: &peerCounters{}, peer: peer.ID("viewer"), decided: true,
		allow: Allowance{Until: until}, follow: true, vlenHint: 2, hinted: true}
	cw := &clockWriter{c: clock, until: until}
	l := &sendLoop{ss: ss, w: wire.NewWriter(cw)}
	if err := l.pushLive(); err != nil {
		t.Fatal(err)
	}
	clock.Set(61 * time.Second) // the deadline passes before the loop flushes
	err := l.flush()
	t.Logf("flush after the deadline: %v", err)
	if cw.late > 0 {
		t.Fatalf("%d bytes (8 blocks with proofs) reached the stream after the viewer's deadline", cw.late)
	}
}

// Sessions one after the other share the live proof (the key matches).
func TestLiveProofCacheSharedBySequentialSessions(t *testing.T) {
	wf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	cf := &countingFeed{Feed: wf}
	s := &Seller{cfg: SellerConfig{Feed: cf, Gate: &sizeGate{}, Clock: clock.New(), MaxLiveLag: 90}}
	appendBlocks(t, wf, 10, 1, 1024)
	h := wf.Head()
	s.head.Store(&h)
	for i := 0; i < 5; i++ {
		ss := &sellerSession{s: s, c: &peerCounters{}, peer: peer.ID("v"), decided: true,
			allow: Allowance{Free: true}, follow: true, vlenHint: 10, hinted: true}
		l := &sendLoop{ss: ss, w: wire.NewWriter(&clockWriter{c: newFakeClock()})}
		if err := l.pushLive(); err != nil {
			t.Fatal(err)
		}
	}
	if n := cf.upgrades.Load(); n != 1 {
		t.Fatalf("5 sequential sessions made %d proofs", n)
	}
}

// A second session from the same peer (a stale one after an unclean disconnect, or a client
// that opens two) replaces the first: each block is served and billed once.
func TestSecondSessionFromPeerReplacesFirst(t *testing.T) {
	gate := newTestGate()
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 4, 1024)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, gate, nil)
	hn := newNode(t, nil)
	gate.set(hn.ID(), Allowance{Free: true})
	for i := 0; i < 2; i++ {
		c := dialRaw(t, hn, sn.AddrInfo())
		c.frame(t, wire.TStatus, wire.Status{Length: 4, Flags: wire.StatusLive}.AppendBinary)
	}
	time.Sleep(300 * time.Millisecond)
	appendBlocks(t, sf, 4, 5, 1024)
	waitFor(t, 5*time.Second, "deliveries", func() bool { return len(gate.deliveredTo(hn.ID())) >= 5 })
	time.Sleep(300 * time.Millisecond)
	if got := gate.deliveredTo(hn.ID()); len(got) != 5 {
		t.Fatalf("5 blocks appended, the gate was told of %d deliveries to one peer: %v", len(got), got)
	}
}

// A viewer's counters are dropped when its last session ends (the map of every peer ever seen
// grew without bound), and its connection is protected from the connection manager only while
// it is allowed.
func TestPeerStatsDroppedWithLastSession(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 5, 1024)
	sn := newNode(t, nil)
	seller := startSeller(t, sn, sf, nil, nil)
	r := startViewer(t, nil, sn.AddrInfo(), sf.Key(), true)
	vid := r.node.ID()
	waitFor(t, 10*time.Second, "blocks counted", func() bool { return seller.Stats(vid).Blocks == 5 })
	if !sn.Host().ConnManager().IsProtected(vid, protectTag) {
		t.Fatal("an allowed viewer's connection is not protected from trimming")
	}
	r.stop()
	waitFor(t, 10*time.Second, "stats dropped", func() bool {
		seller.mu.Lock()
		defer seller.mu.Unlock()
		return len(seller.stats) == 0 && len(seller.sessions) == 0
	})
	if sn.Host().ConnManager().IsProtected(vid, protectTag) {
		t.Fatal("a gone viewer's connection is still protected")
	}
}

// Request id 0 is the seller's own (live pushes, whose proofs are shared among viewers): a
// viewer using it breaks the protocol and its session ends.
func TestViewerRequestIDZeroEndsSession(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 5, 1024)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, nil, nil)
	hn := newNode(t, nil)
	for _, send := range []func(c *rawClient){
		func(c *rawClient) { c.request(t, 0, feed.Request{Block: &feed.BlockRequest{Index: 1}}) },
		func(c *rawClient) { c.frame(t, wire.TRange, wire.Range{ID: 0, Start: 0, End: 2}.AppendBinary) },
	} {
		c := dialRaw(t, hn, sn.AddrInfo())
		send(c)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the seller kept a session that used request id 0")
		}
		if types, _ := c.received(t); types[wire.TData] != 0 {
			t.Fatalf("the seller answered request id 0: %v", types)
		}
	}
}

// A viewer that stops reading does not hold its session for ever: the write blocked on its
// flow control fails at the stall timeout (free stream) or at once at its deadline (paid
// time), and the session ends. Before, no write had a deadline.
func TestStalledViewerSessionEnds(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 0, 0)
	appendBlocks(t, sf, 0, 48, 1<<20) // far more than the stream's windows and socket buffers
	for _, c := range []struct {
		name  string
		allow func() Allowance
		stall time.Duration
	}{
		{"free, stall timeout", func() Allowance { return Allowance{Free: true} }, time.Second},
		{"paid, deadline", func() Allowance { return Allowance{Until: time.Now().Add(time.Second)} }, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			gate := newTestGate()
			sn := newNode(t, nil)
			s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, Gate: gate, Logger: quietLogger(), StallTimeout: c.stall})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			hn := newNode(t, nil)
			gate.set(hn.ID(), c.allow())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hn.Connect(ctx, sn.AddrInfo()); err != nil {
				t.Fatal(err)
			}
			str, err := hn.Host().NewStream(ctx, sn.ID(), wire.Protocol)
			if err != nil {
				t.Fatal(err)
			}
			defer str.Reset()
			w := wire.NewWriter(str)
			if err := w.Frame(wire.TStatus, wire.Status{Flags: wire.StatusLive}.AppendBinary); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			// Never read.
			waitFor(t, 5*time.Second, "session up", func() bool { return len(s.Viewers()) == 1 })
			t0 := time.Now()
			waitFor(t, 10*time.Second, "stalled session ended", func() bool { return len(s.Viewers()) == 0 })
			t.Logf("stalled session ended after %v", time.Since(t0))
		})
	}
}

// A refused peer cannot make the seller ask the wallet as fast as it likes: its gate checks
// are spaced by checkInterval, and its app messages beyond the session's rate are dropped.
func TestRefusedPeerRateLimited(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 2, 100)
	gate := newTestGate() // refuses everyone
	var apps atomic.Int64
	sn := newNode(t, nil)
	s, err := NewSeller(SellerConfig{Host: sn.Host(), Feed: sf, Gate: gate, Logger: quietLogger(),
		OnApp: func(peer.ID, []byte) { apps.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hn := newNode(t, nil)
	c := dialRaw(t, hn, sn.AddrInfo())
	waitFor(t, 5*time.Second, "first check", func() bool { gate.mu.Lock(); defer gate.mu.Unlock(); return gate.checks == 1 })
	t0 := time.Now()
	for time.Since(t0) < time.Second {
		s.Recheck(hn.ID())
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 200; i++ {
		c.frame(t, wire.TApp, func(b []byte) ([]byte, error) { return append(b, "invoice please"...), nil })
	}
	time.Sleep(200 * time.Millisecond)
	elapsed := time.Since(t0)
	gate.mu.Lock()
	checks := gate.checks
	gate.mu.Unlock()
	t.Logf("in %v: %d gate checks, %d of 200 app messages passed on", elapsed, checks, apps.Load())
	if max := 2 + int(elapsed/checkInterval); checks > max {
		t.Fatalf("%d gate checks for a refused peer in %v (at most %d)", checks, elapsed, max)
	}
	if max := int64(2*sessionAppRate) + int64(elapsed.Seconds()*sessionAppRate) + 1; apps.Load() > max || apps.Load() == 0 {
		t.Fatalf("%d app messages passed on (want 1 to %d)", apps.Load(), max)
	}
}

// The viewer's queue between reading and verifying is bounded in bytes (it was bounded only
// in frames: 32 frames of up to 4 MiB each); one frame larger than the budget still passes
// when nothing else is held.
func TestViewerFrameQueueBoundedByBytes(t *testing.T) {
	b := newByteBudget(1000)
	if !b.acquire(600) {
		t.Fatal("first frame refused")
	}
	got := make(chan bool, 1)
	go func() { got <- b.acquire(600) }()
	select {
	case <-got:
		t.Fatal("a frame over the byte budget was queued")
	case <-time.After(100 * time.Millisecond):
	}
	b.release(600)
	if !<-got {
		t.Fatal("frame not queued once the budget had room")
	}
	b.release(600)
	if !b.acquire(5000) {
		t.Fatal("a frame larger than the whole budget must pass when nothing is held")
	}
	go func() { got <- b.acquire(1) }()
	time.Sleep(20 * time.Millisecond)
	b.close()
	if <-got {
		t.Fatal("acquire after close succeeded")
	}
}
