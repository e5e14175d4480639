package replicate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// rawClient speaks the wire protocol by hand and records everything it receives.
type rawClient struct {
	str   network.Stream
	w     *wire.Writer
	mu    sync.Mutex
	raw   bytes.Buffer
	types map[wire.Type]int
	done  chan struct{}
}

func dialRaw(t *testing.T, n *p2p.Node, seller peer.AddrInfo) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Connect(ctx, seller); err != nil {
		t.Fatal(err)
	}
	str, err := n.Host().NewStream(ctx, seller.ID, wire.Protocol)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{str: str, w: wire.NewWriter(str), types: map[wire.Type]int{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 4096)
		for {
			n, err := str.Read(buf)
			c.mu.Lock()
			c.raw.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { str.Reset(); <-c.done })
	return c
}

func (c *rawClient) frame(t *testing.T, ty wire.Type, fill func([]byte) ([]byte, error)) {
	t.Helper()
	if err := c.w.Frame(ty, fill); err != nil {
		t.Fatal(err)
	}
	if err := c.w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (c *rawClient) request(t *testing.T, id uint64, r feed.Request) {
	c.frame(t, wire.TRequest, func(b []byte) ([]byte, error) { return wire.AppendTagged(b, id, r.AppendBinary) })
}

func (c *rawClient) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raw.Len()
}

type rawFrame struct {
	t    wire.Type
	body []byte
}

// framesAfter parses the whole frames that arrived after the first off bytes.
func (c *rawClient) framesAfter(t *testing.T, off int) []rawFrame {
	c.mu.Lock()
	raw := append([]byte(nil), c.raw.Bytes()[off:]...)
	c.mu.Unlock()
	var out []rawFrame
	r := wire.NewReader(bytes.NewReader(raw), 1<<30)
	for {
		ty, body, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, rawFrame{ty, body})
	}
}

// received parses what arrived into frames.
func (c *rawClient) received(t *testing.T) (map[wire.Type]int, int) {
	c.mu.Lock()
	raw := append([]byte(nil), c.raw.Bytes()...)
	c.mu.Unlock()
	types := map[wire.Type]int{}
	r := wire.NewReader(bytes.NewReader(raw), 1<<30)
	for {
		ty, _, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("seller sent a malformed stream: %v", err)
		}
		types[ty]++
	}
	return types, len(raw)
}

// An unpaid peer that sends raw requests of every kind gets no block byte and no proof.
// Counted at its own transport (libp2p's per-protocol byte counter) and by parsing every frame.
func TestUnpaidHostileClientGetsNothing(t *testing.T) {
	gate := newTestGate() // refuses everyone
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 0, 0)
	for g := 0; g < 4; g++ {
		var bs [][]byte
		for j := 0; j < 25; j++ {
			bs = append(bs, block(uint64(g*25+j), 4096))
		}
		if _, err := sf.AppendSync(bs...); err != nil {
			t.Fatal(err)
		}
	}
	sn := newNode(t, nil)
	seller := startSeller(t, sn, sf, gate, nil)
	hn := newNode(t, nil)
	c := dialRaw(t, hn, sn.AddrInfo())

	c.frame(t, wire.TStatus, wire.Status{Flags: wire.StatusLive}.AppendBinary)
	c.frame(t, wire.TStatus, wire.Status{Length: 50, Flags: wire.StatusLive}.AppendBinary)
	c.frame(t, wire.TStatus, wire.Status{Length: 0, Flags: wire.StatusLive | wire.StatusEarly}.AppendBinary)
	id := uint64(1)
	for _, r := range []feed.Request{
		{Block: &feed.BlockRequest{Index: 0}},
		{Block: &feed.BlockRequest{Index: 5, Nodes: 7}},
		{Block: &feed.BlockRequest{Index: 99}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 100}},
		{Upgrade: &feed.UpgradeRequest{Start: 0, Length: 100}},
		{Upgrade: &feed.UpgradeRequest{Start: 50, Length: 50}},
		{Manifest: true, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 1}},
		{Block: &feed.BlockRequest{Index: 1 << 40}},
		{Fork: 7, Block: &feed.BlockRequest{Index: 3}},
	} {
		c.request(t, id, r)
		id++
	}
	for _, rg := range []wire.Range{{ID: 90, Start: 0, End: 100}, {ID: 91, Start: 10, End: 20, FromLength: 100}, {ID: 92, Start: 99, End: 1000}} {
		c.frame(t, wire.TRange, rg.AppendBinary)
	}
	c.frame(t, wire.TApp, func(b []byte) ([]byte, error) { return append(b, "hello"...), nil })
	// New blocks while it waits on the live edge.
	appendBlocks(t, sf, 100, 3, 4096)
	if _, err := sf.AppendSync(block(103, 4096)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	types, n := c.received(t)
	if types[wire.TData] != 0 || types[wire.TEarly] != 0 || types[wire.TSignature] != 0 {
		t.Fatalf("an unpaid peer received data messages: %v", types)
	}
	if types[wire.TAccess] == 0 || types[wire.TNoData] == 0 {
		t.Fatalf("expected a refusal and no-data answers, got %v", types)
	}
	// Fewer bytes than one block: no block could have come through.
	if n >= 4096 {
		t.Fatalf("unpaid peer received %d bytes", n)
	}
	// The transport's own count for the protocol agrees (its meters are swept each second).
	// It also counts the protocol negotiation, a few dozen bytes.
	waitFor(t, 5*time.Second, "transport byte count", func() bool {
		return hn.ProtocolBandwidth(wire.Protocol).TotalIn >= int64(n)
	})
	if in := hn.ProtocolBandwidth(wire.Protocol).TotalIn; in > int64(n)+64 {
		t.Fatalf("the unpaid peer's transport counted %d bytes in, its frames %d", in, n)
	}
	if st := seller.Stats(hn.ID()); st.Blocks != 0 || st.Proofs != 0 || st.BlockBytes != 0 || st.BytesSent != uint64(n) {
		t.Fatalf("seller counted %+v for the unpaid peer (it received %d bytes)", st, n)
	}
	if len(gate.deliveredTo(hn.ID())) != 0 {
		t.Fatal("gate was billed for an unpaid peer")
	}
	t.Logf("unpaid hostile peer received %d bytes: %v", n, types)

	// Garbage then ends its session (and only its own).
	if _, err := c.str.Write([]byte{0x05, 0xee, 1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("seller kept a session open after garbage")
	}

	// An oversized frame (a length far over the seller's cap for viewer messages) ends the
	// session before the seller allocates anything for it.
	c2 := dialRaw(t, hn, sn.AddrInfo())
	if _, err := c2.str.Write(binary.AppendUvarint(nil, 1<<40)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c2.done:
	case <-time.After(10 * time.Second):
		t.Fatal("seller kept a session open after an oversized frame")
	}
	if st := seller.Stats(hn.ID()); st.Blocks != 0 || st.Proofs != 0 {
		t.Fatalf("seller sent data: %+v", st)
	}
}

// A hostile "seller" (with the real feed key's data, tampered) or a broken one: the viewer
// rejects the data, stores nothing and drops the connection.
func TestViewerRejectsBadData(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	good, err := sf.Proof(feed.Request{Block: &feed.BlockRequest{Index: 9}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 10}})
	if err != nil {
		t.Fatal(err)
	}
	good2, err := sf.Proof(feed.Request{Block: &feed.BlockRequest{Index: 2}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 10}})
	if err != nil {
		t.Fatal(err)
	}
	dataFrame := func(p *feed.Proof) []byte {
		w := new(bytes.Buffer)
		fw := wire.NewWriter(w)
		_ = fw.Frame(wire.TData, func(b []byte) ([]byte, error) { return wire.AppendTagged(b, 0, p.AppendBinary) })
		_ = fw.Flush()
		return w.Bytes()
	}
	clone := func(p *feed.Proof) *feed.Proof {
		b, _ := p.MarshalBinary()
		q, err := feed.DecodeProof(append([]byte(nil), b...), 0)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	// Early data: the proof without its signature, then the signature (see sendEarly).
	earlyFrames := func(p *feed.Proof, sg *wire.Signature) []byte {
		w := new(bytes.Buffer)
		fw := wire.NewWriter(w)
		if p != nil {
			_ = fw.Frame(wire.TEarly, p.AppendBinary)
		}
		if sg != nil {
			_ = fw.Frame(wire.TSignature, sg.AppendBinary)
		}
		_ = fw.Flush()
		return w.Bytes()
	}
	unsigned := func(p *feed.Proof) (*feed.Proof, *wire.Signature) {
		q := clone(p)
		sg := &wire.Signature{Fork: q.Fork, Length: q.Upgrade.Start + q.Upgrade.Length, Sig: q.Upgrade.Signature}
		q.Upgrade.Signature = nil
		return q, sg
	}
	garbage := make([]byte, 300)
	_, _ = rand.Read(garbage)
	garbage[0] = 0xee // a type byte no message has (a random one could be a valid app message)
	cases := []struct {
		name string
		send func() []byte
	}{
		{"tampered block", func() []byte { p := clone(good); p.Block.Value[100] ^= 1; return dataFrame(p) }},
		{"wrong proof node", func() []byte { p := clone(good2); p.Block.Nodes[0].Hash[0] ^= 1; return dataFrame(p) }},
		{"bad signature", func() []byte { p := clone(good); p.Upgrade.Signature[3] ^= 1; return dataFrame(p) }},
		{"wrong length claim", func() []byte { p := clone(good); p.Upgrade.Length = 11; return dataFrame(p) }},
		{"oversized frame", func() []byte { return binary.AppendUvarint(nil, 1<<31) }},
		{"oversized block", func() []byte {
			p := clone(good)
			p.Block.Value = make([]byte, feed.DefaultMaxBlockSize+1)
			return dataFrame(p)
		}},
		// Random bytes inside frames: as a data message, and as anything at all.
		{"garbage data", func() []byte { return append([]byte{41, byte(wire.TData)}, garbage[:40]...) }},
		{"garbage", func() []byte { return append([]byte{100}, garbage[:100]...) }},
		{"unknown message", func() []byte { return []byte{2, 99, 0} }},
		{"early data, tampered block", func() []byte {
			p, sg := unsigned(good)
			p.Block.Value[5] ^= 1
			return earlyFrames(p, sg)
		}},
		{"early data, bad signature", func() []byte {
			p, sg := unsigned(good)
			sg.Sig = append([]byte(nil), sg.Sig...)
			sg.Sig[0] ^= 1
			return earlyFrames(p, sg)
		}},
		{"early data, signature for another length", func() []byte {
			p, sg := unsigned(good)
			sg.Length = 9
			return earlyFrames(p, sg)
		}},
		{"early data, signature for a longer length without the nodes to reach it", func() []byte {
			p, sg := unsigned(good)
			sg.Length = 11
			return earlyFrames(p, sg)
		}},
		{"early data carrying its signature", func() []byte { return earlyFrames(clone(good), nil) }},
		{"signature with no early data", func() []byte { _, sg := unsigned(good); return earlyFrames(nil, sg) }},
		{"early data without a block", func() []byte {
			p, sg := unsigned(good)
			p.Block = nil
			return earlyFrames(p, sg)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newNode(t, nil)
			sessions := make(chan struct{}, 16)
			fake.Host().SetStreamHandler(wire.Protocol, func(s network.Stream) {
				sessions <- struct{}{}
				w := wire.NewWriter(s)
				_ = w.Frame(wire.TStatus, wire.Status{Length: 10}.AppendBinary)
				_ = w.Frame(wire.TAccess, wire.Access{State: wire.Free}.AppendBinary)
				_ = w.Flush()
				_, _ = s.Write(tc.send())
				_, _ = io.Copy(io.Discard, s)
				s.Reset()
			})
			r := startViewer(t, nil, fake.AddrInfo(), sf.Key(), true)
			<-sessions
			waitFor(t, 10*time.Second, "viewer to drop the connection", func() bool {
				return fake.Host().Network().Connectedness(r.node.ID()) != network.Connected || !r.viewer.Connected()
			})
			r.stop()
			if r.feed.Stored() != 0 || r.feed.Length() != 0 {
				t.Fatalf("viewer stored %d blocks, length %d from a bad seller", r.feed.Stored(), r.feed.Length())
			}
		})
	}
}

// The seller appended while making a live push's proof: the upgrade reaches 9, the additional
// nodes reach its length 10, and the signature that follows is for 10. That is a valid proof
// (Hypercore's upgrade with additional nodes): the viewer verifies the block and the length.
// (It used to be refused as a protocol error, so under load a seller's direct viewers kept
// reconnecting.)
func TestViewerAcceptsEarlyDataSignedPastItsUpgrade(t *testing.T) {
	sf, _ := newWriter(t, filepath.Join(t.TempDir(), "seller"), 10, 1024)
	p, err := sf.Proof(feed.Request{Block: &feed.BlockRequest{Index: 8}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: 9}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Upgrade.AdditionalNodes) == 0 {
		t.Fatal("the proof has no additional nodes: the test does not reach the case")
	}
	sg := wire.Signature{Fork: p.Fork, Length: 10, Sig: p.Upgrade.Signature}
	p.Upgrade.Signature = nil
	frames := new(bytes.Buffer)
	fw := wire.NewWriter(frames)
	_ = fw.Frame(wire.TEarly, p.AppendBinary)
	_ = fw.Frame(wire.TSignature, sg.AppendBinary)
	_ = fw.Flush()

	fake := newNode(t, nil)
	fake.Host().SetStreamHandler(wire.Protocol, func(s network.Stream) {
		w := wire.NewWriter(s)
		_ = w.Frame(wire.TStatus, wire.Status{Length: 10}.AppendBinary)
		_ = w.Frame(wire.TAccess, wire.Access{State: wire.Free}.AppendBinary)
		_ = w.Flush()
		_, _ = s.Write(frames.Bytes())
		_, _ = io.Copy(io.Discard, s)
		s.Reset()
	})
	r := startViewer(t, nil, fake.AddrInfo(), sf.Key(), true)
	waitFor(t, 10*time.Second, "block 8 verified", func() bool { return r.feed.Has(8) })
	if r.feed.Length() != 10 {
		t.Fatalf("length %d after the push, want 10", r.feed.Length())
	}
	r.stop()
}
