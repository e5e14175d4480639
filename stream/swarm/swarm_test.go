package swarm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/goleak"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// swarmLeakOptions lists goroutines that libp2p and its dependencies start once per process
// and never stop, so that goleak reports only goroutines our code leaves behind.
func swarmLeakOptions() []goleak.Option {
	return xtest.LeakOptions()
}

// checkLeaks registers the goroutine-leak check first, so that it runs after every other
// cleanup of the test (nodes closed, swarms stopped).
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, swarmLeakOptions()...) })
}

func quiet() *slog.Logger {
	if os.Getenv("SWARM_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newNode(t *testing.T, bootstrap ...peer.AddrInfo) *p2p.Node {
	t.Helper()
	n := nodeOn(t, newIdentity(t), "/ip4/127.0.0.1/tcp/0", bootstrap...)
	t.Cleanup(func() { n.Close() })
	return n
}

// newIdentity is a new node identity.
func newIdentity(t *testing.T) crypto.PrivKey {
	t.Helper()
	id, err := p2p.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := p2p.ParseIdentity(id)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// nodeOn is a node with identity sk listening on listen; the caller closes it.
func nodeOn(t *testing.T, sk crypto.PrivKey, listen string, bootstrap ...peer.AddrInfo) *p2p.Node {
	t.Helper()
	n, err := p2p.New(context.Background(), p2p.Config{Identity: sk, PrivateAddrs: true,
		ListenAddrs: []string{listen}, Reachability: p2p.ReachabilityPublic,
		Protocols: []protocol.ID{wire.Protocol, HaveProtocol}, Bootstrap: bootstrap, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// block i: size bytes of i&0xff with i little-endian first.
func block(i uint64, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i)
	}
	binary.LittleEndian.PutUint32(b, uint32(i))
	return b
}

func newWriter(t *testing.T, n int) *feed.Feed {
	t.Helper()
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	// SyncEveryAppend: every append is on disk before it is shared, so the seller pushes plain
	// data, not early data. Under SyncBeforeShare, an append landing while an early push's
	// proof is made gives a signature for a longer length than the early data's upgrade, and
	// replicate.Viewer drops the seller's connection for it ("the signature is for fork 0
	// length 71, the early data for fork 0 length 70"; a bug in stream/replicate, reported):
	// the churn it causes among the seller's direct viewers is not what these tests measure.
	f, err := feed.Create(filepath.Join(t.TempDir(), "seller"), feed.Options{KeyPair: &kp, Durability: feed.SyncEveryAppend, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for i := range n {
		if _, err := f.Append(block(uint64(i), 1024)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func newReader(t *testing.T, key [32]byte) *feed.Feed {
	t.Helper()
	f, err := feed.Create(filepath.Join(t.TempDir(), "reader"), feed.Options{Key: &key, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// appender appends a block every 33 ms (30 a second) until the test ends, and remembers
// when each block was appended.
type appender struct {
	mu sync.Mutex
	at map[uint64]time.Time
}

func (a *appender) when(i uint64) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[i]
	return t, ok
}

func startAppending(t *testing.T, f *feed.Feed) *appender {
	t.Helper()
	a := &appender{at: map[uint64]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(33 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			i := f.Length()
			now := time.Now()
			if _, err := f.Append(block(i, 1024)); err != nil {
				return
			}
			a.mu.Lock()
			a.at[i] = now
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func serveOrigin(t *testing.T, n *p2p.Node, f *feed.Feed, maxViewers int) *Server {
	t.Helper()
	s, err := Serve(ServeConfig{Host: n.Host(), Feed: f, Origin: true, MaxViewers: maxViewers, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type swarmRig struct {
	node *p2p.Node
	sw   *Swarm
	mu   sync.Mutex
	got  map[uint64]time.Time // block → when it was verified and stored here
}

func (r *swarmRig) arrived(i uint64) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.got[i]
	return t, ok
}

// startSwarm runs a relaying viewer of seller's feed until the test ends.
func startSwarm(t *testing.T, seller peer.AddrInfo, key [32]byte, opt func(*Config)) *swarmRig {
	t.Helper()
	return startSwarmOn(t, newNode(t), seller, key, opt)
}

func startSwarmOn(t *testing.T, node *p2p.Node, seller peer.AddrInfo, key [32]byte, opt func(*Config)) *swarmRig {
	t.Helper()
	r := &swarmRig{node: node, got: map[uint64]time.Time{}}
	cfg := Config{Node: r.node, Feed: newReader(t, key), Seller: seller, Relay: true, Logger: quiet(),
		OnBlock: func(i uint64, _ []byte) {
			r.mu.Lock()
			r.got[i] = time.Now()
			r.mu.Unlock()
		}}
	if opt != nil {
		opt(&cfg)
	}
	sw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.sw = sw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("swarm ended with %v", err)
		}
	})
	return r
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkBlocks checks that every block r holds of [from, to) is the seller's.
func checkBlocks(t *testing.T, f replicate.Feed, from, to uint64) {
	t.Helper()
	ff := f.(*feed.Feed)
	for i := from; i < to; i++ {
		if !ff.Has(i) {
			continue
		}
		if got, err := ff.Get(i); err != nil || !bytes.Equal(got, block(i, 1024)) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
}

// A seller serving at most N viewers directly sends the next one to the relays among them,
// and that viewer gets the live stream through a relay, every block verified against the
// feed key: N=1 is the chain seller → A → B.
func TestSellerRedirectsPastMaxViewersToRelays(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(map[int]string{1: "chain", 2: "two direct viewers"}[n], func(t *testing.T) {
			checkLeaks(t)
			sf := newWriter(t, 60)
			sn := newNode(t)
			srv := serveOrigin(t, sn, sf, n)
			app := startAppending(t, sf)
			var direct []*swarmRig
			for range n {
				a := startSwarm(t, sn.AddrInfo(), sf.Key(), nil)
				waitFor(t, 20*time.Second, "a direct viewer served by the seller", func() bool {
					st := a.sw.Stats()
					return st.Depth == 1 && st.ActiveIsSeller
				})
				direct = append(direct, a)
			}
			// The seller knows its viewers relay (their have links) before the next one comes.
			waitFor(t, 10*time.Second, "the seller's have links from its viewers", func() bool {
				k := 0
				for _, h := range srv.haves.all() {
					if h.Relay && h.Depth == 1 {
						k++
					}
				}
				return k == n
			})
			b := startSwarm(t, sn.AddrInfo(), sf.Key(), nil)
			ids := make([]peer.ID, 0, n)
			for _, a := range direct {
				ids = append(ids, a.node.ID())
			}
			waitFor(t, 20*time.Second, "the extra viewer receiving through a relay", func() bool {
				st := b.sw.Stats()
				return st.Depth == 2 && slices.Contains(ids, st.Active) && b.sw.Connected()
			})
			if srv.TurnedAway() == 0 {
				t.Fatal("the seller turned nobody away")
			}
			// (A direct viewer may be reconnecting at this moment: at most n, never B.)
			if vs := srv.Seller().Viewers(); len(vs) > n || slices.Contains(vs, b.node.ID()) {
				t.Fatalf("the seller serves %v directly, want at most the first %d", vs, n)
			}
			// Live blocks reach B through the relay; compare each block's arrival at B with its
			// arrival at the relay, measured in the same run.
			from := sf.Length()
			waitFor(t, 20*time.Second, "30 live blocks at the extra viewer", func() bool { return b.sw.Feed().Length() >= from+30 })
			relay := direct[slices.Index(ids, b.sw.Stats().Active)]
			var extra []time.Duration
			var edge []time.Duration
			for i := from; i < from+30; i++ {
				tb, okb := b.arrived(i)
				ta, oka := relay.arrived(i)
				t0, ok0 := app.when(i)
				if okb && oka && ok0 {
					extra = append(extra, tb.Sub(ta))
					edge = append(edge, tb.Sub(t0))
				}
			}
			if len(extra) < 20 {
				t.Fatalf("only %d of 30 live blocks arrived one by one at both", len(extra))
			}
			slices.Sort(extra)
			slices.Sort(edge)
			t.Logf("append → B: p50 %v, max %v; relay → B: p50 %v, max %v (%d blocks)",
				edge[len(edge)/2], edge[len(edge)-1], extra[len(extra)/2], extra[len(extra)-1], len(extra))
			checkBlocks(t, b.sw.Feed(), 0, sf.Length())
			if st := relay.sw.Stats(); st.Downstreams < 1 || st.RelayedBytes == 0 {
				t.Fatalf("the relay's figures: %+v", st)
			}
		})
	}
}

// tampered serves a verified copy with every block's first byte flipped: a lying relay.
type tampered struct {
	*feed.Feed
	proofs atomic.Int64
}

func flip(p *feed.Proof) *feed.Proof {
	if p == nil || p.Block == nil {
		return p
	}
	q := *p
	b := *p.Block
	b.Value = append([]byte(nil), b.Value...)
	if len(b.Value) > 0 {
		b.Value[0] ^= 0xff
	}
	q.Block = &b
	return &q
}

func (f *tampered) ProofLength(r feed.Request) (*feed.Proof, uint64, error) {
	f.proofs.Add(1)
	p, n, err := f.Feed.ProofLength(r)
	return flip(p), n, err
}

func (f *tampered) ProofPending(r feed.Request) (*feed.PendingProof, error) {
	f.proofs.Add(1)
	pp, err := f.Feed.ProofPending(r)
	if err == nil {
		pp.Proof = flip(pp.Proof)
	}
	return pp, err
}

// A relay that sends blocks failing verification is dropped, banned and never asked again;
// the viewer stores none of its blocks and goes on with another source (here the seller,
// once it has room).
func TestLyingRelayIsBannedAndReplaced(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	srv := serveOrigin(t, sn, sf, 1)
	// The liar holds a verified copy of the first 60 blocks.
	ln := newNode(t)
	lf := newReader(t, sf.Key())
	{
		v, err := replicate.NewViewer(replicate.ViewerConfig{Dialer: ln, Seller: sn.AddrInfo(), Feed: lf, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		done := make(chan error, 1)
		go func() { done <- v.Run(ctx) }()
		if err := v.Fetch(ctx, 0, 60); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-done
	}
	liar := &tampered{Feed: lf}
	ls, err := Serve(ServeConfig{Host: ln.Host(), Feed: liar, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	startAppending(t, sf)
	// A plain viewer takes the seller's only place.
	x := startPlain(t, sn.AddrInfo(), sf.Key())
	waitFor(t, 10*time.Second, "the plain viewer at the seller", func() bool { return len(srv.Seller().Viewers()) == 1 })

	b := startSwarm(t, sn.AddrInfo(), sf.Key(), func(c *Config) { c.Hints = []peer.AddrInfo{ln.AddrInfo()} })
	waitFor(t, 20*time.Second, "the liar banned", func() bool { return b.sw.Banned(ln.ID()) })
	// Proofs asked for before the ban may still be in the liar's queue: count from when its
	// session with the viewer has closed.
	waitFor(t, 10*time.Second, "the liar's session closed", func() bool {
		s := ls.Seller()
		return s == nil || len(s.Viewers()) == 0
	})
	asked := liar.proofs.Load()
	if asked == 0 {
		t.Fatal("the liar was banned without sending anything")
	}
	if n := b.sw.Feed().(*feed.Feed).Stored(); n != 0 {
		t.Fatalf("the viewer stored %d blocks while only the liar served it", n)
	}
	// The seller gets room; the viewer goes on from it.
	x.stop()
	from := sf.Length()
	waitFor(t, 30*time.Second, "the stream from the seller after the ban", func() bool {
		return b.sw.Stats().ActiveIsSeller && b.sw.Feed().Length() >= from+30
	})
	checkBlocks(t, b.sw.Feed(), 0, sf.Length())
	if n := liar.proofs.Load(); n != asked {
		t.Fatalf("the banned liar was asked for %d more proofs", n-asked)
	}
	// Neither a source nor a standby again (the liar may still dial us: that costs it, not us).
	b.sw.mu.Lock()
	_, cand := b.sw.cands[ln.ID()]
	b.sw.mu.Unlock()
	if cand || b.sw.haves.linked(ln.ID()) {
		t.Fatalf("the banned liar is still a candidate (%v) or linked", cand)
	}
	if st := b.sw.Stats(); st.Banned != 1 || st.Switches < 1 {
		t.Fatalf("figures after the ban: %+v", st)
	}
}

// plainRig is a replicate.Viewer of the seller (no swarm), live, stopped by stop or at the
// end of the test.
type plainRig struct {
	node   *p2p.Node
	feed   *feed.Feed
	cancel context.CancelFunc
	done   chan error
}

func startPlain(t *testing.T, seller peer.AddrInfo, key [32]byte) *plainRig {
	t.Helper()
	r := &plainRig{node: newNode(t), feed: newReader(t, key), done: make(chan error, 1)}
	v, err := replicate.NewViewer(replicate.ViewerConfig{Dialer: r.node, Seller: seller, Feed: r.feed, Live: true, Logger: quiet(),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- v.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *plainRig) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// relayRig is a relay the test controls: a verified copy fed by a plain viewer of the
// seller, served by a Server; stopping the feeding leaves it serving an ever staler copy.
type relayRig struct{ *plainRig }

func startRelay(t *testing.T, seller peer.AddrInfo, key [32]byte) relayRig {
	t.Helper()
	r := startPlain(t, seller, key)
	srv, err := Serve(ServeConfig{Host: r.node.Host(), Feed: r.feed, Logger: quiet(), depth: func() uint8 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return relayRig{r}
}

// A source that falls behind is replaced by a fresher standby: the viewer's have links show
// the standby ahead, and after SlowFor the viewer moves to it and catches up.
func TestSlowRelayReplacedByFresherStandby(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	serveOrigin(t, sn, sf, 2)
	startAppending(t, sf)
	r1 := startRelay(t, sn.AddrInfo(), sf.Key())
	r2 := startRelay(t, sn.AddrInfo(), sf.Key())
	relays := map[peer.ID]relayRig{r1.node.ID(): r1, r2.node.ID(): r2}
	for _, r := range relays {
		waitFor(t, 20*time.Second, "a relay at the live edge", func() bool { return r.feed.Length()+5 >= sf.Length() })
	}
	b := startSwarm(t, sn.AddrInfo(), sf.Key(), func(c *Config) {
		c.Hints = []peer.AddrInfo{r1.node.AddrInfo(), r2.node.AddrInfo()}
	})
	var first peer.ID
	waitFor(t, 20*time.Second, "the viewer on a relay at the live edge, with the other as standby", func() bool {
		st := b.sw.Stats()
		first = st.Active
		return relays[first].plainRig != nil && b.sw.Connected() && b.sw.Feed().Length()+5 >= sf.Length() && st.Upstreams == 2
	})
	// The source in use stops receiving: it serves an ever staler copy.
	relays[first].stop()
	stalled := time.Now()
	var second peer.ID
	waitFor(t, 20*time.Second, "the viewer moved to the fresher standby", func() bool {
		second = b.sw.Stats().Active
		return second != first && relays[second].plainRig != nil && b.sw.Connected()
	})
	moved := time.Since(stalled)
	from := sf.Length()
	waitFor(t, 20*time.Second, "the viewer back at the live edge", func() bool { return b.sw.Feed().Length() >= from+10 })
	checkBlocks(t, b.sw.Feed(), 0, sf.Length())
	if st := b.sw.Stats(); st.Switches < 1 || st.Banned != 0 {
		t.Fatalf("figures: %+v", st)
	}
	t.Logf("moved to the fresher standby %v after its source stalled (switch grace %v, slow for %v)", moved.Round(time.Millisecond), switchGrace, defaultSlowFor)
}

// A viewer whose card names a seller it cannot reach finds a relay of the stream on the DHT
// (the relay announced itself under the feed's discovery key) and watches through it.
func TestRelayFoundOnTheDHT(t *testing.T) {
	checkLeaks(t)
	boot := newNode(t)
	sf := newWriter(t, 60)
	sn := newNode(t, boot.AddrInfo())
	serveOrigin(t, sn, sf, 4)
	startAppending(t, sf)
	an := newNode(t, boot.AddrInfo())
	a := startSwarmOn(t, an, sn.AddrInfo(), sf.Key(), func(c *Config) { c.Routing = an.DHT() })
	waitFor(t, 20*time.Second, "the relay served by the seller", func() bool { return a.sw.Stats().Depth == 1 })
	// The card B holds names a seller that is gone (no such peer at that address).
	gone := newNode(t)
	goneInfo := gone.AddrInfo()
	gone.Close()
	bn := newNode(t, boot.AddrInfo())
	b := startSwarmOn(t, bn, goneInfo, sf.Key(), func(c *Config) { c.Routing = bn.DHT() })
	waitFor(t, 60*time.Second, "the viewer watching through the relay it found on the DHT", func() bool {
		st := b.sw.Stats()
		return st.Active == an.ID() && st.Depth == 2 && b.sw.Connected()
	})
	from := sf.Length()
	waitFor(t, 20*time.Second, "live blocks through the relay", func() bool { return b.sw.Feed().Length() >= from+10 })
	checkBlocks(t, b.sw.Feed(), 0, sf.Length())
}

// Inbound have links past the cap are reset; links already up and our own are kept.
func TestHaveLinksInboundCap(t *testing.T) {
	checkLeaks(t)
	a := newNode(t)
	var disc [32]byte
	hv := newHaves(a.Host(), disc, func() Have { return Have{} }, 2, quiet())
	defer hv.close()
	var others []*haves
	defer func() {
		for _, o := range others {
			o.close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 4 {
		n := newNode(t)
		o := newHaves(n.Host(), disc, func() Have { return Have{Length: uint64(i)} }, 2, quiet())
		others = append(others, o)
		if err := n.Connect(ctx, a.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		if err := o.open(ctx, a.ID()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "two inbound links with their Have", func() bool { return len(hv.all()) == 2 })
	time.Sleep(300 * time.Millisecond) // the refused links are reset, not kept
	hv.mu.Lock()
	n := len(hv.links)
	hv.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d links, want the cap of 2", n)
	}
}

// A tree of viewers: the seller serves one viewer directly and every relay two, so seven
// viewers spread over depths 1 to 3, each through redirects alone; every viewer gets the live
// blocks, verified. The figures (append → verified, per depth) are logged.
func TestTreeOfRelayingViewers(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	srv := serveOrigin(t, sn, sf, 1)
	app := startAppending(t, sf)
	var rigs []*swarmRig
	for i := range 7 {
		r := startSwarm(t, sn.AddrInfo(), sf.Key(), func(c *Config) { c.MaxViewers = 2 })
		waitFor(t, 30*time.Second, "a viewer receiving", func() bool {
			d := r.sw.Stats().Depth
			return r.sw.Connected() && d >= 1 && d != NoDepth && r.sw.Feed().Length()+10 >= sf.Length()
		})
		t.Logf("viewer %d at depth %d", i, r.sw.Stats().Depth)
		rigs = append(rigs, r)
		time.Sleep(300 * time.Millisecond) // its Have reaches the peers it links with
	}
	from := sf.Length()
	waitFor(t, 30*time.Second, "60 live blocks at every viewer", func() bool {
		for _, r := range rigs {
			if r.sw.Feed().Length() < from+60 {
				return false
			}
		}
		return true
	})
	if vs := srv.Seller().Viewers(); len(vs) > 1 {
		t.Fatalf("the seller serves %d viewers directly, want at most 1", len(vs))
	}
	byDepth := map[uint8][]time.Duration{}
	for _, r := range rigs {
		d := r.sw.Stats().Depth
		got := 0
		for i := from; i < from+60; i++ {
			ta, ok := r.arrived(i)
			t0, ok0 := app.when(i)
			if ok && ok0 {
				got++
				byDepth[d] = append(byDepth[d], ta.Sub(t0))
			}
		}
		if got < 54 {
			t.Errorf("a viewer at depth %d got %d of 60 live blocks pushed one by one", d, got)
		}
		checkBlocks(t, r.sw.Feed(), 0, sf.Length())
	}
	for d := uint8(1); d < 8; d++ {
		if ds := byDepth[d]; len(ds) > 0 {
			slices.Sort(ds)
			t.Logf("depth %d: append → verified p50 %v, p99 %v (%d arrivals)", d, ds[len(ds)/2], ds[len(ds)*99/100], len(ds))
		}
	}
	if len(byDepth) < 3 {
		t.Fatalf("viewers at %d depths, want 3 (seller 1, relays 2)", len(byDepth))
	}
	// Copies of the stream the seller uploaded: its replication bytes out ÷ the feed's bytes
	// (the goal: at most 4, whatever the audience).
	time.Sleep(1100 * time.Millisecond) // libp2p's bandwidth meters update every second
	out := sn.ProtocolBandwidth(wire.Protocol).TotalOut
	copies := float64(out) / float64(sf.Head().ByteLength)
	var relayed uint64
	for _, r := range rigs {
		relayed += r.sw.Stats().RelayedBytes
	}
	t.Logf("the seller uploaded %.2f copies of the stream (%d bytes) to 7 viewers; the viewers relayed %d bytes", copies, out, relayed)
	if copies > 4 {
		t.Fatalf("the seller uploaded %.2f copies, want at most 4", copies)
	}
}

// Among stale relays, a viewer's standby links are held: linked, a stale relay's Have ranks
// it below relays not yet heard from, and a viewer that re-linked at every ranking change
// opened links several times a second without ever finding a better standby.
func TestStandbyLinksHeldAmongStaleRelays(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	serveOrigin(t, sn, sf, 8)
	startAppending(t, sf)
	var hints []peer.AddrInfo
	for range 4 {
		r := startRelay(t, sn.AddrInfo(), sf.Key())
		waitFor(t, 20*time.Second, "a relay at the live edge", func() bool { return r.feed.Length()+5 >= sf.Length() })
		r.stop() // it serves an ever staler copy from now on
		hints = append(hints, r.node.AddrInfo())
	}
	waitFor(t, 20*time.Second, "the relays stale", func() bool { return sf.Length() > 60+2*defaultSlowLag })
	v := startSwarm(t, sn.AddrInfo(), sf.Key(), func(c *Config) { c.Hints = hints })
	waitFor(t, 20*time.Second, "the viewer on the seller with two standbys", func() bool {
		st := v.sw.Stats()
		return st.ActiveIsSeller && st.Upstreams == 3 && v.sw.Connected()
	})
	before := v.sw.Stats().LinksOpened
	const span = 6 * time.Second // less than minStandbyLink
	time.Sleep(span)
	st := v.sw.Stats()
	t.Logf("links opened: %d to settle, %d more in %v; %+v", before, st.LinksOpened-before, span, st)
	// A link that broke may be opened again; re-linking at ranking changes opened dozens.
	if n := st.LinksOpened - before; n > 2 {
		t.Fatalf("the viewer opened %d Have links in %v among stale relays, want at most 2", n, span)
	}
	if !st.ActiveIsSeller {
		t.Fatalf("the viewer lost its source: %+v", st)
	}
}

// A viewer served by a relay whose own source is gone (the broadcaster stopped) leaves it: the
// relay keeps the session alive but will send nothing more, so the viewer looks for another
// source and, finding none, is no longer connected (and the app says the broadcaster went
// away) instead of seeming connected to a frozen stream for ever.
func TestViewerLeavesRelayThatLostItsSource(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	srv := serveOrigin(t, sn, sf, 1)
	startAppending(t, sf)
	a := startSwarm(t, sn.AddrInfo(), sf.Key(), nil)
	waitFor(t, 20*time.Second, "the relay served by the seller", func() bool {
		st := a.sw.Stats()
		return st.Depth == 1 && st.ActiveIsSeller
	})
	waitFor(t, 10*time.Second, "the seller's have link from the relay", func() bool {
		for _, h := range srv.haves.all() {
			if h.Relay && h.Depth == 1 {
				return true
			}
		}
		return false
	})
	b := startSwarm(t, sn.AddrInfo(), sf.Key(), nil)
	waitFor(t, 20*time.Second, "the viewer receiving through the relay", func() bool {
		st := b.sw.Stats()
		return st.Depth == 2 && st.Active == a.node.ID() && b.sw.Connected()
	})
	srv.Close()
	sn.Close()
	waitFor(t, 10*time.Second, "the relay without a source", func() bool { return a.sw.Stats().Depth == NoDepth })
	waitFor(t, 4*orphanGrace, "the viewer leaving the relay that lost its source", func() bool {
		st := b.sw.Stats()
		return st.Active != a.node.ID() && !b.sw.Connected()
	})
}

// A relaying viewer holds the stream from when it joined. A viewer fed by one that asks for
// earlier blocks (a seek back, "go to start") is told so by the relay, gets them from the
// seller on a session of their own when the seller has room, and is told at once, in words,
// when it has none (before, it asked the relay again every 100 ms until its caller gave up).
func TestFetchOfHistoryARelayLacks(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	srv := serveOrigin(t, sn, sf, 2)
	if _, err := sf.AppendSync(block(60, 1024)); err != nil { // viewers join from here
		t.Fatal(err)
	}
	startAppending(t, sf)
	direct := func() (*swarmRig, func()) {
		node := newNode(t)
		r := &swarmRig{node: node, got: map[uint64]time.Time{}}
		sw, err := New(Config{Node: node, Feed: newReader(t, sf.Key()), Seller: sn.AddrInfo(), Relay: true, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		r.sw = sw
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); sw.Run(ctx) }()
		stop := func() { cancel(); <-done; node.Close() }
		t.Cleanup(stop)
		waitFor(t, 20*time.Second, "a direct viewer served by the seller", func() bool {
			st := sw.Stats()
			return st.Depth == 1 && st.ActiveIsSeller
		})
		return r, stop
	}
	a, _ := direct()
	_, stopA2 := direct()
	waitFor(t, 10*time.Second, "the seller's have links from both", func() bool {
		k := 0
		for _, h := range srv.haves.all() {
			if h.Relay && h.Depth == 1 {
				k++
			}
		}
		return k == 2
	})
	if af := a.sw.Feed().(*feed.Feed); af.Has(5) {
		t.Fatal("the relay holds the stream's start: it joined live")
	}
	b := startSwarm(t, sn.AddrInfo(), sf.Key(), nil)
	waitFor(t, 20*time.Second, "the extra viewer receiving through a relay", func() bool {
		st := b.sw.Stats()
		return st.Depth == 2 && !st.ActiveIsSeller && b.sw.Connected()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The seller is full: the blocks are not available from anyone B knows, and B is told.
	err := b.sw.Fetch(ctx, 1, 11)
	if !errors.Is(err, replicate.ErrNotHeld) || !strings.Contains(err.Error(), "no room") {
		t.Fatalf("fetching what the relay lacks from a full seller: %v", err)
	}

	// One direct viewer leaves: the seller has room, and serves the history B asks for, while
	// B keeps its relay for the live stream.
	stopA2()
	waitFor(t, 10*time.Second, "the seller to have room", func() bool { return len(srv.Seller().Viewers()) < 2 })
	// Two at once (a seek and the player's read-ahead): the seller keeps one session per peer,
	// so they take turns instead of replacing each other's.
	errs := make(chan error, 2)
	go func() { errs <- b.sw.Fetch(ctx, 1, 11) }()
	go func() { errs <- b.sw.Fetch(ctx, 20, 31) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("fetching what the relay lacks from a seller with room: %v", err)
		}
	}
	checkBlocks(t, b.sw.Feed(), 1, 31)
	for _, i := range []uint64{1, 10, 20, 30} {
		if _, ok := b.arrived(i); !ok {
			t.Fatalf("block %d, fetched from the seller, was not passed to OnBlock (a player waiting for it would not wake)", i)
		}
	}
	bf := b.sw.Feed().(*feed.Feed)
	for i := uint64(1); i < 11; i++ {
		if !bf.Has(i) {
			t.Fatalf("block %d missing after the fetch", i)
		}
	}
	if st := b.sw.Stats(); st.ActiveIsSeller {
		t.Log("B moved to the seller meanwhile")
	}
}

// A relay may claim any length in its Have messages: its blocks are proved, its claims are
// not. One that claims far more than it has (here: a thousand blocks past the seller, while it
// holds nothing) draws a viewer once at most; it is then not believed for a while, so it
// neither holds the viewer nor has every good source judged slow against its claim (the
// viewer switching to it and back again and again, stalling each time).
func TestRelayClaimingMoreThanItHasIsNotBelieved(t *testing.T) {
	checkLeaks(t)
	sf := newWriter(t, 60)
	sn := newNode(t)
	serveOrigin(t, sn, sf, 4)
	startAppending(t, sf)

	liar := newNode(t)
	empty := newReader(t, sf.Key())
	ls, err := replicate.NewSeller(replicate.SellerConfig{Host: liar.Host(), Feed: empty, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	lh := newHaves(liar.Host(), sf.DiscoveryKey(), func() Have {
		return Have{Fork: 0, Length: sf.Length() + 1000, Depth: 1, Relay: true, Free: 16}
	}, 16, quiet())
	t.Cleanup(lh.close)

	b := startSwarm(t, sn.AddrInfo(), sf.Key(), func(c *Config) { c.Hints = []peer.AddrInfo{liar.AddrInfo()} })
	waitFor(t, 30*time.Second, "the viewer receiving the live stream", func() bool {
		return b.sw.Connected() && b.sw.Feed().Length()+20 > sf.Length()
	})
	// For 25 s (two and a half of slowRetry, the hold of a source replaced as slow): the
	// liar draws the viewer once at most, and the viewer then keeps up with a good source.
	visits, with := 0, false
	var lastVisit time.Time
	end := time.Now().Add(25 * time.Second)
	for time.Now().Before(end) {
		on := b.sw.Stats().Active == liar.ID()
		if on && !with {
			visits++
		}
		if on {
			lastVisit = time.Now()
		}
		with = on
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("visits to the liar: %d; switches: %d", visits, b.sw.Stats().Switches)
	if visits > 1 {
		t.Fatalf("the viewer went to the relay that claimed what it did not have %d times in 25 s", visits)
	}
	if st := b.sw.Stats(); st.Active == liar.ID() || !b.sw.Connected() {
		t.Fatalf("the viewer ends with %+v", st)
	}
	if !lastVisit.IsZero() && time.Since(lastVisit) < 10*time.Second {
		t.Fatalf("the viewer was with the liar %v before the end", time.Since(lastVisit))
	}
	if lag := sf.Length() - b.sw.Feed().Length(); lag > 30 {
		t.Fatalf("the viewer is %d blocks behind", lag)
	}
}
