package p2p

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The NAT test builds its own little internet out of network namespaces:
//
//	seller ns (10.0.1.2) ── NAT A (10.0.1.1 | 11.99.1.2, masquerade) ──┐
//	                                                                     internet ns: relay (11.99.1.1, 11.99.2.1)
//	viewer ns (10.0.2.2) ── NAT B (10.0.2.1 | 11.99.2.2, masquerade) ──┘
//
// The "public" side uses 11.99.0.0/16 so that libp2p treats it as public (hole punching only
// uses public addresses); nothing leaves the namespaces, which have no other link.
// Each node runs in its own process (ip netns exec this test binary), started by TestMain.

type netnsLab struct {
	t      *testing.T
	prefix string
}

func (l *netnsLab) ns(name string) string { return l.prefix + name }

func (l *netnsLab) run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (l *netnsLab) in(ns string, args ...string) error {
	return l.run(append([]string{"ip", "netns", "exec", l.ns(ns)}, args...)...)
}

func (l *netnsLab) cleanup() {
	for _, n := range []string{"inet", "nata", "natb", "seller", "viewer"} {
		_ = exec.Command("ip", "netns", "del", l.ns(n)).Run()
	}
}

// removeStaleLabs deletes namespaces left by an earlier run of this test that was killed
// (their names carry the pid of a process that no longer exists).
func removeStaleLabs() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "dvhp")
		if !ok {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(rest, "%d", &pid); err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its test is still running
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
}

// build makes the namespaces, links, addresses, routes and NAT rules.
func (l *netnsLab) build() error {
	for _, n := range []string{"inet", "nata", "natb", "seller", "viewer"} {
		if err := l.run("ip", "netns", "add", l.ns(n)); err != nil {
			return err
		}
		if err := l.in(n, "ip", "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	link := func(a, aif, aaddr, b, bif, baddr string) error {
		if err := l.run("ip", "link", "add", aif, "netns", l.ns(a), "type", "veth", "peer", "name", bif, "netns", l.ns(b)); err != nil {
			return err
		}
		for _, x := range [][3]string{{a, aif, aaddr}, {b, bif, baddr}} {
			if err := l.in(x[0], "ip", "addr", "add", x[2], "dev", x[1]); err != nil {
				return err
			}
			if err := l.in(x[0], "ip", "link", "set", x[1], "up"); err != nil {
				return err
			}
		}
		return nil
	}
	steps := []func() error{
		func() error { return link("inet", "ia", "11.99.1.1/24", "nata", "wan", "11.99.1.2/24") },
		func() error { return link("inet", "ib", "11.99.2.1/24", "natb", "wan", "11.99.2.2/24") },
		func() error { return link("nata", "lan", "10.0.1.1/24", "seller", "eth0", "10.0.1.2/24") },
		func() error { return link("natb", "lan", "10.0.2.1/24", "viewer", "eth0", "10.0.2.2/24") },
		func() error { return l.in("inet", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward") },
		func() error { return l.in("nata", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward") },
		func() error { return l.in("natb", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward") },
		func() error { return l.in("nata", "ip", "route", "add", "default", "via", "11.99.1.1") },
		func() error { return l.in("natb", "ip", "route", "add", "default", "via", "11.99.2.1") },
		func() error { return l.in("seller", "ip", "route", "add", "default", "via", "10.0.1.1") },
		func() error { return l.in("viewer", "ip", "route", "add", "default", "via", "10.0.2.1") },
		func() error {
			return l.in("nata", "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
		},
		func() error {
			return l.in("natb", "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
		},
		// A NAT forwards only what belongs to connections started from inside, and drops
		// (never refuses) whatever else comes to its public side, as home routers do.
		func() error {
			return l.in("nata", "iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
		},
		func() error {
			return l.in("natb", "iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
		},
		func() error {
			return l.in("nata", "iptables", "-A", "FORWARD", "-i", "wan", "-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED", "-j", "DROP")
		},
		func() error {
			return l.in("natb", "iptables", "-A", "FORWARD", "-i", "wan", "-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED", "-j", "DROP")
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// proc is a node process inside a namespace; its stdout lines come out on lines.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
}

func (l *netnsLab) start(ns, role string, env ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", l.ns(ns), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"DV_NAT_ROLE=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	l.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return p, nil
}

func (p *proc) expect(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("process ended before printing %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(line, prefix))
			}
		case <-deadline:
			t.Fatalf("no %q within %v", prefix, timeout)
		}
	}
}

// Seller and viewer each behind their own NAT, meeting through a relay: the relayed
// connection is upgraded to a direct one by hole punching, and data flows on it.
func TestHolePunchThroughNAT(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: making network namespaces needs root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed (Debian: iproute2, iptables)", tool)
		}
	}
	removeStaleLabs()
	lab := &netnsLab{t: t, prefix: fmt.Sprintf("dvhp%d", os.Getpid())}
	lab.cleanup()
	t.Cleanup(lab.cleanup)
	if err := lab.build(); err != nil {
		if strings.Contains(err.Error(), "Operation not permitted") || strings.Contains(err.Error(), "not supported") {
			t.Skipf("skipped: network namespaces cannot be made here: %v", err)
		}
		t.Fatal(err)
	}

	// Over TCP, then over QUIC only (the seller and viewer listen on nothing else, so the
	// hole punch has to open a UDP path through both NATs).
	for _, tr := range []struct{ name, relayA, relayB, want string }{
		{"tcp", "/ip4/11.99.1.1/tcp/4001", "/ip4/11.99.2.1/tcp/4001", "/tcp/"},
		{"quic", "/ip4/11.99.1.1/udp/4001/quic-v1", "/ip4/11.99.2.1/udp/4001/quic-v1", "/quic-v1"},
	} {
		t.Run(tr.name, func(t *testing.T) {
			lab := &netnsLab{t: t, prefix: lab.prefix} // the nodes end with the subtest
			relay, err := lab.start("inet", "relay")
			if err != nil {
				t.Fatal(err)
			}
			relayID := relay.expect(t, "RELAY ", 30*time.Second)
			seller, err := lab.start("seller", "seller", "DV_NAT_TRANSPORT="+tr.name, "DV_RELAY="+tr.relayA+"/p2p/"+relayID)
			if err != nil {
				t.Fatal(err)
			}
			sellerID := seller.expect(t, "SELLER ", 60*time.Second)
			viewer, err := lab.start("viewer", "viewer", "DV_NAT_TRANSPORT="+tr.name, "DV_RELAY="+tr.relayB+"/p2p/"+relayID,
				"DV_SELLER="+tr.relayB+"/p2p/"+relayID+"/p2p-circuit/p2p/"+sellerID)
			if err != nil {
				t.Fatal(err)
			}
			relayed := viewer.expect(t, "RELAYED ", 60*time.Second)
			direct := viewer.expect(t, "DIRECT ", 90*time.Second)
			t.Logf("relayed connection %s upgraded to direct %s", relayed, direct)
			if strings.Contains(direct, "p2p-circuit") || !strings.Contains(direct, "11.99.1.2") || !strings.Contains(direct, tr.want) {
				t.Fatalf("direct connection goes to %s, not to the seller's NAT over %s", direct, tr.name)
			}
			viewer.expect(t, "ECHO OK", 60*time.Second)
		})
	}
}

// natRole runs one node of TestHolePunchThroughNAT (TestMain calls it when DV_NAT_ROLE is set).
func natRole(role string) {
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		os.Exit(1)
	}
	id, err := NewIdentity()
	if err != nil {
		fail(err)
	}
	sk, _ := ParseIdentity(id)
	cfg := Config{Identity: sk}
	var relay peer.AddrInfo
	if s := os.Getenv("DV_RELAY"); s != "" {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			fail(err)
		}
		relay = *ai
	}
	switch role {
	case "relay":
		cfg.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
		cfg.Reachability = ReachabilityPublic
	case "seller", "viewer":
		cfg.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/4002", "/ip4/0.0.0.0/udp/4002/quic-v1"}
		if os.Getenv("DV_NAT_TRANSPORT") == "quic" {
			cfg.ListenAddrs = []string{"/ip4/0.0.0.0/udp/4002/quic-v1"}
		}
		cfg.Reachability = ReachabilityPrivate
		cfg.StaticRelays = []peer.AddrInfo{relay}
		cfg.Bootstrap = []peer.AddrInfo{relay}
	}
	n, err := New(context.Background(), cfg)
	if err != nil {
		fail(err)
	}
	n.Host().SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, io.LimitReader(s, 1<<20))
	})
	ctx := context.Background()
	switch role {
	case "relay":
		fmt.Println("RELAY", n.ID())
		select {}
	case "seller":
		for {
			for _, a := range n.Host().Addrs() {
				if isRelayAddr(a) {
					fmt.Println("SELLER", n.ID())
					select {}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	case "viewer":
		ai, err := peer.AddrInfoFromString(os.Getenv("DV_SELLER"))
		if err != nil {
			fail(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := n.Connect(cctx, *ai); err != nil {
			fail(err)
		}
		for _, c := range n.Host().Network().ConnsToPeer(ai.ID) {
			fmt.Println("RELAYED", c.RemoteMultiaddr())
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := n.WaitDirect(wctx, ai.ID); err != nil {
			fail(err)
		}
		for _, c := range n.Host().Network().ConnsToPeer(ai.ID) {
			if !c.Stat().Limited {
				fmt.Println("DIRECT", c.RemoteMultiaddr())
			}
		}
		s, err := n.Host().NewStream(ctx, ai.ID, echoProto)
		if err != nil {
			fail(err)
		}
		msg := []byte(strings.Repeat("video", 100000)) // 500 kB: more than a relay carries
		go func() { _, _ = s.Write(msg); _ = s.CloseWrite() }()
		got, err := io.ReadAll(s)
		if err != nil || len(got) != len(msg) || s.Conn().Stat().Limited {
			fail(fmt.Errorf("echo over the direct connection: %d bytes, %v", len(got), err))
		}
		fmt.Println("ECHO OK")
		n.Close()
		os.Exit(0)
	}
}
