// Package netsim builds a small simulated network out of Linux network namespaces for the
// fan-out tests and benchmarks: a seller whose uplink is shaped with tc (a home connection),
// and groups of simulated viewers, one namespace per group, all on one bridge.
//
//	seller ns (10.88.0.1, eth0 egress shaped: tbf) ──┐
//	group 0 ns (10.88.1.1)                          ──┤ hub ns: bridge br0
//	group 1 ns (10.88.1.2)                          ──┤
//	...                                              ──┘
//
// The bridge lives in its own namespace, so nothing is added to the machine's own network
// (no interface, route or firewall rule in the root namespace). Namespace names carry the
// pid of the process that made them, so that New removes what a killed run left behind
// without touching a run still in progress. There is no added delay between namespaces: the
// kernels this runs on have no netem (tc's tbf and htb are there). It needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and
// iproute2's ip and tc.
package netsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Prefix starts the name of every namespace this package makes.
const Prefix = "dvfo"

// Subnet holds every address of the simulated network.
const Subnet = "10.88.0.0/16"

// Config describes the network.
type Config struct {
	// Groups is the number of viewer namespaces.
	Groups int
	// SellerUplink is the seller's upload rate as tc writes it ("20mbit"); empty leaves
	// it unshaped.
	SellerUplink string
	// SellerBuffer is how long a packet may wait in the seller's shaped queue before it is
	// dropped (tbf's latency: the size of a home router's upload buffer). Default 50 ms.
	SellerBuffer time.Duration
}

// Host is one namespace on the bridge.
type Host struct {
	NS string // namespace name (ip netns exec NS ...)
	IP string // its address on the bridge
}

// Net is a built network. Close removes it.
type Net struct {
	Seller Host
	Groups []Host
	prefix string
	all    []string // namespaces made, in order
	once   sync.Once
}

// Check says whether namespaces can be made here: root and the tools.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("netsim: making network namespaces needs root")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netsim: %s is not installed (Debian package iproute2): %w", tool, err)
		}
	}
	return nil
}

// New removes namespaces left by runs that have ended, then builds the network. On an error
// it removes what it made.
func New(ctx context.Context, cfg Config) (*Net, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if cfg.Groups < 1 || cfg.Groups > 250*200 {
		return nil, fmt.Errorf("netsim: %d viewer groups (1 to 50000)", cfg.Groups)
	}
	if cfg.SellerBuffer <= 0 {
		cfg.SellerBuffer = 50 * time.Millisecond
	}
	RemoveStale()
	n := &Net{prefix: fmt.Sprintf("%s%d-", Prefix, os.Getpid())}
	// A second Net in the same process gets its own names.
	netsMu.Lock()
	netsMade++
	n.prefix = fmt.Sprintf("%s%d-%d-", Prefix, os.Getpid(), netsMade)
	netsMu.Unlock()
	if err := n.build(ctx, cfg); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

var (
	netsMu   sync.Mutex
	netsMade int
)

func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netsim: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *Net) build(ctx context.Context, cfg Config) error {
	hub := n.prefix + "hub"
	add := func(ns string) error {
		if err := run(ctx, "ip", "netns", "add", ns); err != nil {
			return err
		}
		n.all = append(n.all, ns)
		return run(ctx, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	if err := add(hub); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", hub, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", hub, "link", "set", "br0", "up"); err != nil {
		return err
	}
	// attach makes namespace ns with eth0 at ip, its other end port in the hub's bridge.
	attach := func(ns, port, ip string) error {
		if err := add(ns); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
			return err
		}
		for _, c := range [][]string{
			{"ip", "-n", hub, "link", "set", port, "master", "br0"},
			{"ip", "-n", hub, "link", "set", port, "up"},
			{"ip", "-n", ns, "addr", "add", ip + "/16", "dev", "eth0"},
			{"ip", "-n", ns, "link", "set", "eth0", "up"},
		} {
			if err := run(ctx, c...); err != nil {
				return err
			}
		}
		return nil
	}
	n.Seller = Host{NS: n.prefix + "seller", IP: "10.88.0.1"}
	if err := attach(n.Seller.NS, "s0", n.Seller.IP); err != nil {
		return err
	}
	if cfg.SellerUplink != "" {
		// A token bucket on the seller's egress: its upload rate, a burst of a few full
		// packets, and a buffer of SellerBuffer at that rate (packets beyond it are dropped,
		// as a home router's upload queue does).
		if err := run(ctx, "tc", "-n", n.Seller.NS, "qdisc", "replace", "dev", "eth0", "root", "tbf",
			"rate", cfg.SellerUplink, "burst", "16kb", "latency", fmt.Sprintf("%dms", cfg.SellerBuffer.Milliseconds())); err != nil {
			return err
		}
	}
	for i := 0; i < cfg.Groups; i++ {
		h := Host{NS: fmt.Sprintf("%sg%d", n.prefix, i), IP: fmt.Sprintf("10.88.%d.%d", 1+i/200, 1+i%200)}
		if err := attach(h.NS, fmt.Sprintf("g%d", i), h.IP); err != nil {
			return err
		}
		n.Groups = append(n.Groups, h)
	}
	return nil
}

// Command runs name with args inside h's namespace (ip netns exec).
func (n *Net) Command(ctx context.Context, h Host, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Counters are what h's interface has sent and received (bytes on the wire: IP and TCP
// headers included).
type Counters struct {
	TxBytes, RxBytes, TxPackets, RxPackets uint64
}

// Counters reads h's eth0 counters.
func (n *Net) Counters(ctx context.Context, h Host) (Counters, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", h.NS, "-s", "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		return Counters{}, fmt.Errorf("netsim: reading %s's counters: %w", h.NS, err)
	}
	var links []struct {
		Stats64 struct {
			Rx struct{ Bytes, Packets uint64 } `json:"rx"`
			Tx struct{ Bytes, Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return Counters{}, fmt.Errorf("netsim: reading %s's counters: unexpected output of ip -j: %v", h.NS, err)
	}
	s := links[0].Stats64
	return Counters{TxBytes: s.Tx.Bytes, RxBytes: s.Rx.Bytes, TxPackets: s.Tx.Packets, RxPackets: s.Rx.Packets}, nil
}

// QdiscDrops is the number of packets the seller's shaper dropped (0 when unshaped).
func (n *Net) QdiscDrops(ctx context.Context) (uint64, error) {
	out, err := exec.CommandContext(ctx, "tc", "-n", n.Seller.NS, "-s", "-j", "qdisc", "show", "dev", "eth0").Output()
	if err != nil {
		return 0, fmt.Errorf("netsim: reading the seller's queue: %w", err)
	}
	var qs []struct {
		Kind  string `json:"kind"`
		Drops uint64 `json:"drops"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		return 0, fmt.Errorf("netsim: reading the seller's queue: %w", err)
	}
	var d uint64
	for _, q := range qs {
		d += q.Drops
	}
	return d, nil
}

// Close deletes every namespace of the network (their interfaces go with them). Processes
// still running inside keep their sockets until they end: stop them first.
func (n *Net) Close() error {
	var errs []error
	n.once.Do(func() {
		for i := len(n.all) - 1; i >= 0; i-- {
			if err := run(context.Background(), "ip", "netns", "del", n.all[i]); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// RemoveStale deletes namespaces made by this package in processes that no longer exist.
func RemoveStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, Prefix)
		if !ok {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(rest, "%d", &pid); err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its run is still going
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
}
