package replicate

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// A connection cut in the middle of a catch-up: the viewer reconnects and downloads only what
// it had not stored.
func TestCutMidCatchUpResumes(t *testing.T) {
	const n = 3000
	gate := newTestGate()
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), n, 4096)
	sn := newNode(t, nil)
	startSeller(t, sn, sf, gate, nil)
	vn := newNode(t, nil)
	gate.set(vn.ID(), Allowance{Free: true})
	// A clear gap between the two sessions.
	r := startViewerWith(t, vn, sn.AddrInfo(), sf.Key(), false, func(c *ViewerConfig) { c.MinBackoff = time.Second })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fetched := make(chan error, 1)
	go func() { fetched <- r.viewer.Fetch(ctx, 0, n) }()
	waitFor(t, 30*time.Second, "part of the catch-up", func() bool { return r.feed.Stored() >= n/4 })
	if err := vn.Host().Network().ClosePeer(sn.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the session to end", func() bool { return !r.viewer.Connected() })
	stored := map[uint64]bool{}
	for i := uint64(0); i < n; i++ {
		if r.feed.Has(i) {
			stored[i] = true
		}
	}
	if len(stored) == n {
		t.Fatal("the catch-up finished before the cut")
	}
	deliveredBefore := len(gate.deliveredTo(vn.ID()))
	if err := <-fetched; err != nil {
		t.Fatal(err)
	}
	if r.viewer.nsess.Load() < 2 {
		t.Fatal("no second session")
	}
	again := 0
	for _, i := range gate.deliveredTo(vn.ID())[deliveredBefore:] {
		if stored[i] {
			again++
		}
	}
	if again != 0 {
		t.Fatalf("%d blocks stored before the cut were sent again", again)
	}
	if r.feed.Stored() != n {
		t.Fatalf("stored %d of %d", r.feed.Stored(), n)
	}
	t.Logf("cut after %d of %d blocks; resumed with %d more deliveries", len(stored), n, len(gate.deliveredTo(vn.ID()))-deliveredBefore)
}

// The seller process is killed (SIGKILL) and restarted at the same address: the live viewer
// reconnects with backoff and continues from where it was, storing nothing twice.
func TestSellerKilledAndRestarted(t *testing.T) {
	// With either durability: a killed process loses nothing on the same boot, so the
	// ForkOnPowerLoss seller of a live broadcast comes back on the same fork.
	for _, dur := range []feed.Durability{feed.SyncBeforeShare, feed.ForkOnPowerLoss} {
		t.Run(map[feed.Durability]string{feed.SyncBeforeShare: "SyncBeforeShare", feed.ForkOnPowerLoss: "ForkOnPowerLoss"}[dur],
			func(t *testing.T) { testSellerKilledAndRestarted(t, dur) })
	}
}

func testSellerKilledAndRestarted(t *testing.T, dur feed.Durability) {
	dir := t.TempDir()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	f, err := feed.Create(filepath.Join(dir, "feed"), feed.Options{KeyPair: &kp, Durability: dur})
	if err != nil {
		t.Fatal(err)
	}
	key := f.Key()
	f.Close()
	identity, err := p2p.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := p2p.IdentityPeerID(identity)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "DV_SELLER_HELPER=1", "DV_FEED_DIR="+filepath.Join(dir, "feed"),
			"DV_SEED="+hex.EncodeToString(seed), "DV_IDENTITY="+hex.EncodeToString(identity), "DV_ADDR="+addr,
			fmt.Sprintf("DV_DURABILITY=%d", dur))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	var mu sync.Mutex
	seen := map[uint64]int{}
	vn := newNode(t, nil)
	r := startViewerWith(t, vn, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast(addr)}}, key, true,
		func(c *ViewerConfig) {
			c.OnBlock = func(i uint64, _ []byte) { mu.Lock(); seen[i]++; mu.Unlock() }
			c.OnFork = func(fork uint64) (Feed, error) { return nil, fmt.Errorf("a kill moved the feed to fork %d", fork) }
		})
	waitFor(t, 30*time.Second, "live blocks from the first seller process", func() bool { return r.feed.Length() >= 20 })

	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, 10*time.Second, "the viewer to notice", func() bool { return !r.viewer.Connected() })
	at := r.feed.Length()
	cmd = start()
	waitFor(t, 60*time.Second, "live blocks from the restarted seller", func() bool { return r.feed.Length() >= at+20 })
	if n := r.viewer.nsess.Load(); n < 2 {
		t.Fatalf("%d sessions", n)
	}
	// A long outage makes a live viewer skip ahead; it fills the gap on its own request.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.viewer.Fetch(ctx, at, r.feed.Length()); err != nil {
		t.Fatal(err)
	}
	if h := r.feed.Head(); h.Fork != 0 {
		t.Fatalf("the viewer's feed is at fork %d after a kill on the same boot", h.Fork)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, c := range seen {
		if c > 1 {
			t.Fatalf("block %d was received %d times", i, c)
		}
	}
	for i := at; i < r.feed.Length(); i++ {
		if !r.feed.Has(i) {
			t.Fatalf("block %d missing: the viewer did not continue where it was", i)
		}
	}
}

// sellerProcess is the seller process of TestSellerKilledAndRestarted (TestMain runs it when
// DV_SELLER_HELPER=1): it opens (or recovers) the feed, serves it and appends a block every
// 20 ms until killed.
func sellerProcess() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "seller process:", err)
		os.Exit(1)
	}
	seed, _ := hex.DecodeString(os.Getenv("DV_SEED"))
	identity, _ := hex.DecodeString(os.Getenv("DV_IDENTITY"))
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		fail(err)
	}
	dur, _ := strconv.Atoi(os.Getenv("DV_DURABILITY"))
	f, err := feed.Open(os.Getenv("DV_FEED_DIR"), feed.Options{KeyPair: &kp, Durability: feed.Durability(dur)})
	if err != nil {
		fail(err)
	}
	sk, err := p2p.ParseIdentity(identity)
	if err != nil {
		fail(err)
	}
	node, err := p2p.New(context.Background(), p2p.Config{Identity: sk, ListenAddrs: []string{os.Getenv("DV_ADDR")},
		PrivateAddrs: true, Reachability: p2p.ReachabilityPublic, Protocols: []protocol.ID{wire.Protocol}})
	if err != nil {
		fail(err)
	}
	if _, err := NewSeller(SellerConfig{Host: node.Host(), Feed: f}); err != nil {
		fail(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	tick := time.NewTicker(20 * time.Millisecond)
	for i := f.Length(); ; i++ {
		select {
		case <-sig:
			os.Exit(0)
		case <-tick.C:
		}
		if _, err := f.Append(block(i, 1000+int(i%7)*100)); err != nil {
			fmt.Fprintln(os.Stderr, "helper append:", err, strconv.Itoa(int(i)))
			os.Exit(1)
		}
	}
}
