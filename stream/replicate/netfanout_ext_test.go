package replicate_test

// The star mode (every viewer served by the seller) and GossipSub with default settings, in
// namespaces (../internal/fanoutlab); relaying viewers are measured in ../swarm.

import (
	"context"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/internal/fanoutlab"
	"github.com/dazaarvision/dazaar-vision/stream/internal/netsim"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
)

func init() {
	replicate.NetsimRole = func(string) { fanoutlab.Child(nil) }
	replicate.NetsimBench = fanoutlab.Bench
}

// The seller's uplink is shaped to 20 Mbit/s and the stream is about 1.07 Mbit/s. Served
// directly without a limit, 30 viewers share the uplink: each gets less than the stream's rate
// and falls behind, so the seller reaches fewer viewers than with its own viewers limited to
// what the uplink carries (the rest are refused and, in ../swarm, sent to relays).
func TestAudienceThroughShapedUplink(t *testing.T) {
	if err := netsim.Check(); err != nil {
		t.Fatal(err) // root and iproute2 are there on every machine the tests run on
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	exe := ""
	if raceEnabled { // the simulated peers run a plain build (instrumented, they starve)
		var err error
		if exe, err = fanoutlab.PlainBuild(ctx, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	unlimited, err := fanoutlab.Measure(ctx, fanoutlab.Run{Mode: "star", Viewers: 30, Groups: 3, Seconds: 8, Uplink: "20mbit",
		Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(unlimited)
	limited, err := fanoutlab.Measure(ctx, fanoutlab.Run{Mode: "star", Viewers: 30, Groups: 3, Seconds: 8, Uplink: "20mbit",
		DirectLimit: 14, Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(limited)
	if limited.Reached < unlimited.Reached {
		t.Errorf("a seller limited to 14 viewers reached %d, fewer than the %d it reached serving all 30 through the same uplink",
			limited.Reached, unlimited.Reached)
	}
	if limited.Complete > 14 {
		t.Errorf("%d viewers got the whole stream from a seller limited to 14", limited.Complete)
	}
}
