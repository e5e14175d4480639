package replicate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/internal/faults"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// stallTestSeller serves sf with a test gate, its configuration adjusted by mod (nil: as is).
func stallTestSeller(t *testing.T, sf *feed.Feed, mod func(*SellerConfig)) (*Seller, *testGate, *p2p.Node) {
	t.Helper()
	gate := newTestGate()
	sn := newNode(t, nil)
	cfg := SellerConfig{Host: sn.Host(), Feed: sf, Gate: gate, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	seller, err := NewSeller(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seller.Close() })
	return seller, gate, sn
}

// allowedRawClient dials sn's seller as a raw client the gate lets in for an hour, once its
// access has arrived.
func allowedRawClient(t *testing.T, sn *p2p.Node, gate *testGate) (*rawClient, *p2p.Node) {
	t.Helper()
	hn := newNode(t, nil)
	gate.set(hn.ID(), Allowance{Until: time.Now().Add(time.Hour)})
	c := dialRaw(t, hn, sn.AddrInfo())
	waitFor(t, 20*time.Second, "access", func() bool { return rawAccess(t, c, 0, wire.Allowed) != nil })
	return c, hn
}

// closeWithin closes the seller and fails the test when Close does not return within d
// (release lets a stalled disk go, so that Close can end after all).
func closeWithin(t *testing.T, s *Seller, d time.Duration, release func()) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		release()
		<-closed
		t.Fatal("Seller.Close hangs on a stalled disk sync")
	}
}

// A non-live viewer fetches a range whose upgrade waits for a stalled disk: the refusal still
// goes out, nothing unsynced reaches the viewer, and Seller.Close returns.
func TestStalledSyncRangeUpgradeRefusesAndCloses(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 5, 1024)
	// Only the wait's own bounds may let the refusal through.
	seller, gate, sn := stallTestSeller(t, sf, func(c *SellerConfig) { c.SyncTimeout = time.Hour })
	release := stallSellerSyncs(t, sf.Dir())
	appendBlocks(t, sf, 5, 1, 1024)
	vn := newNode(t, nil)
	gate.set(vn.ID(), Allowance{Until: time.Now().Add(time.Hour)})
	r := startViewer(t, vn, sn.AddrInfo(), sf.Key(), false)
	r.waitAccess(t, wire.Allowed)
	ctx, cancel := context.WithCancel(context.Background())
	fetched := make(chan error, 1)
	go func() { fetched <- r.viewer.Fetch(ctx, 0, 6) }()
	t.Cleanup(func() { cancel(); <-fetched })
	time.Sleep(500 * time.Millisecond) // the range's upgrade reaches the stalled disk
	gate.set(vn.ID(), Allowance{Reason: "Blocked for the test."})
	seller.Recheck(vn.ID())
	if a := r.waitAccess(t, wire.Refused); a.Reason != "Blocked for the test." {
		t.Fatalf("refusal %+v", a)
	}
	if n := r.feed.Length(); n != 0 {
		t.Fatalf("the viewer verified length %d, signed before the disk synced it", n)
	}
	closeWithin(t, seller, 20*time.Second, release)
	release()
}

// Every other path that shares a signature (or an encrypted block) waits for a stalled disk
// the same bounded way: a viewer's request with an upgrade, a live push to a viewer that takes
// no early data, a skip-ahead, and an encrypted feed's early push. The refusal goes out,
// nothing of the unsynced state leaves, and Seller.Close returns.
func TestStalledSyncEveryPathRefusesAndCloses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		encrypted bool
		// before runs before the disk stalls, after once a block was appended meanwhile.
		before, after func(t *testing.T, c *rawClient)
	}{
		{name: "request", after: func(t *testing.T, c *rawClient) {
			c.request(t, 7, feed.Request{Block: &feed.BlockRequest{Index: 0}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 6}})
		}},
		{name: "live push", before: func(t *testing.T, c *rawClient) {
			c.frame(t, wire.TStatus, wire.Status{Length: 5, Flags: wire.StatusLive}.AppendBinary)
		}},
		{name: "skip ahead", after: func(t *testing.T, c *rawClient) {
			c.frame(t, wire.TStatus, wire.Status{Length: 0, Flags: wire.StatusLive}.AppendBinary)
		}},
		{name: "encrypted early push", encrypted: true, before: func(t *testing.T, c *rawClient) {
			c.frame(t, wire.TStatus, wire.Status{Length: 5, Flags: wire.StatusLive | wire.StatusEarly}.AppendBinary)
		}},
		{name: "encrypted request", encrypted: true, after: func(t *testing.T, c *rawClient) {
			c.request(t, 7, feed.Request{Block: &feed.BlockRequest{Index: 5}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 6}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sf := newStallWriter(t, tc.encrypted)
			seller, gate, sn := stallTestSeller(t, sf, func(c *SellerConfig) { c.SyncTimeout, c.MaxLiveLag = time.Hour, 1 })
			c, hn := allowedRawClient(t, sn, gate)
			if tc.before != nil {
				tc.before(t, c)
			}
			time.Sleep(200 * time.Millisecond) // the status is handled (nothing to push yet)
			mark := c.len()
			release := stallSellerSyncs(t, sf.Dir())
			appendBlocks(t, sf, 5, 1, 1024)
			if tc.after != nil {
				tc.after(t, c)
			}
			time.Sleep(500 * time.Millisecond) // the proof reaches the stalled disk
			gate.set(hn.ID(), Allowance{Reason: "Blocked for the test."})
			seller.Recheck(hn.ID())
			waitFor(t, 20*time.Second, "the refusal", func() bool { return rawAccess(t, c, mark, wire.Refused) != nil })
			for _, f := range c.framesAfter(t, mark) {
				if f.t == wire.TData || f.t == wire.TSignature || (tc.encrypted && f.t == wire.TEarly) {
					t.Fatalf("%s sent before the disk synced", f.t)
				}
			}
			closeWithin(t, seller, 20*time.Second, release)
			release()
		})
	}
}

// newStallWriter is newWriter's feed of 5 blocks of 1 KiB, encrypted or not.
func newStallWriter(t *testing.T, encrypted bool) *feed.Feed {
	t.Helper()
	if !encrypted {
		f, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 5, 1024)
		return f
	}
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	var pk [32]byte
	copy(pk[:], kp.Public)
	enc, err := feed.NewXChaCha20Encryption(pk, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f, err := feed.Create(filepath.Join(t.TempDir(), "seller"), feed.Options{KeyPair: &kp, Encryption: enc, Durability: feed.SyncBeforeShare})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	appendBlocks(t, f, 0, 5, 1024)
	return f
}

// rawAccess is the first access decision in state want that c received after off bytes.
func rawAccess(t *testing.T, c *rawClient, off int, want wire.AccessState) *wire.Access {
	t.Helper()
	for _, f := range c.framesAfter(t, off) {
		if f.t != wire.TAccess {
			continue
		}
		a, err := wire.DecodeAccess(f.body)
		if err != nil {
			t.Fatal(err)
		}
		if a.State == want {
			return &a
		}
	}
	return nil
}

// An encrypted feed whose syncs are slower than its appends still pushes live blocks: the
// proof is made once and waits for its own sync. Made again at every 50 ms poll, it chased
// the newest append's sync and never caught one, and the session ended after SyncTimeout.
func TestEncryptedLivePushOnASlowDisk(t *testing.T) {
	sf := newStallWriter(t, true)
	dir := sf.Dir()
	restore := faults.SetBeforeSync(func(d string) {
		if d == dir {
			time.Sleep(150 * time.Millisecond)
		}
	})
	defer restore()
	_, gate, sn := stallTestSeller(t, sf, nil)
	c, _ := allowedRawClient(t, sn, gate)
	c.frame(t, wire.TStatus, wire.Status{Length: 5, Flags: wire.StatusLive}.AppendBinary)
	time.Sleep(200 * time.Millisecond)
	mark := c.len()
	for i := 0; i < 100; i++ { // 3 s of appends, one every 30 ms
		appendBlocks(t, sf, 5+i, 1, 1024)
		time.Sleep(30 * time.Millisecond)
	}
	pushed := func() int {
		n := 0
		for _, f := range c.framesAfter(t, mark) {
			if f.t == wire.TData {
				n++
			}
		}
		return n
	}
	waitFor(t, 20*time.Second, "live pushes on a disk slower than the appends", func() bool { return pushed() >= 10 })
}
