package netsim

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The network is built with the seller's uplink shaped, its counters and queue can be read,
// and nothing of it is left after Close. (The fan-out tests in stream/replicate send through
// it.)
func TestNetBuildsAndGoes(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatal(err) // the machines the tests run on are root with iproute2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := New(ctx, Config{Groups: 2, SellerUplink: "20mbit"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c0, err := n.Counters(ctx, n.Seller)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := n.Counters(ctx, n.Seller)
	if err != nil {
		t.Fatal(err)
	}
	if c1.TxBytes < c0.TxBytes {
		t.Fatalf("counters went back: %+v then %+v", c0, c1)
	}
	if _, err := n.QdiscDrops(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), n.prefix) {
		t.Fatalf("namespaces left after Close: %s", out)
	}
}
