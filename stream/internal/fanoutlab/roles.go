package fanoutlab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "unsafe" // for the linkname directive

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/internal/anchor"
	"github.com/dazaarvision/dazaar-vision/stream/internal/netsim"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
)

// Mode is one way of spreading the stream: what the seller's process and each viewers'
// process run. Both read the parent's lines through the Role and print theirs on stdout.
type Mode struct {
	Seller  func(r *Role)
	Viewers func(r *Role)
}

// Role is a child process's part: its settings from the environment and the parent's lines.
type Role struct {
	Name        string // "seller" or "viewers"
	Mode        string
	IP          string // this namespace's address
	Seconds     int    // how long the seller appends
	DirectLimit int    // the seller's limit on its own viewers (0: the mode's default)
	Count       int    // viewers in this group
	Group       int
	SellerAddr  string // the seller's multiaddr with /p2p/ (viewers)
	Key         [32]byte
	in          *bufio.Scanner
}

// Child runs this process's role when it is one of Measure's (DV_NETSIM_ROLE set) and exits;
// otherwise it returns at once. Call it first thing in TestMain or from an init function.
// The package's own modes (star, gossip) are added to modes.
func Child(modes map[string]Mode) {
	role := os.Getenv("DV_NETSIM_ROLE")
	if role == "" {
		return
	}
	all := map[string]Mode{"star": starMode, "gossip": gossipMode}
	for k, m := range modes {
		all[k] = m
	}
	r := &Role{Name: role, Mode: os.Getenv("DV_NETSIM_MODE"), IP: os.Getenv("DV_NETSIM_IP"),
		SellerAddr: os.Getenv("DV_NETSIM_SELLER")}
	r.Seconds, _ = strconv.Atoi(os.Getenv("DV_NETSIM_SECONDS"))
	r.DirectLimit, _ = strconv.Atoi(os.Getenv("DV_NETSIM_DIRECT"))
	r.Count, _ = strconv.Atoi(os.Getenv("DV_NETSIM_COUNT"))
	r.Group, _ = strconv.Atoi(os.Getenv("DV_NETSIM_GROUP"))
	if kb, err := hex.DecodeString(os.Getenv("DV_NETSIM_KEY")); err == nil {
		copy(r.Key[:], kb)
	}
	liftPerAddressLimits()
	r.in = bufio.NewScanner(os.Stdin)
	r.in.Buffer(make([]byte, 1<<20), 64<<20)
	m, ok := all[r.Mode]
	switch {
	case !ok:
		r.Fail(fmt.Errorf("unknown mode %q", r.Mode))
	case role == "seller":
		m.Seller(r)
	case role == "viewers":
		m.Viewers(r)
	default:
		r.Fail(errors.New("unknown role"))
	}
	os.Exit(0)
}

// The viewers of a group share their namespace's address, where each would have its own on
// the internet. libp2p's resource manager limits what one IPv4 address may do (a crowd behind
// one NAT): at most 8 connections open, and new connections at 0.2 a second after a burst of
// 16. In the simulation those limits would bind a whole group as if it were one viewer (the
// seller took only 8 viewers of a group, and viewers turned away waited a minute to connect
// again), so they are lifted for the simulated network's addresses, as the library itself
// lifts them for loopback. The rate limiter's list is not exported: it is reached with
// a linkname directive (a test harness only; the product's nodes keep every limit).
//
//go:linkname rcmgrRatePrefixLimits github.com/libp2p/go-libp2p/p2p/host/resource-manager.defaultNetworkPrefixLimits
var rcmgrRatePrefixLimits []rate.PrefixLimit

func liftPerAddressLimits() {
	sim := netip.MustParsePrefix(netsim.Subnet)
	rcmgr.DefaultNetworkPrefixLimitV4 = append([]rcmgr.NetworkPrefixLimit{{Network: sim, ConnCount: math.MaxInt}},
		rcmgr.DefaultNetworkPrefixLimitV4...)
	rcmgrRatePrefixLimits = append([]rate.PrefixLimit{{Prefix: sim, Limit: rate.Limit{}}}, rcmgrRatePrefixLimits...)
}

// Fail ends the process with the reason on stderr.
func (r *Role) Fail(err error) {
	fmt.Fprintf(os.Stderr, "netsim %s (%s): %v\n", r.Name, r.Mode, err)
	os.Exit(1)
}

// ReadLine returns the rest of the parent's next line starting with prefix (others skipped).
func (r *Role) ReadLine(prefix string) string {
	for r.in.Scan() {
		if rest, ok := strings.CutPrefix(r.in.Text(), prefix); ok {
			return rest
		}
	}
	r.Fail(fmt.Errorf("stdin ended before %q", prefix))
	return ""
}

// Wait blocks until the parent closes stdin (the run is over).
func (r *Role) Wait() {
	for r.in.Scan() {
	}
}

// Seller is the seller's address (viewers).
func (r *Role) Seller() peer.AddrInfo {
	ai, err := peer.AddrInfoFromString(r.SellerAddr)
	if err != nil {
		r.Fail(err)
	}
	return *ai
}

// Append appends the anchor's workload for r.Seconds at 30 blocks/s through put, then prints
// DONE blocks bytes seller-cores [bytes sent in each protocol, when proto is not nil].
func (r *Role) Append(put func(i int, b []byte) error, proto func() []int64) {
	rnd := mrand.New(mrand.NewPCG(1, 2))
	count := r.Seconds * 30
	var bytes int64
	var p0 []int64
	if proto != nil {
		p0 = proto()
	}
	cpu0, t0 := anchor.CPUSeconds(), time.Now()
	for i := 0; i < count; i++ {
		if d := time.Until(t0.Add(time.Duration(i) * time.Second / 30)); d > 0 {
			time.Sleep(d)
		}
		b := anchor.Block(i, rnd)
		bytes += int64(len(b))
		if err := put(i, b); err != nil {
			r.Fail(err)
		}
	}
	time.Sleep(time.Second) // the last blocks leave
	cpu := (anchor.CPUSeconds() - cpu0) / time.Since(t0).Seconds()
	line := fmt.Sprintf("DONE %d %d %.4f", count, bytes, cpu)
	if proto != nil {
		for i, b := range proto() {
			line += fmt.Sprintf(" %d", b-p0[i])
		}
	}
	fmt.Println(line)
}

// Tmp is where the simulated peers keep their feeds: tmpfs when there is one, so that the
// figures show the network and not this machine's disk.
func Tmp() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// QuietLogger discards everything.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Node is a node of the simulation: listening on ip (port 0: any), no DHT service, no relay
// service, its reachability known; protocols get per-peer stream limits.
func (r *Role) Node(ip string, port int, protocols ...protocol.ID) *p2p.Node {
	id, err := p2p.NewIdentity()
	if err != nil {
		r.Fail(err)
	}
	sk, err := p2p.ParseIdentity(id)
	if err != nil {
		r.Fail(err)
	}
	n, err := p2p.New(context.Background(), p2p.Config{Identity: sk, PrivateAddrs: true,
		ListenAddrs: []string{fmt.Sprintf("/ip4/%s/tcp/%d", ip, port)}, Reachability: p2p.ReachabilityPublic,
		DHTClientOnly: true, NoRelayService: true, Protocols: protocols, Logger: QuietLogger()})
	if err != nil {
		r.Fail(err)
	}
	return n
}

// Addr is n's address with /p2p/.
func Addr(n *p2p.Node) string { return fmt.Sprintf("%s/p2p/%s", n.Host().Addrs()[0], n.ID()) }

// Writer creates the seller's feed in dir with a new key (the live broadcaster's durability).
func (r *Role) Writer(dir string) *feed.Feed {
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		r.Fail(err)
	}
	f, err := feed.Create(dir, feed.Options{KeyPair: &kp, Durability: feed.ForkOnPowerLoss})
	if err != nil {
		r.Fail(err)
	}
	return f
}

// Reader creates a viewer's feed in dir for r.Key.
func (r *Role) Reader(dir string) *feed.Feed {
	f, err := feed.Create(dir, feed.Options{Key: &r.Key})
	if err != nil {
		r.Fail(err)
	}
	return f
}

// Put appends b to f, a sync point every 60th block (the workload's key frames).
func Put(f *feed.Feed) func(i int, b []byte) error {
	return func(i int, b []byte) error {
		var err error
		if i%60 == 0 {
			_, err = f.AppendSync(b)
		} else {
			_, err = f.Append(b)
		}
		return err
	}
}

// FeedSeller is the seller of a feed mode: a feed on tmpfs, a node on port 4001 of r.IP, and
// serve (which starts serving f on node and returns what stops it). It prints ADDR, appends on
// GO and serves until the run ends.
func (r *Role) FeedSeller(protocols []protocol.ID, serve func(node *p2p.Node, f *feed.Feed) (io.Closer, error)) {
	tmp, err := os.MkdirTemp(Tmp(), "nsseller")
	if err != nil {
		r.Fail(err)
	}
	defer os.RemoveAll(tmp)
	f := r.Writer(filepath.Join(tmp, "feed"))
	defer f.Close()
	node := r.Node(r.IP, 4001, protocols...)
	defer node.Close()
	srv, err := serve(node, f)
	if err != nil {
		r.Fail(err)
	}
	defer srv.Close()
	key := f.Key()
	fmt.Printf("ADDR %s %s\n", Addr(node), hex.EncodeToString(key[:]))
	r.ReadLine("PEERS")
	r.ReadLine("GO")
	sent := func() []int64 {
		out := make([]int64, len(protocols))
		for i, p := range protocols {
			out[i] = node.ProtocolBandwidth(p).TotalOut
		}
		return out
	}
	p0 := sent()
	r.Append(Put(f), sent)
	// Serve until the run ends. BYTES asks for the bytes sent in each protocol since GO,
	// for the same window as the wire's count (which runs until the viewers' results are in).
	for r.in.Scan() {
		if r.in.Text() == "BYTES" {
			line := "BYTES"
			for i, b := range sent() {
				line += fmt.Sprintf(" %d", b-p0[i])
			}
			fmt.Println(line)
		}
	}
}

// Stats collects one simulated viewer's blocks.
type Stats struct {
	mu   sync.Mutex
	seen map[uint64]bool
	lat  []float32
}

// NewStats makes an empty Stats.
func NewStats() *Stats { return &Stats{seen: map[uint64]bool{}} }

// Record notes block i (its first 8 bytes are its append time) once.
func (s *Stats) Record(i uint64, b []byte) {
	if len(b) < 8 {
		return
	}
	d := time.Since(time.Unix(0, int64(binary.LittleEndian.Uint64(b))))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[i] {
		return
	}
	s.seen[i] = true
	s.lat = append(s.lat, float32(float64(d.Nanoseconds())/1e6))
}

func (s *Stats) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Collect waits for DONE, gives the viewers up to 5 s to get every block, and prints the
// group's RESULT. depth (nil: none) says a viewer's relay depth.
func (r *Role) Collect(stats []*Stats, cpu0 float64, t0 time.Time, drops func() int64, depth func(i int) int) {
	var expected int
	fmt.Sscan(r.ReadLine("DONE "), &expected)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, s := range stats {
			if s.count() < expected {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := GroupResult{CPU: (anchor.CPUSeconds() - cpu0) / time.Since(t0).Seconds()}
	if drops != nil {
		res.Drops = drops()
	}
	for i, s := range stats {
		s.mu.Lock()
		v := Viewer{Received: len(s.seen), Lat: slices.Clone(s.lat)}
		s.mu.Unlock()
		if depth != nil {
			v.Depth = depth(i)
		}
		res.Viewers = append(res.Viewers, v)
	}
	out, err := json.Marshal(res)
	if err != nil {
		r.Fail(err)
	}
	fmt.Printf("RESULT %s\n", out)
}

// FeedViewer is one simulated viewer of a feed mode, as the mode's start function made it.
type FeedViewer struct {
	Run   func(ctx context.Context) error
	Ready func() bool // it has what it waits for before GO (a first answer, a source)
	Depth func() int  // nil: not reported
}

// FeedViewers is a group of viewers of a feed mode: r.Count nodes on r.IP, each with a reader
// feed on tmpfs, started by start (which may block to pace the joins). It says ADDRS, READY once
// every viewer is ready (or after three minutes: a viewer never ready is simply not reached),
// and RESULT after DONE.
func (r *Role) FeedViewers(protocols []protocol.ID, start func(i int, node *p2p.Node, f *feed.Feed, st *Stats) FeedViewer) {
	tmp, err := os.MkdirTemp(Tmp(), "nsviewers")
	if err != nil {
		r.Fail(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	nodes := make([]*p2p.Node, r.Count)
	feeds := make([]*feed.Feed, r.Count)
	defer func() {
		cancel()
		wg.Wait()
		for i := range nodes {
			if feeds[i] != nil {
				feeds[i].Close()
			}
			nodes[i].Close()
		}
	}()
	var addrs []string
	for i := range r.Count {
		nodes[i] = r.Node(r.IP, 0, protocols...)
		addrs = append(addrs, Addr(nodes[i]))
	}
	fmt.Printf("ADDRS %s\n", strings.Join(addrs, " "))
	r.ReadLine("PEERS")
	stats := make([]*Stats, r.Count)
	vs := make([]FeedViewer, r.Count)
	for i := range r.Count {
		stats[i] = NewStats()
		feeds[i] = r.Reader(filepath.Join(tmp, "v"+strconv.Itoa(i)))
		vs[i] = start(i, nodes[i], feeds[i], stats[i])
		wg.Add(1)
		go func() { defer wg.Done(); _ = vs[i].Run(ctx) }()
	}
	t0 := time.Now()
	for wait, report := t0.Add(3*time.Minute), t0.Add(5*time.Second); time.Now().Before(wait); {
		ready := 0
		for _, v := range vs {
			if v.Ready() {
				ready++
			}
		}
		if ready == len(vs) {
			break
		}
		if time.Now().After(report) {
			debugf("netsim group %d: %d of %d viewers ready after %.0f s", r.Group, ready, len(vs), time.Since(t0).Seconds())
			report = report.Add(5 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println("READY")
	r.ReadLine("GO")
	var depth func(int) int
	if r.Count > 0 && vs[0].Depth != nil {
		depth = func(i int) int { return vs[i].Depth() }
	}
	r.Collect(stats, anchor.CPUSeconds(), time.Now(), nil, depth)
}
