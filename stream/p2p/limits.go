package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Limits are the resource manager's limits for the whole node. The defaults are sized for a
// seller with up to about a thousand viewers on a desktop machine; everything above a limit is
// refused by libp2p (a new connection or stream fails; nothing already open is touched).
type Limits struct {
	// Conns is the most connections open at once (inbound plus outbound); ConnsInbound the
	// most inbound ones. Default 2048 / 1536.
	Conns, ConnsInbound int
	// Streams is the most streams open at once over all peers. Default 16384.
	Streams int
	// Memory is what libp2p may reserve for buffers (muxer windows, QUIC), in bytes.
	// Default 1 GiB.
	Memory int64
	// FD is the most file descriptors libp2p may use. Default 2048.
	FD int
	// PeerConns, PeerStreams and PeerMemory bound each single peer. Default 8, 128, 64 MiB.
	PeerConns, PeerStreams int
	PeerMemory             int64
	// ProtocolStreamsPerPeer bounds the streams of one application protocol (such as the feed
	// protocol) that one peer may have open. Default 8.
	ProtocolStreamsPerPeer int
}

// DefaultLimits returns the limits used when Config.Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		Conns: 2048, ConnsInbound: 1536,
		Streams: 16384,
		Memory:  1 << 30,
		FD:      2048,
		// A peer may hold a direct and a relayed connection, each over TCP and QUIC, during
		// a hole punch.
		PeerConns: 8, PeerStreams: 128, PeerMemory: 64 << 20,
		ProtocolStreamsPerPeer: 8,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Conns <= 0 {
		l.Conns = d.Conns
	}
	if l.ConnsInbound <= 0 {
		l.ConnsInbound = min(d.ConnsInbound, l.Conns)
	}
	if l.Streams <= 0 {
		l.Streams = d.Streams
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if l.FD <= 0 {
		l.FD = d.FD
	}
	if l.PeerConns <= 0 {
		l.PeerConns = d.PeerConns
	}
	if l.PeerStreams <= 0 {
		l.PeerStreams = d.PeerStreams
	}
	if l.PeerMemory <= 0 {
		l.PeerMemory = d.PeerMemory
	}
	if l.ProtocolStreamsPerPeer <= 0 {
		l.ProtocolStreamsPerPeer = d.ProtocolStreamsPerPeer
	}
	return l
}

// resourceManager builds libp2p's resource manager from l. libp2p's scaled defaults fill in
// the scopes l does not name (transient, services such as identify and the relay); l then
// overrides the system, per-peer and per-protocol scopes.
func (l Limits) resourceManager(protocols []protocol.ID) (network.ResourceManager, error) {
	l = l.withDefaults()
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.Scale(l.Memory, l.FD)

	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:           rcmgr.LimitVal(l.Conns),
			ConnsInbound:    rcmgr.LimitVal(l.ConnsInbound),
			ConnsOutbound:   rcmgr.LimitVal(l.Conns),
			Streams:         rcmgr.LimitVal(l.Streams),
			StreamsInbound:  rcmgr.LimitVal(l.Streams),
			StreamsOutbound: rcmgr.LimitVal(l.Streams),
			FD:              rcmgr.LimitVal(l.FD),
			Memory:          rcmgr.LimitVal64(l.Memory),
		},
		// Connections and streams are transient until they are tied to a peer and a protocol;
		// a crowd of viewers joining at once must not be refused there.
		Transient: rcmgr.ResourceLimits{
			Conns: rcmgr.LimitVal(l.ConnsInbound / 2), ConnsInbound: rcmgr.LimitVal(l.ConnsInbound / 2),
			ConnsOutbound: rcmgr.LimitVal(l.ConnsInbound / 2),
			Streams:       rcmgr.LimitVal(l.Streams / 8), StreamsInbound: rcmgr.LimitVal(l.Streams / 8),
			StreamsOutbound: rcmgr.LimitVal(l.Streams / 8), FD: rcmgr.LimitVal(l.FD / 2),
			Memory: rcmgr.LimitVal64(l.Memory / 8),
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns:           rcmgr.LimitVal(l.PeerConns),
			ConnsInbound:    rcmgr.LimitVal(l.PeerConns),
			ConnsOutbound:   rcmgr.LimitVal(l.PeerConns),
			Streams:         rcmgr.LimitVal(l.PeerStreams),
			StreamsInbound:  rcmgr.LimitVal(l.PeerStreams),
			StreamsOutbound: rcmgr.LimitVal(l.PeerStreams),
			Memory:          rcmgr.LimitVal64(l.PeerMemory),
		},
		Protocol:     map[protocol.ID]rcmgr.ResourceLimits{},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{},
	}
	for _, p := range protocols {
		partial.Protocol[p] = rcmgr.ResourceLimits{
			Streams: rcmgr.LimitVal(l.Streams), StreamsInbound: rcmgr.LimitVal(l.Streams),
			StreamsOutbound: rcmgr.LimitVal(l.Streams), Memory: rcmgr.LimitVal64(l.Memory),
		}
		partial.ProtocolPeer[p] = rcmgr.ResourceLimits{
			Streams:         rcmgr.LimitVal(l.ProtocolStreamsPerPeer),
			StreamsInbound:  rcmgr.LimitVal(l.ProtocolStreamsPerPeer),
			StreamsOutbound: rcmgr.LimitVal(l.ProtocolStreamsPerPeer),
			Memory:          rcmgr.LimitVal64(l.PeerMemory),
		}
	}
	// Without WithMetricsDisabled the manager reports to Prometheus (which nothing here reads)
	// through its tracer, which formats a timestamp for every scope event: about a tenth of
	// a seller's CPU when peers open streams in a loop.
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(base)), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}
