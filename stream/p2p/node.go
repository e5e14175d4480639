package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	tcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
)

// DHTProtocolPrefix keeps the app's DHT apart from other libp2p networks (such as IPFS's):
// nodes of this app only answer each other.
const DHTProtocolPrefix protocol.ID = "/dazaar-vision"

// Reachability tells the node what to assume about being reachable from outside.
type Reachability int

const (
	// ReachabilityAuto lets AutoNAT find out (the default).
	ReachabilityAuto Reachability = iota
	// ReachabilityPublic skips AutoNAT and never takes relay reservations.
	ReachabilityPublic
	// ReachabilityPrivate takes relay reservations at once (a node known to be behind NAT).
	ReachabilityPrivate
)

// Config configures a Node. Only Identity is required.
type Config struct {
	// Identity is the node's private key (see NewIdentity and ParseIdentity). The peer ID
	// printed on cards derives from it.
	Identity crypto.PrivKey
	// ListenAddrs are multiaddrs to listen on. Empty means TCP and QUIC on every interface,
	// IPv4 and IPv6, on ports the system picks.
	ListenAddrs []string
	// NoListen makes a node that only dials out; it is then reachable only through relays.
	NoListen bool
	// Bootstrap are the DHT's entry points (other nodes of this app). Empty is allowed: the
	// node then only learns peers from cards and from those who connect to it.
	Bootstrap []peer.AddrInfo
	// StaticRelays are relays to take reservations on when the node is not reachable. Empty
	// means relays are found through the DHT among the connected nodes.
	StaticRelays []peer.AddrInfo
	// DHTClientOnly stops the node from answering DHT queries. By default every node of the
	// app serves the DHT for others once it is reachable from outside (AutoNAT, or
	// ReachabilityPublic); a node behind NAT stays a client.
	DHTClientOnly bool
	// NoRelayService stops the node from relaying for others. By default every node relays
	// with circuit relay v2's default limits (2 minutes and 128 KiB per relayed connection),
	// which carry the set-up of a hole punch and nothing more.
	NoRelayService bool
	// Reachability overrides AutoNAT (tests, or a user who knows).
	Reachability Reachability
	// PrivateAddrs lets hole punching and direct upgrades use private and loopback addresses
	// (a LAN, or tests on one machine). Off by default: on the internet only public addresses
	// are worth punching.
	PrivateAddrs bool
	// Limits are the resource manager's limits; zero fields take DefaultLimits.
	Limits Limits
	// Protocols are the application protocols that get per-peer stream limits.
	Protocols []protocol.ID
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Node is a running libp2p host with its DHT. It is safe for concurrent use.
type Node struct {
	host host.Host
	dht  *dht.IpfsDHT
	bw   *metrics.BandwidthCounter
	log  *slog.Logger
	priv bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sub    event.Subscription
	closed sync.Once

	hps   *holepunch.Service
	ready atomic.Bool // host is set

	mu       sync.Mutex
	circuit  map[peer.ID][]ma.Multiaddr // relay addresses held by reserveLoop
	observed []observation              // our addresses as other peers saw them, newest last
	trusted  map[peer.ID]bool           // the configured static relays
	cerr     error
}

// New starts a node. Close stops it. ctx bounds the start-up only (the node lives until
// Close): when it ends before New is done, New stops what it started and returns its error.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("p2p: start: %w", err)
	}
	if cfg.Identity == nil {
		return nil, errors.New("p2p: no node identity given")
	}
	if cfg.Identity.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("p2p: node identity is a %s key; an Ed25519 key is required", cfg.Identity.Type())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	lim := cfg.Limits.withDefaults()
	rm, err := lim.resourceManager(cfg.Protocols)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(lim.Conns*3/4, lim.Conns*7/8, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	bw := metrics.NewBandwidthCounter()

	n := &Node{bw: bw, log: log, priv: cfg.PrivateAddrs, trusted: map[peer.ID]bool{}}
	for _, r := range cfg.StaticRelays {
		n.trusted[r.ID] = true
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.BandwidthReporter(bw),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultMuxers,
		libp2p.EnableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("dazaar-vision"),
		// go-libp2p assembles the host with fx, whose own logger writes a start-up failure
		// (an address in use) to stderr as three error lines with module paths, before New
		// returns it; New's error says it, so fx says nothing (its last logger wins).
		libp2p.WithFxOption(fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger })),
	}
	switch {
	case cfg.NoListen:
		opts = append(opts, libp2p.NoListenAddrs)
	case len(cfg.ListenAddrs) > 0:
		opts = append(opts, libp2p.ListenAddrStrings(cfg.ListenAddrs...))
	default:
		opts = append(opts, libp2p.ListenAddrStrings(
			"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1",
			"/ip6/::/tcp/0", "/ip6/::/udp/0/quic-v1"))
	}
	if !cfg.NoRelayService {
		opts = append(opts, libp2p.EnableRelayService())
	}
	switch cfg.Reachability {
	case ReachabilityAuto:
		// Answer other nodes' AutoNAT probes. (With a forced reachability go-libp2p v0.51
		// never stops the service's dialer, so forced nodes do not serve it.)
		opts = append(opts, libp2p.EnableNATService())
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if len(cfg.StaticRelays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(cfg.StaticRelays))
	} else {
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates))
	}
	if cfg.PrivateAddrs {
		opts = append(opts, libp2p.NonPublicAddrPublishing(true))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		// go-libp2p leaves some of its own goroutines behind when its start fails (a listen
		// address in use); what was made here is closed.
		_ = rm.Close()
		_ = cm.Close()
		if inUse(err) {
			return nil, &AddrInUseError{Addrs: cfg.ListenAddrs, cause: err}
		}
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	n.host = h
	n.ready.Store(true) // relayCandidates may run on libp2p's goroutines from now on
	n.ctx, n.cancel = context.WithCancel(context.Background())
	// The start-up steps below check ctx between them; Close undoes what was started.
	started := false
	defer func() {
		if !started {
			n.Close()
		}
	}()
	cancelled := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("p2p: start: %w", err)
		}
		return nil
	}
	if err := cancelled(); err != nil {
		return nil, err
	}

	// A node serves the DHT when others can reach it: at once when it is told it is public,
	// else once AutoNAT finds it reachable (a node behind NAT answering queries would only
	// make lookups through it time out).
	mode := dht.ModeAutoServer
	switch {
	case cfg.DHTClientOnly:
		mode = dht.ModeClient
	case cfg.Reachability == ReachabilityPublic:
		mode = dht.ModeServer
	}
	d, err := dht.New(h,
		dht.Mode(mode),
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.BootstrapPeers(cfg.Bootstrap...),
		dht.DisableValues(),
	)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	n.dht = d
	if err := cancelled(); err != nil {
		return nil, err
	}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return nil, fmt.Errorf("subscribe to identify events: %w", err)
	}
	n.sub = sub
	// Hole punching (DCUtR). The service is libp2p's; the node feeds it the addresses to
	// punch from (its public listen and observed addresses) and starts each punch itself
	// when a peer comes in over a relay.
	ids, ok := h.(interface{ IDService() identify.IDService })
	if !ok {
		return nil, errors.New("p2p: libp2p host has no identify service")
	}
	var hpOpts []holepunch.Option
	if cfg.PrivateAddrs {
		hpOpts = append(hpOpts, holepunch.WithAddrFilter(allAddrs{}))
	}
	if n.hps, err = holepunch.NewService(h, ids.IDService(), n.holePunchAddrs, hpOpts...); err != nil {
		return nil, fmt.Errorf("start hole punching: %w", err)
	}
	if err := cancelled(); err != nil {
		return nil, err
	}
	n.wg.Add(1)
	go n.upgradeRelayed()
	if cfg.PrivateAddrs {
		// AutoRelay publishes relay addresses only for relays with public addresses; on a
		// LAN or in tests the node holds its reservations on the static relays itself.
		n.circuit = map[peer.ID][]ma.Multiaddr{}
		for _, r := range cfg.StaticRelays {
			n.wg.Add(1)
			go n.reserveLoop(r)
		}
	}
	if len(cfg.Bootstrap) > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := d.Bootstrap(n.ctx); err != nil {
				log.Warn("DHT bootstrap failed", "err", err)
			}
		}()
	}
	started = true
	return n, nil
}

// Host is the libp2p host, for registering protocols and opening streams.
func (n *Node) Host() host.Host { return n.host }

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// DHT is the node's Kademlia DHT.
func (n *Node) DHT() *dht.IpfsDHT { return n.dht }

// AddrInfo is what a card carries: the peer ID and the addresses others can dial (relay
// addresses included once a reservation is held).
func (n *Node) AddrInfo() peer.AddrInfo {
	addrs := n.host.Addrs()
	n.mu.Lock()
	for _, c := range n.circuit {
		for _, a := range c {
			if !slices.ContainsFunc(addrs, a.Equal) {
				addrs = append(addrs, a)
			}
		}
	}
	n.mu.Unlock()
	return peer.AddrInfo{ID: n.host.ID(), Addrs: addrs}
}

// reserveLoop holds a reservation on relay r, renewing it before it expires and retrying with
// backoff after failures, until the node closes.
func (n *Node) reserveLoop(r peer.AddrInfo) {
	defer n.wg.Done()
	backoff := time.Second
	for {
		ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
		rsv, err := client.Reserve(ctx, n.host, r)
		cancel()
		wait := backoff
		if err != nil {
			n.log.Debug("relay reservation failed", "relay", r.ID, "err", err)
			backoff = min(2*backoff, time.Minute)
			n.mu.Lock()
			delete(n.circuit, r.ID)
			n.mu.Unlock()
		} else {
			backoff = time.Second
			circ := ma.StringCast("/p2p/" + r.ID.String() + "/p2p-circuit")
			var addrs []ma.Multiaddr
			for _, a := range r.Addrs {
				addrs = append(addrs, a.Encapsulate(circ))
			}
			n.mu.Lock()
			n.circuit[r.ID] = addrs
			n.mu.Unlock()
			wait = max(time.Until(rsv.Expiration)*3/4, time.Second)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Bandwidth returns the bytes this node sent to and received from p over all protocols,
// as counted at the transport.
func (n *Node) Bandwidth(p peer.ID) metrics.Stats { return n.bw.GetBandwidthForPeer(p) }

// ProtocolBandwidth returns the bytes sent and received over one protocol, all peers together.
func (n *Node) ProtocolBandwidth(proto protocol.ID) metrics.Stats {
	return n.bw.GetBandwidthForProtocol(proto)
}

// Connect reaches the peer of a card: first at the addresses given, then at addresses the DHT
// knows for its peer ID (which include relay addresses). It returns once a connection, direct
// or relayed, is up.
func (n *Node) Connect(ctx context.Context, info peer.AddrInfo) error {
	var firstErr error
	// The caller paces its own retries (a viewer reconnects with backoff); libp2p's dial
	// backoff would otherwise refuse to dial a seller that just restarted.
	if sw, ok := n.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(info.ID)
	}
	if len(info.Addrs) > 0 {
		err := n.host.Connect(ctx, info)
		if err == nil {
			return nil
		}
		firstErr = err
		n.log.Debug("card addresses failed; asking the DHT", "peer", info.ID, "err", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("connect to %s: %w", info.ID, ctx.Err())
	}
	found, err := n.dht.FindPeer(ctx, info.ID)
	if err != nil {
		if firstErr != nil {
			return fmt.Errorf("connect to %s: its addresses failed (%w) and the DHT did not find it: %v", info.ID, firstErr, err)
		}
		return fmt.Errorf("connect to %s: the DHT did not find it: %w", info.ID, err)
	}
	if err := n.host.Connect(ctx, found); err != nil {
		return fmt.Errorf("connect to %s at the addresses the DHT gave: %w", info.ID, err)
	}
	return nil
}

// WaitDirect waits until a direct (not relayed) connection to p is up, as a hole punch or a
// direct dial makes it after a relayed connection. Replication only runs on direct connections.
func (n *Node) WaitDirect(ctx context.Context, p peer.ID) error {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		if n.host.Network().Connectedness(p) == network.Connected {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no direct connection to %s (only relayed): %w", p, ctx.Err())
		case <-sub.Out():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Close stops the DHT and the host and waits for the node's goroutines.
func (n *Node) Close() error {
	n.closed.Do(func() {
		n.cancel()
		if n.sub != nil {
			n.sub.Close()
		}
		var errs []error
		if n.hps != nil {
			errs = append(errs, n.hps.Close())
		}
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		errs = append(errs, n.host.Close())
		n.wg.Wait()
		n.cerr = errors.Join(errs...)
	})
	return n.cerr
}

// relayCandidates feeds AutoRelay with connected DHT peers that speak the relay protocol.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	if !n.ready.Load() {
		return out // called while the host is still being built
	}
	for _, p := range n.host.Network().Peers() {
		if len(out) == num {
			break
		}
		ok, _ := n.host.Peerstore().SupportsProtocols(p, "/libp2p/circuit/relay/0.2.0/hop")
		if len(ok) == 0 {
			continue
		}
		out <- peer.AddrInfo{ID: p, Addrs: n.host.Peerstore().Addrs(p)}
	}
	return out
}

// upgradeRelayed dials straight back to a peer that came in over a relay when that peer
// listens on addresses we can reach (connection reversal). Hole punching covers the case
// where both sides are behind NAT; this covers a dialer that is itself reachable, which
// libp2p's hole puncher only tries for public addresses.
func (n *Node) upgradeRelayed() {
	defer n.wg.Done()
	sem := make(chan struct{}, 8) // at most 8 reversal dials at once; more are skipped
	var dials sync.WaitGroup
	defer dials.Wait()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-n.sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerIdentificationCompleted)
			if ev.ObservedAddr != nil && !isRelayAddr(ev.ObservedAddr) {
				var from ma.Multiaddr
				if ev.Conn != nil {
					from = ev.Conn.RemoteMultiaddr()
				}
				n.observe(ev.ObservedAddr, ev.Peer, from)
			}
			if ev.Conn == nil || !ev.Conn.Stat().Limited {
				continue
			}
			if ev.Conn.Stat().Direction == network.DirInbound && n.hps != nil {
				// The side that received the relayed connection starts the hole punch.
				select {
				case sem <- struct{}{}:
					dials.Add(1)
					go func(p peer.ID) {
						defer dials.Done()
						defer func() { <-sem }()
						n.holePunch(p)
					}(ev.Peer)
				default:
				}
			}
			if n.host.Network().Connectedness(ev.Peer) == network.Connected {
				continue
			}
			var addrs []ma.Multiaddr
			for _, a := range ev.ListenAddrs {
				if isRelayAddr(a) || (!n.priv && !manet.IsPublicAddr(a)) {
					continue
				}
				addrs = append(addrs, a)
			}
			if len(addrs) == 0 {
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			dials.Add(1)
			go func(p peer.ID, addrs []ma.Multiaddr) {
				defer dials.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(network.WithForceDirectDial(n.ctx, "connection reversal"), 10*time.Second)
				defer cancel()
				if err := n.host.Connect(ctx, peer.AddrInfo{ID: p, Addrs: addrs}); err != nil {
					n.log.Debug("direct dial back to relayed peer failed", "peer", p, "err", err)
				}
			}(ev.Peer, addrs)
		}
	}
}

func isRelayAddr(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// observation is an address of ours as peers saw it, and who saw it.
type observation struct {
	addr    ma.Multiaddr
	groups  []string // the observers' network groups (IPv4 /16, IPv6 /32), a few at most
	trusted bool     // a configured static relay saw it
}

// observedQuorum is how many observers from distinct network groups must report an address
// before the node announces it for hole punching (one peer alone could otherwise make the
// node's peers dial any address it likes); a configured static relay's word is enough.
const observedQuorum = 2

// observe records an address of ours as peer by (connected from address from) saw it: the
// outside of our NAT.
func (n *Node) observe(a ma.Multiaddr, by peer.ID, from ma.Multiaddr) {
	group := ""
	if from != nil {
		if ip, err := manet.ToIP(from); err == nil {
			if ip4 := ip.To4(); ip4 != nil {
				group = ip4.Mask(net.CIDRMask(16, 32)).String()
			} else {
				group = ip.Mask(net.CIDRMask(32, 128)).String()
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var o observation
	if i := slices.IndexFunc(n.observed, func(o observation) bool { return o.addr.Equal(a) }); i >= 0 {
		o = n.observed[i]
		n.observed = slices.Delete(n.observed, i, i+1)
	} else {
		o.addr = a
	}
	if group != "" && !slices.Contains(o.groups, group) && len(o.groups) < 4 {
		o.groups = append(o.groups, group)
	}
	o.trusted = o.trusted || n.trusted[by]
	n.observed = append(n.observed, o)
	if len(n.observed) > 16 { // keep the newest few
		n.observed = n.observed[len(n.observed)-16:]
	}
}

// holePunchAddrs are the addresses a hole punch announces: listen addresses and observed
// addresses confirmed by observers from observedQuorum network groups or by a static relay,
// that are public (or any, with PrivateAddrs), never relay addresses.
func (n *Node) holePunchAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	add := func(a ma.Multiaddr) {
		if isRelayAddr(a) || (!n.priv && !manet.IsPublicAddr(a)) || slices.ContainsFunc(out, a.Equal) {
			return
		}
		out = append(out, a)
	}
	if h, ok := n.host.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		for _, a := range h.AllAddrs() {
			add(a)
		}
	}
	n.mu.Lock()
	var obs []ma.Multiaddr
	for _, o := range n.observed {
		if o.trusted || len(o.groups) >= observedQuorum {
			obs = append(obs, o.addr)
		}
	}
	n.mu.Unlock()
	for _, a := range obs {
		add(a)
	}
	return out
}

// holePunch upgrades a relayed connection from p to a direct one with DCUtR. It waits (until
// the node closes) for the hole punch service to know an address of ours to punch from.
func (n *Node) holePunch(p peer.ID) {
	for {
		if n.host.Network().Connectedness(p) != network.Limited {
			return // direct already, or gone
		}
		if slices.Contains(n.host.Mux().Protocols(), holepunch.Protocol) {
			break // the service has addresses and is ready
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := n.hps.DirectConnect(p); err != nil {
		n.log.Debug("hole punch failed", "peer", p, "err", err)
	}
}

// allAddrs is a hole-punch address filter that keeps private and loopback addresses.
type allAddrs struct{}

func (allAddrs) FilterLocal(_ peer.ID, a []ma.Multiaddr) []ma.Multiaddr {
	return keepDirect(a)
}
func (allAddrs) FilterRemote(_ peer.ID, a []ma.Multiaddr) []ma.Multiaddr {
	return keepDirect(a)
}

func keepDirect(in []ma.Multiaddr) []ma.Multiaddr {
	out := in[:0:0]
	for _, a := range in {
		if !isRelayAddr(a) {
			out = append(out, a)
		}
	}
	return out
}

// AddrInUseError says that the node could not listen because another program holds its
// address (often another copy of the app with the same -listen port).
type AddrInUseError struct {
	Addrs []string // the listen addresses asked for
	cause error
}

func (e *AddrInUseError) Error() string {
	at := "the default ports"
	if len(e.Addrs) > 0 {
		at = strings.Join(e.Addrs, ", ")
	}
	return fmt.Sprintf("another program is already listening at %s (another copy of Dazaar Vision?); "+
		"close it or choose other addresses", at)
}

func (e *AddrInUseError) Unwrap() error { return e.cause }

// inUse reports whether libp2p failed to listen because an address is taken. go-libp2p
// formats its listen errors with %s, so the errno is lost and only the text says it.
func inUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") ||
		strings.Contains(err.Error(), "Only one usage of each socket address") // Windows' WSAEADDRINUSE
}
