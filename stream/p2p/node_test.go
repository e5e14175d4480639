package p2p

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

const echoProto = "/dazaar-vision/test-echo/1"

func TestMain(m *testing.M) {
	if role := os.Getenv("DV_NAT_ROLE"); role != "" {
		natRole(role)
		return
	}
	if os.Getenv("DV_P2P_LEAKY") != "" {
		// A child running one test that makes go-libp2p leave its goroutines behind (a start
		// that fails: TestListenAddressInUse); the parent checks its own.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m, leakOptions()...)
}

// leakOptions lists goroutines that libp2p and its dependencies start once per process and
// never stop, so that goleak reports only goroutines our code leaves behind.
func leakOptions() []goleak.Option {
	return xtest.LeakOptions()
}

func newTestNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	if cfg.Identity == nil {
		b, err := NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Identity, err = ParseIdentity(b); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.ListenAddrs == nil && !cfg.NoListen {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	cfg.PrivateAddrs = true
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.Host().SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, io.LimitReader(s, 1<<20))
	})
	return n
}

func TestIdentityRoundTrip(t *testing.T) {
	b, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParseIdentity(b)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := peer.IDFromPrivateKey(sk)
	id2, err := IdentityPeerID(b)
	if err != nil || id1 != id2 {
		t.Fatalf("peer IDs differ: %s %s %v", id1, id2, err)
	}
	// Same bytes, same node identity across restarts.
	n1 := newTestNode(t, Config{Identity: sk})
	if n1.ID() != id1 {
		t.Fatalf("node ID %s, want %s", n1.ID(), id1)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{0xff}, 80)} {
		if _, err := ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%x) accepted garbage", bad)
		}
	}
}

func echo(t *testing.T, from *Node, to peer.ID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := from.Host().NewStream(ctx, to, echoProto)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer s.Close()
	if s.Conn().Stat().Limited {
		t.Fatal("stream runs over a limited (relayed) connection")
	}
	msg := bytes.Repeat([]byte("video"), 100000) // 500 kB: more than a relay would carry
	go func() { _, _ = s.Write(msg); _ = s.CloseWrite() }()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d bytes, err %v", len(got), err)
	}
}

func TestDirectTCPAndQUIC(t *testing.T) {
	for _, tr := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(tr, func(t *testing.T) {
			a := newTestNode(t, Config{ListenAddrs: []string{tr}})
			b := newTestNode(t, Config{ListenAddrs: []string{tr}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Connect(ctx, b.AddrInfo()); err != nil {
				t.Fatal(err)
			}
			echo(t, a, b.ID())
			// The counters are swept once a second.
			deadline := time.Now().Add(5 * time.Second)
			for {
				st := a.Bandwidth(b.ID())
				if st.TotalOut >= 500000 && st.TotalIn >= 500000 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("bandwidth per peer not counted: %+v", st)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// The seller listens nowhere: it is reachable only through a relay. The viewer reaches it over
// the relay, the direct connection is then made from the seller's side, and data flows on it.
func TestRelayOnlySeller(t *testing.T) {
	relay := newTestNode(t, Config{Reachability: ReachabilityPublic})
	seller := newTestNode(t, Config{NoListen: true, Reachability: ReachabilityPrivate,
		StaticRelays: []peer.AddrInfo{relay.AddrInfo()}})
	viewer := newTestNode(t, Config{})

	card := waitRelayAddr(t, seller)
	for _, a := range card.Addrs {
		if !isRelayAddr(a) {
			t.Fatalf("seller advertises a direct address %s", a)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := viewer.Connect(ctx, card); err != nil {
		t.Fatal(err)
	}
	if err := viewer.WaitDirect(ctx, seller.ID()); err != nil {
		t.Fatal(err)
	}
	echo(t, viewer, seller.ID())
	// Nothing of the 500 kB went through the relay.
	if st := relay.Bandwidth(viewer.ID()); st.TotalIn > 128<<10 {
		t.Fatalf("relay carried %d bytes from the viewer", st.TotalIn)
	}
}

func waitRelayAddr(t *testing.T, n *Node) peer.AddrInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		info := n.AddrInfo()
		var relayed []ma.Multiaddr
		for _, a := range info.Addrs {
			if isRelayAddr(a) {
				relayed = append(relayed, a)
			}
		}
		if len(relayed) > 0 {
			return peer.AddrInfo{ID: info.ID, Addrs: relayed}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no relay reservation within 30 s")
	return peer.AddrInfo{}
}

// The card's addresses are stale; the viewer finds the seller through the DHT.
func TestFindThroughDHT(t *testing.T) {
	boot := newTestNode(t, Config{Reachability: ReachabilityPublic})
	bootInfo := []peer.AddrInfo{boot.AddrInfo()}
	seller := newTestNode(t, Config{Bootstrap: bootInfo, Reachability: ReachabilityPublic})
	viewer := newTestNode(t, Config{Bootstrap: bootInfo, Reachability: ReachabilityPublic})

	stale := peer.AddrInfo{ID: seller.ID(), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := viewer.Connect(ctx, stale)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer never found the seller: %v", err)
		}
		viewer.Host().Peerstore().ClearAddrs(seller.ID())
		time.Sleep(200 * time.Millisecond)
	}
	echo(t, viewer, seller.ID())
}

func TestLimitsApplied(t *testing.T) {
	n := newTestNode(t, Config{Limits: Limits{PeerStreams: 3}})
	m := newTestNode(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Connect(ctx, n.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	var open []network.Stream
	defer func() {
		for _, s := range open {
			s.Reset()
		}
	}()
	var refused bool
	for i := 0; i < 10; i++ {
		s, err := m.Host().NewStream(ctx, n.ID(), echoProto)
		if err != nil {
			refused = true
			break
		}
		open = append(open, s)
		if _, err := s.Write([]byte("x")); err != nil {
			refused = true
			break
		}
		buf := make([]byte, 1)
		if _, err := io.ReadFull(s, buf); err != nil {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("a peer opened 10 streams past a per-peer limit of 3")
	}
}

// A node serves the DHT only when it is reachable (every node was once forced into server
// mode, so nodes behind NAT answered queries nobody could reach them for).
func TestDHTServerOnlyWhenReachable(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   Config
		serve bool
	}{
		{"public", Config{Reachability: ReachabilityPublic}, true},
		{"private", Config{Reachability: ReachabilityPrivate}, false},
		{"client only", Config{Reachability: ReachabilityPublic, DHTClientOnly: true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newTestNode(t, c.cfg)
			time.Sleep(200 * time.Millisecond) // a reachability event would switch it by now
			// A DHT server answers the DHT protocol; a client does not register it.
			serves := slices.Contains(n.Host().Mux().Protocols(), DHTProtocolPrefix+"/kad/1.0.0")
			if serves != c.serve {
				t.Fatalf("serves the DHT: %v, want %v", serves, c.serve)
			}
		})
	}
}

// An address of ours that a single peer reports is not announced for hole punching (it could
// make our peers dial anywhere): it takes observers from two network groups, or a configured
// static relay.
func TestObservedAddrNeedsQuorum(t *testing.T) {
	relayID := peer.ID("static-relay")
	n := newTestNode(t, Config{PrivateAddrs: true, StaticRelays: []peer.AddrInfo{{ID: relayID,
		Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}}})
	has := func(a ma.Multiaddr) bool { return slices.ContainsFunc(n.holePunchAddrs(), a.Equal) }
	bogus := ma.StringCast("/ip4/203.0.113.7/tcp/4444")
	n.observe(bogus, peer.ID("a"), ma.StringCast("/ip4/198.51.100.1/tcp/1"))
	n.observe(bogus, peer.ID("b"), ma.StringCast("/ip4/198.51.7.7/tcp/1")) // same /16
	if has(bogus) {
		t.Fatal("an address seen only from one network group is announced")
	}
	n.observe(bogus, peer.ID("c"), ma.StringCast("/ip4/192.0.2.1/tcp/1"))
	if !has(bogus) {
		t.Fatal("an address seen from two network groups is not announced")
	}
	viaRelay := ma.StringCast("/ip4/203.0.113.8/udp/4002/quic-v1")
	n.observe(viaRelay, relayID, ma.StringCast("/ip4/198.51.100.1/udp/1/quic-v1"))
	if !has(viaRelay) {
		t.Fatal("an address seen by a configured static relay is not announced")
	}
}
