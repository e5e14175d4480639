package swarm_test

// The audience a free stream reaches through a seller's home uplink, with viewers relaying
// and without (issue 13), in network namespaces (../internal/fanoutlab): the seller's upload
// shaped with tc to 20 Mbit/s, viewers in groups, one namespace and one process per group
// (this test binary again: init hands it to fanoutlab.Child). The stream is the scale anchor's
// workload, 30 blocks a second at 1.07 Mbit/s.
//
// Modes added to fanoutlab's star and gossip:
//
//	relay   the seller serves DirectLimit viewers (default DefaultOriginViewers) with Serve and
//	        redirects the rest; every viewer is a Swarm with Relay on (no DHT, no hints: the
//	        seller's redirects and the relays' own are how viewers find each other)
//	direct  the same with Relay off: the seller serves DirectLimit viewers (the run sets what
//	        the uplink carries, DirectLimit(20 Mbit/s, 1.07 Mbit/s) = 14), the rest wait

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/internal/fanoutlab"
	"github.com/dazaarvision/dazaar-vision/stream/internal/netsim"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/swarm"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/goleak"
)

// The package has no TestMain (its tests check for leaks one by one), so the processes of a
// run and `make bench`'s sweep are dispatched here, before any test runs.
func init() {
	fanoutlab.Child(map[string]fanoutlab.Mode{"relay": swarmMode(true), "direct": swarmMode(false)})
	if spec := os.Getenv("DV_NETSIM_BENCH"); spec != "" {
		fanoutlab.Bench(spec)
		os.Exit(0)
	}
}

var swarmProtocols = []protocol.ID{wire.Protocol, swarm.HaveProtocol}

func swarmMode(relay bool) fanoutlab.Mode {
	return fanoutlab.Mode{
		Seller: func(r *fanoutlab.Role) {
			limit := r.DirectLimit
			if limit <= 0 {
				limit = swarm.DefaultOriginViewers
			}
			r.FeedSeller(swarmProtocols, func(node *p2p.Node, f *feed.Feed) (io.Closer, error) {
				return swarm.Serve(swarm.ServeConfig{Host: node.Host(), Feed: f, Origin: true, MaxViewers: limit,
					Seller: replicate.SellerConfig{Logger: fanoutlab.QuietLogger()}, Logger: fanoutlab.QuietLogger()})
			})
		},
		Viewers: func(r *fanoutlab.Role) {
			seller := r.Seller()
			r.FeedViewers(swarmProtocols, func(i int, node *p2p.Node, f *feed.Feed, st *fanoutlab.Stats) fanoutlab.FeedViewer {
				log := fanoutlab.QuietLogger()
				if lv := os.Getenv("DV_NETSIM_SWARMLOG"); lv != "" {
					// A level's name (debug, info, warn), or any other value for debug.
					level := slog.LevelDebug
					_ = level.UnmarshalText([]byte(lv))
					log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("viewer", i, "id", node.ID())
				}
				s, err := swarm.New(swarm.Config{Node: node, Feed: f, Seller: seller, Relay: relay, OnBlock: st.Record,
					Logger: log})
				if err != nil {
					r.Fail(err)
				}
				return fanoutlab.FeedViewer{
					Run: s.Run,
					// Ready once it has a source, or (relaying off) once the seller turned it away.
					Ready: func() bool { return s.Depth() != swarm.NoDepth || (!relay && s.Stats().Switches > 0) },
					Depth: func() int {
						if d := s.Depth(); d != swarm.NoDepth {
							return int(d)
						}
						return 0
					},
				}
			})
		},
	}
}

// 50 viewers of a 1.07 Mbit/s stream behind a 20 Mbit/s uplink, 10 s each way. Relaying off,
// the seller serves what its uplink carries and the rest get nothing; relaying on, the seller
// serves a few and the viewers carry the stream to everyone.
func TestAudienceWithRelaysOnAndOff(t *testing.T) {
	if err := netsim.Check(); err != nil {
		t.Fatal(err) // the machines the tests run on are root with iproute2
	}
	// The processes are children; this one keeps no goroutine past Measure (libp2p's own
	// process-wide ones aside, as in swarm_test.go).
	defer goleak.VerifyNone(t, xtest.LeakOptions()...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const viewers, secs = 50, 10
	exe := ""
	if raceEnabled {
		// The simulated peers are not what -race checks here (swarm's own tests are), and
		// instrumented they starved: 50 relays collapsed on this machine.
		var err error
		if exe, err = fanoutlab.PlainBuild(ctx, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	direct := swarm.DirectLimit(20_000_000, 1_070_000)
	off, err := fanoutlab.Measure(ctx, fanoutlab.Run{Mode: "direct", Viewers: viewers, Groups: 2, Seconds: secs,
		Uplink: "20mbit", DirectLimit: direct, Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(off)
	on, err := fanoutlab.Measure(ctx, fanoutlab.Run{Mode: "relay", Viewers: viewers, Groups: 2, Seconds: secs,
		Uplink: "20mbit", Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(on)
	if off.Complete > direct {
		t.Errorf("relaying off, %d viewers got the stream from a seller serving at most %d", off.Complete, direct)
	}
	if on.Delivered < off.Delivered || on.Reached < off.Reached {
		t.Errorf("relaying on delivered %.1f%% and reached %d viewers, relaying off %.1f%% and %d",
			100*on.Delivered, on.Reached, 100*off.Delivered, off.Reached)
	}
	if on.Reached <= direct {
		t.Errorf("relaying on reached %d viewers, no more than the %d the uplink carries directly", on.Reached, direct)
	}
	// The seller serves DefaultOriginViewers (3) viewers; the protocol's proofs and messages
	// add about 1.5 % to the blocks' bytes: at most 4 copies (the goal), whatever the audience.
	if on.ProtoCopies > 4 || on.Copies > 4 {
		t.Errorf("relaying on, the seller sent %.2f copies of the stream in the protocol, %.2f on the wire (goal: at most 4)", on.ProtoCopies, on.Copies)
	}
}
