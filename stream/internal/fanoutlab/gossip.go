package fanoutlab

// GossipSub next to our fan-out in the same namespaces and shaping (Measure's "gossip"
// mode): go-libp2p-pubsub with default settings as in ../shared/notes/scale-anchor.md (D=6,
// heartbeat 1 s, flood publish, signing on: every hop checks the Ed25519 signature), the
// largest message 1 MiB so that sync blocks fit, a subscription buffer of 256. The publisher
// in the seller's namespace joins the topic without subscribing and dials 6 random
// subscribers; each subscriber dials 7 random others. Hosts as in the anchor: TCP, Noise,
// yamux, Ed25519 keys, no resource limits.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/dazaarvision/dazaar-vision/stream/internal/anchor"
)

const gossipTopic = "dazaar-vision/fanout-bench"

func gossipHost(r *Role, ip string, port int) host.Host {
	h, err := libp2p.New(libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/tcp/%d", ip, port)),
		libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		r.Fail(fmt.Errorf("gossip host: %w", err))
	}
	return h
}

func gossipJoin(ctx context.Context, r *Role, h host.Host, tr pubsub.RawTracer) *pubsub.Topic {
	opts := []pubsub.Option{pubsub.WithMaxMessageSize(1 << 20)}
	if tr != nil {
		opts = append(opts, pubsub.WithRawTracer(tr))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		r.Fail(fmt.Errorf("gossip: %w", err))
	}
	t, err := ps.Join(gossipTopic)
	if err != nil {
		r.Fail(fmt.Errorf("gossip: %w", err))
	}
	return t
}

// gossipDial connects h to k random peers of the list (never itself).
func gossipDial(ctx context.Context, h host.Host, list []string, k int) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	perm := r.Perm(len(list))
	dialed := 0
	for _, i := range perm {
		if dialed == k {
			break
		}
		ai, err := peer.AddrInfoFromString(list[i])
		if err != nil || ai.ID == h.ID() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := h.Connect(cctx, *ai); err == nil {
			dialed++
		}
		cancel()
	}
}

var gossipMode = Mode{Seller: gossipSeller, Viewers: gossipViewers}

func gossipSeller(r *Role) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := gossipHost(r, r.IP, 4001)
	defer h.Close()
	topic := gossipJoin(ctx, r, h, nil)
	fmt.Printf("ADDR %s/p2p/%s -\n", h.Addrs()[0], h.ID())
	gossipDial(ctx, h, strings.Fields(r.ReadLine("PEERS")), 6)
	r.ReadLine("GO")
	r.Append(func(i int, b []byte) error {
		binary.LittleEndian.PutUint64(b[8:], uint64(i))
		return topic.Publish(ctx, b)
	}, nil)
	r.Wait() // relay until the run ends
}

// gossipDrops counts what the subscribers' pubsub dropped: outbound RPCs (full peer queues)
// and messages refused because the validation queue was full.
type gossipDrops struct {
	rpc, valQueue atomic.Int64
}

func (d *gossipDrops) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (d *gossipDrops) OnClosedOutboundStream(peer.ID)           {}
func (d *gossipDrops) AddPeer(peer.ID, protocol.ID)             {}
func (d *gossipDrops) RemovePeer(peer.ID)                       {}
func (d *gossipDrops) Join(string)                              {}
func (d *gossipDrops) Leave(string)                             {}
func (d *gossipDrops) Graft(peer.ID, string)                    {}
func (d *gossipDrops) Prune(peer.ID, string)                    {}
func (d *gossipDrops) ValidateMessage(*pubsub.Message)          {}
func (d *gossipDrops) DeliverMessage(*pubsub.Message)           {}
func (d *gossipDrops) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull {
		d.valQueue.Add(1)
	}
}
func (d *gossipDrops) DuplicateMessage(*pubsub.Message)                     {}
func (d *gossipDrops) ThrottlePeer(peer.ID)                                 {}
func (d *gossipDrops) RecvRPC(*pubsub.RPC)                                  {}
func (d *gossipDrops) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (d *gossipDrops) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (d *gossipDrops) DropRPC(*pubsub.RPC, peer.ID)                         { d.rpc.Add(1) }
func (d *gossipDrops) UndeliverableMessage(*pubsub.Message)                 {}

func gossipViewers(r *Role) {
	n := r.Count
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	drops := &gossipDrops{}
	hosts := make([]host.Host, n)
	var addrs []string
	for i := range n {
		hosts[i] = gossipHost(r, r.IP, 0)
		defer hosts[i].Close()
		addrs = append(addrs, fmt.Sprintf("%s/p2p/%s", hosts[i].Addrs()[0], hosts[i].ID()))
	}
	stats := make([]*Stats, n)
	for i, h := range hosts {
		stats[i] = NewStats()
		sub, err := gossipJoin(ctx, r, h, drops).Subscribe(pubsub.WithBufferSize(256))
		if err != nil {
			r.Fail(fmt.Errorf("gossip: %w", err))
		}
		st := stats[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if len(m.Data) >= 16 {
					st.Record(binary.LittleEndian.Uint64(m.Data[8:]), m.Data)
				}
			}
		}()
	}
	fmt.Printf("ADDRS %s\n", strings.Join(addrs, " "))
	list := strings.Fields(r.ReadLine("PEERS"))
	var dials sync.WaitGroup
	for _, h := range hosts {
		dials.Add(1)
		go func() { defer dials.Done(); gossipDial(ctx, h, list, 7) }()
	}
	dials.Wait()
	fmt.Println("READY")
	r.ReadLine("GO")
	r.Collect(stats, anchor.CPUSeconds(), time.Now(), func() int64 { return drops.rpc.Load() + drops.valQueue.Load() }, nil)
}
