package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/network"
)

// copyDir copies a feed directory's files as they are now: what the disk would hold after a
// power loss that took every later write.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// newPowerLossSeller makes a seller's node and a ForkOnPowerLoss feed (key from seed byte b)
// in the directory live, as the tests below lose power on it.
func newPowerLossSeller(t *testing.T, b byte) (feed.KeyPair, *p2p.Node, string, *feed.Feed) {
	t.Helper()
	kp, err := feed.KeyPairFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	identity, err := p2p.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	node := newNode(t, identity)
	live := filepath.Join(t.TempDir(), "seller")
	sf, err := feed.Create(live, feed.Options{KeyPair: &kp, Durability: feed.ForkOnPowerLoss, BootID: "boot-a"})
	if err != nil {
		t.Fatal(err)
	}
	return kp, node, live, sf
}

// A live seller with ForkOnPowerLoss loses its last appends in a power loss after viewers
// verified them, and comes back on a new fork with different blocks at those lengths. A
// viewer with OnFork starts again on a new reader and follows the new fork; one without it
// stops with ErrForked instead of mixing the forks.
func TestViewerStartsAgainOnSellerFork(t *testing.T) {
	kp, node, live, sf := newPowerLossSeller(t, 3)
	defer sf.Close()
	appendBlocks(t, sf, 0, 10, 1024)
	disk := filepath.Join(t.TempDir(), "disk-at-power-loss")
	copyDir(t, live, disk) // what the disk keeps: the first 10 blocks
	appendBlocks(t, sf, 10, 10, 1024)
	seller := startSeller(t, node, sf, nil, nil)

	var forks atomic.Int32
	withFork := startViewerWith(t, nil, node.AddrInfo(), sf.Key(), true, func(c *ViewerConfig) {
		c.OnFork = func(fork uint64) (Feed, error) {
			forks.Add(1)
			key := sf.Key()
			return feed.Create(filepath.Join(t.TempDir(), fmt.Sprintf("fork%d", fork)), feed.Options{Key: &key})
		}
	})
	without := startViewer(t, nil, node.AddrInfo(), sf.Key(), true)
	for _, r := range []*viewerRig{withFork, without} {
		waitFor(t, 20*time.Second, "the viewer to verify 20 blocks of fork 0", func() bool { return r.feed.Length() == 20 })
	}

	// Power loss: the seller's process and its unsynced writes are gone; the machine boots
	// again and the seller reopens what the disk kept.
	seller.Close()
	sf2, err := feed.Open(disk, feed.Options{KeyPair: &kp, Durability: feed.ForkOnPowerLoss, BootID: "boot-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer sf2.Close()
	if h := sf2.Head(); h.Fork != 1 || h.Length != 10 {
		t.Fatalf("reopened after power loss at fork %d length %d, want 1 and 10", h.Fork, h.Length)
	}
	newBlock := func(i uint64) []byte { return []byte(fmt.Sprintf("block %d of fork 1, not what fork 0 had", i)) }
	for i := uint64(10); i < 15; i++ {
		if _, err := sf2.Append(newBlock(i)); err != nil {
			t.Fatal(err)
		}
	}
	startSeller(t, node, sf2, nil, nil)

	waitFor(t, 20*time.Second, "the viewer to follow fork 1", func() bool {
		f := withFork.viewer.Feed()
		return f.Head().Fork == 1 && f.Length() == 15 && f.Has(14)
	})
	nf := withFork.viewer.Feed().(*feed.Feed)
	if b, err := nf.Get(14); err != nil || !bytes.Equal(b, newBlock(14)) {
		t.Fatalf("block 14 on the new fork: %q, %v", b, err)
	}
	if forks.Load() != 1 {
		t.Fatalf("OnFork called %d times, want 1", forks.Load())
	}
	// The old reader keeps fork 0's 20 verified blocks, untouched.
	if h := withFork.feed.Head(); h.Fork != 0 || h.Length != 20 {
		t.Fatalf("the old reader changed: fork %d length %d", h.Fork, h.Length)
	}
	// A live push on the new fork reaches the new reader.
	if _, err := sf2.Append(newBlock(15)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the new fork's live edge", func() bool { return nf.Has(15) })

	select {
	case err := <-without.done:
		without.cancel = nil
		if !errors.Is(err, ErrForked) {
			t.Fatalf("a viewer without OnFork ended with %v, want ErrForked", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a viewer without OnFork did not stop on the new fork")
	}
	if h := without.feed.Head(); h.Fork != 0 || h.Length != 20 {
		t.Fatalf("a viewer without OnFork mixed the forks: fork %d length %d", h.Fork, h.Length)
	}
}

// A live viewer that asks for early data gets each new block before its signature, which
// follows once the seller's disk has the signed state; the two verify as one proof. A viewer
// that does not ask gets ordinary data messages (the protocol stays compatible).
func TestLivePushEarlyData(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 5, 1024)
	sn := newNode(t, nil)
	seller := startSeller(t, sn, sf, nil, nil)
	for _, tc := range []struct {
		name  string
		flags uint64
		want  []wire.Type
	}{
		{"early", wire.StatusLive | wire.StatusEarly, []wire.Type{wire.TEarly, wire.TSignature}},
		{"plain", wire.StatusLive, []wire.Type{wire.TData}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hn := newNode(t, nil)
			c := dialRaw(t, hn, sn.AddrInfo())
			c.frame(t, wire.TStatus, wire.Status{Length: 0, Flags: tc.flags}.AppendBinary)
			waitFor(t, 10*time.Second, "the first push", func() bool { ty, _ := c.received(t); return ty[wire.TStatus] >= 2 })
			before := c.len()
			n := sf.Length()
			release := func() {}
			if tc.name == "early" {
				// The disk's sync is held until the block has arrived: the block must not
				// wait for it, and the signature must. (Unheld, the sync the append starts
				// can finish before a loaded seller makes the proof, which then goes out
				// as an ordinary data message.)
				release = stallSellerSyncs(t, sf.Dir())
			}
			if _, err := sf.Append(block(n, 1024)); err != nil {
				t.Fatal(err)
			}
			if tc.name == "early" {
				waitFor(t, 10*time.Second, "the early data", func() bool { return len(c.framesAfter(t, before)) >= 1 })
				time.Sleep(50 * time.Millisecond) // a signature sent too soon would be here by now
				if frames := c.framesAfter(t, before); len(frames) != 1 || frames[0].t != wire.TEarly {
					t.Fatalf("before the disk synced, the push is %v, want the early data alone", frames)
				}
				release()
			}
			waitFor(t, 10*time.Second, "the live push", func() bool {
				return len(c.framesAfter(t, before)) >= len(tc.want)+1 // and the status after it
			})
			frames := c.framesAfter(t, before)
			for i, ty := range tc.want {
				if frames[i].t != ty {
					t.Fatalf("frame %d of the push is %s, want %s (all: %v)", i, frames[i].t, ty, frames)
				}
			}
			if tc.name != "early" {
				return
			}
			p, err := feed.DecodeProof(frames[0].body, 0)
			if err != nil {
				t.Fatal(err)
			}
			if p.Upgrade == nil || len(p.Upgrade.Signature) != 0 || p.Block == nil || p.Block.Index != n {
				t.Fatalf("early data: %+v", p)
			}
			sg, err := wire.DecodeSignature(frames[1].body)
			if err != nil {
				t.Fatal(err)
			}
			p.Upgrade.Signature = sg.Sig
			// The viewer held the first blocks before: give a reader the same state, then verify.
			r := newReader(t, filepath.Join(t.TempDir(), "reader"), sf.Key())
			pre, err := sf.Proof(feed.Request{Upgrade: &feed.UpgradeRequest{Start: 0, Length: n}, Manifest: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Verify(pre); err != nil {
				t.Fatal(err)
			}
			if err := r.Verify(p); err != nil {
				t.Fatalf("early data + signature does not verify: %v", err)
			}
			if !r.Has(n) || r.Length() != n+1 {
				t.Fatal("the early block was not stored")
			}
			if st := seller.Stats(hn.ID()); st.Blocks == 0 {
				t.Fatalf("the seller did not count the early block as delivered: %+v", st)
			}
		})
	}
}

// A status is not signed: a seller (or a viewer relaying a free stream) that announces a new
// fork it cannot prove makes no viewer give up what it verified.
func TestUnsignedForkClaimIsChecked(t *testing.T) {
	node := newNode(t, nil)
	f, _ := newWriter(t, filepath.Join(t.TempDir(), "w"), 5, 100)
	seller := startSeller(t, node, f, nil, nil)
	var forks atomic.Int32
	withFork := startViewerWith(t, nil, node.AddrInfo(), f.Key(), true, func(c *ViewerConfig) {
		c.OnFork = func(uint64) (Feed, error) { forks.Add(1); return nil, errors.New("must not be called") }
	})
	without := startViewer(t, nil, node.AddrInfo(), f.Key(), true)
	for _, r := range []*viewerRig{withFork, without} {
		waitFor(t, 20*time.Second, "5 blocks", func() bool { return r.feed.Length() == 5 })
	}
	seller.Close()
	// The hostile seller claims fork 2^62, answers the proof request with fork 0's proof
	// (signed, but not the fork it claimed) or with a forged one, then cuts the stream.
	good, err := f.Proof(feed.Request{Upgrade: &feed.UpgradeRequest{Start: 0, Length: 5}, Manifest: true})
	if err != nil {
		t.Fatal(err)
	}
	var sessions atomic.Int32
	node.Host().SetStreamHandler(wire.Protocol, func(str network.Stream) {
		n := sessions.Add(1)
		w := wire.NewWriter(str)
		_ = w.Frame(wire.TStatus, wire.Status{Fork: 1 << 62, Length: 5}.AppendBinary)
		_ = w.Frame(wire.TAccess, wire.Access{State: wire.Free}.AppendBinary)
		_ = w.Flush()
		r := wire.NewReader(str, wire.MaxViewerFrame)
		for {
			ty, body, err := r.Next()
			if err != nil {
				return
			}
			if ty != wire.TRequest {
				continue
			}
			tg, _ := wire.DecodeTagged(body)
			p := *good
			if n%2 == 0 {
				up := *good.Upgrade
				up.Signature = make([]byte, 64) // forged
				p.Fork, p.Upgrade = 1<<62, &up
			}
			_ = w.Frame(wire.TData, func(b []byte) ([]byte, error) { return wire.AppendTagged(b, tg.ID, p.AppendBinary) })
			_ = w.Flush()
		}
	})
	for _, c := range node.Host().Network().Conns() {
		_ = c.Close()
	}
	waitFor(t, 20*time.Second, "the viewers to meet the hostile seller a few times", func() bool { return sessions.Load() >= 6 })
	select {
	case err := <-without.done:
		without.cancel = nil
		t.Fatalf("an unproved fork ended the viewer: %v", err)
	default:
	}
	if forks.Load() != 0 {
		t.Fatal("OnFork was called for an unproved fork")
	}
	for _, r := range []*viewerRig{withFork, without} {
		if h := r.viewer.Feed().Head(); h.Fork != 0 || h.Length != 5 {
			t.Fatalf("a viewer gave up its blocks: %+v", h)
		}
	}
}

// A viewer fetching a range when the seller loses power asks for it again as soon as it
// reconnects, and the seller, now on a new fork, answers the range before the fork proof.
// That range data belongs to the new fork: it is set aside like live data until the fork is
// checked, and asked for again from the new reader. Before, it was verified against the old
// fork, failed, ended the session as invalid data, and every reconnect did the same: the
// viewer never moved to the new fork.
func TestFetchAcrossSellerFork(t *testing.T) {
	kp, node, live, sf := newPowerLossSeller(t, 4)
	defer sf.Close()
	appendBlocks(t, sf, 0, 10, 1024)
	seller := startSeller(t, node, sf, nil, nil)
	var forks atomic.Int32
	r := startViewerWith(t, nil, node.AddrInfo(), sf.Key(), false, func(c *ViewerConfig) {
		c.OnFork = func(fork uint64) (Feed, error) {
			forks.Add(1)
			key := sf.Key()
			return feed.Create(filepath.Join(t.TempDir(), fmt.Sprintf("fork%d", fork)), feed.Options{Key: &key})
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.viewer.Fetch(ctx, 0, 5); err != nil {
		t.Fatal(err)
	}
	if h := r.feed.Head(); h.Fork != 0 || h.Length != 10 {
		t.Fatalf("the viewer holds fork %d length %d, want fork 0's signed length 10", h.Fork, h.Length)
	}
	disk := filepath.Join(t.TempDir(), "disk-at-power-loss")
	copyDir(t, live, disk)
	appendBlocks(t, sf, 10, 10, 1024) // lost in the power loss; this viewer never asked for them
	seller.Close()
	fetched := make(chan error, 1)
	go func() { fetched <- r.viewer.Fetch(ctx, 5, 15) }() // asked while the seller is down
	waitFor(t, 10*time.Second, "the viewer to notice the seller went", func() bool { return !r.viewer.Connected() })
	sf2, err := feed.Open(disk, feed.Options{KeyPair: &kp, Durability: feed.ForkOnPowerLoss, BootID: "boot-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer sf2.Close()
	for i := uint64(10); i < 15; i++ {
		if _, err := sf2.Append([]byte(fmt.Sprintf("block %d of fork 1", i))); err != nil {
			t.Fatal(err)
		}
	}
	startSeller(t, node, sf2, nil, nil)
	select {
	case err := <-fetched:
		if err != nil {
			t.Fatalf("fetch across the fork: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the fetch did not finish on the new fork (forks seen %d, viewer on fork %d)", forks.Load(), r.viewer.Feed().(*feed.Feed).Head().Fork)
	}
	nf := r.viewer.Feed().(*feed.Feed)
	if h := nf.Head(); h.Fork != 1 || !nf.Has(14) {
		t.Fatalf("after the fetch the viewer is on fork %d, block 14 held: %v", h.Fork, nf.Has(14))
	}
	if b, err := nf.Get(14); err != nil || string(b) != "block 14 of fork 1" {
		t.Fatalf("block 14: %q, %v", b, err)
	}
}
