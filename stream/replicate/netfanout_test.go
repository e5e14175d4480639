package replicate

// The audience a seller reaches through a home uplink (issue 13): the seller in a network
// namespace whose upload is shaped with tc (../internal/netsim), viewers in groups, one
// namespace and one process per group, all on one bridge. Each process is this test binary
// again (ip netns exec, DV_NETSIM_ROLE set; TestMain dispatches). The seller appends the scale
// anchor's workload (30 blocks/s, every 60th block 40 KiB, the others 2-8 KiB: 1.07 Mbit/s),
// each block starting with its append time; a viewer's latency is append called -> it has the
// verified block (one machine, one wall clock). The same run can carry go-libp2p-pubsub's
// GossipSub with default settings over the same shaping (netgossip_test.go).
//
// Modes:
//   star   every viewer opens a session with the seller (relaying off)
//   relay  viewers relay to each other (stream/swarm, when it is built)
//   gossip GossipSub: the publisher in the seller's namespace, subscribers relaying
//
// The copies of the stream the seller uploads come from its interface's counters (bytes on
// the wire: IP, TCP, Noise and yamux framing included) over the stream's payload bytes.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/internal/netsim"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// nsRun is one run in namespaces.
type nsRun struct {
	Mode    string `json:"mode"`
	Viewers int    `json:"viewers"`
	Groups  int    `json:"groups"`
	Seconds int    `json:"seconds"`
	Uplink  string `json:"uplink"` // tc rate of the seller's upload, "" unshaped
	// DirectLimit is the seller's limit on its own viewers (0: none).
	DirectLimit int `json:"directLimit"`
}

// nsViewer is what one simulated viewer saw.
type nsViewer struct {
	Received int       `json:"n"`   // distinct blocks verified (or, for GossipSub, delivered)
	Lat      []float32 `json:"lat"` // ms, append -> verified, per block received
	Upstream string    `json:"up,omitempty"`
}

// nsGroupResult is one viewers' process's report.
type nsGroupResult struct {
	Viewers []nsViewer `json:"viewers"`
	CPU     float64    `json:"cpu"` // cores over the measured window
	Drops   int64      `json:"drops,omitempty"`
}

// nsResult is a run's figures.
type nsResult struct {
	nsRun
	Blocks         int     `json:"blocks"`      // appended
	StreamBytes    int64   `json:"streamBytes"` // payload appended
	SellerTxBytes  uint64  `json:"sellerTxBytes"`
	Copies         float64 `json:"copies"`    // seller's bytes on the wire / stream bytes
	Delivered      float64 `json:"delivered"` // of all viewers' blocks
	P50, P99, Max  float64
	WorstViewerP99 float64 `json:"worstViewerP99"`
	Reached        int     `json:"reached"`  // viewers with >= 95 % of blocks and p99 <= 1 s
	Complete       int     `json:"complete"` // viewers with >= 95 % of blocks
	SellerCPU      float64 `json:"sellerCPU"`
	ViewersCPU     float64 `json:"viewersCPU"` // all viewers' processes together
	ShaperDrops    uint64  `json:"shaperDrops"`
	PubsubDrops    int64   `json:"pubsubDrops,omitempty"`
	Load           string  `json:"load"`
}

// reachedBy are a reached viewer's bounds: almost every block, the live edge within a second.
const (
	reachedShare = 0.95
	reachedP99ms = 1000
)

// nsProc is a process in a namespace, its stdout as lines.
type nsProc struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startNS(ctx context.Context, n *netsim.Net, h netsim.Host, name string, env ...string) (*nsProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := n.Command(ctx, h, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "DV_FANOUT=", "DV_FANOUT_VIEWERS=", "DV_REPLBENCH=", "DV_NETSIM_BENCH=")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s process: %w", name, err)
	}
	p := &nsProc{name: name, cmd: cmd, in: in, lines: make(chan string, 64)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	return p, nil
}

// expect returns the rest of the next line starting with prefix (other lines are skipped).
func (p *nsProc) expect(ctx context.Context, prefix string) (string, error) {
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return "", fmt.Errorf("the %s process ended before it said %q", p.name, strings.TrimSpace(prefix))
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("the %s process did not say %q in time: %w", p.name, strings.TrimSpace(prefix), ctx.Err())
		}
	}
}

func (p *nsProc) say(format string, a ...any) error {
	_, err := fmt.Fprintf(p.in, format+"\n", a...)
	return err
}

// stop closes its stdin (the roles end on it), then kills it if it has not ended in 10 s.
func (p *nsProc) stop() {
	_ = p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// runNetFanout builds the network, runs one seller and the viewer groups, and gathers the
// figures. Everything it made is removed when it returns, also on an error.
func runNetFanout(ctx context.Context, r nsRun) (res nsResult, err error) {
	res.nsRun = r
	if r.Groups < 1 {
		r.Groups = 1
	}
	if r.Groups > r.Viewers {
		r.Groups = r.Viewers
	}
	res.Groups = r.Groups
	n, err := netsim.New(ctx, netsim.Config{Groups: r.Groups, SellerUplink: r.Uplink})
	if err != nil {
		return res, err
	}
	var procs []*nsProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
		if cerr := n.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	common := []string{"DV_NETSIM_MODE=" + r.Mode, "DV_NETSIM_SECONDS=" + strconv.Itoa(r.Seconds),
		"DV_NETSIM_DIRECT=" + strconv.Itoa(r.DirectLimit)}
	seller, err := startNS(ctx, n, n.Seller, "seller", append(common, "DV_NETSIM_ROLE=seller", "DV_NETSIM_IP="+n.Seller.IP)...)
	if err != nil {
		return res, err
	}
	procs = append(procs, seller)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	addr, err := seller.expect(sctx, "ADDR ")
	if err != nil {
		return res, err
	}
	sellerAddr, key, _ := strings.Cut(addr, " ")
	var groups []*nsProc
	for g := 0; g < r.Groups; g++ {
		count := r.Viewers / r.Groups
		if g < r.Viewers%r.Groups {
			count++
		}
		p, err := startNS(ctx, n, n.Groups[g], fmt.Sprintf("viewers %d", g), append(common, "DV_NETSIM_ROLE=viewers",
			"DV_NETSIM_SELLER="+sellerAddr, "DV_NETSIM_KEY="+key, "DV_NETSIM_COUNT="+strconv.Itoa(count),
			"DV_NETSIM_GROUP="+strconv.Itoa(g), "DV_NETSIM_IP="+n.Groups[g].IP)...)
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
		groups = append(groups, p)
	}
	// Every process lists its peers' addresses; every process is told all of them (GossipSub
	// and the relays dial among the viewers).
	var all []string
	for _, p := range groups {
		a, err := p.expect(sctx, "ADDRS")
		if err != nil {
			return res, err
		}
		all = append(all, strings.Fields(a)...)
	}
	for _, p := range append([]*nsProc{seller}, groups...) {
		if err := p.say("PEERS %s", strings.Join(all, " ")); err != nil {
			return res, err
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer rcancel()
	for _, p := range groups {
		if _, err := p.expect(rctx, "READY"); err != nil {
			return res, err
		}
	}
	if r.Mode == "gossip" {
		time.Sleep(4 * time.Second) // the anchor's wait for the mesh to form
	}
	c0, err := n.Counters(ctx, n.Seller)
	if err != nil {
		return res, err
	}
	for _, p := range groups {
		if err := p.say("GO"); err != nil {
			return res, err
		}
	}
	if err := seller.say("GO"); err != nil {
		return res, err
	}
	dctx, dcancel := context.WithTimeout(ctx, time.Duration(r.Seconds)*time.Second+3*time.Minute)
	defer dcancel()
	done, err := seller.expect(dctx, "DONE ")
	if err != nil {
		return res, err
	}
	var sellerCPU float64
	if _, err := fmt.Sscan(done, &res.Blocks, &res.StreamBytes, &sellerCPU); err != nil {
		return res, fmt.Errorf("the seller's DONE line %q: %w", done, err)
	}
	res.SellerCPU = sellerCPU
	for _, p := range groups {
		if err := p.say("DONE %d", res.Blocks); err != nil {
			return res, err
		}
	}
	var viewers []nsViewer
	var lat []float64
	for _, p := range groups {
		line, err := p.expect(dctx, "RESULT ")
		if err != nil {
			return res, err
		}
		var gr nsGroupResult
		if err := json.Unmarshal([]byte(line), &gr); err != nil {
			return res, fmt.Errorf("the %s process's result: %w", p.name, err)
		}
		res.ViewersCPU += gr.CPU
		res.PubsubDrops += gr.Drops
		viewers = append(viewers, gr.Viewers...)
	}
	c1, err := n.Counters(ctx, n.Seller)
	if err != nil {
		return res, err
	}
	if res.ShaperDrops, err = n.QdiscDrops(ctx); err != nil {
		return res, err
	}
	res.SellerTxBytes = c1.TxBytes - c0.TxBytes
	if res.StreamBytes > 0 {
		res.Copies = float64(res.SellerTxBytes) / float64(res.StreamBytes)
	}
	got := 0
	for _, v := range viewers {
		got += v.Received
		vl := make([]float64, len(v.Lat))
		for i, x := range v.Lat {
			vl[i] = float64(x)
		}
		lat = append(lat, vl...)
		p99 := 1e9
		if len(vl) > 0 {
			p99 = pct(vl, 99)
		}
		res.WorstViewerP99 = max(res.WorstViewerP99, p99)
		if float64(v.Received) >= reachedShare*float64(res.Blocks) {
			res.Complete++
			if p99 <= reachedP99ms {
				res.Reached++
			}
		}
	}
	if res.Blocks > 0 && len(viewers) > 0 {
		res.Delivered = float64(got) / float64(res.Blocks*len(viewers))
	}
	if len(lat) > 0 {
		res.P50, res.P99, res.Max = pct(lat, 50), pct(lat, 99), slices.Max(lat)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return res, nil
}

// nsFail ends a role's process with the reason on stderr.
func nsFail(role string, err error) {
	fmt.Fprintf(os.Stderr, "netsim %s: %v\n", role, err)
	os.Exit(1)
}

// runNetsimRole is a process of runNetFanout (TestMain calls it when DV_NETSIM_ROLE is set).
func runNetsimRole(role string) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	readLine := func(prefix string) string {
		for in.Scan() {
			if rest, ok := strings.CutPrefix(in.Text(), prefix); ok {
				return rest
			}
		}
		nsFail(role, fmt.Errorf("stdin ended before %q", prefix))
		return ""
	}
	mode := os.Getenv("DV_NETSIM_MODE")
	switch {
	case role == "seller" && mode == "gossip":
		gossipSeller(readLine)
	case role == "seller":
		feedSeller(readLine)
	case role == "viewers" && mode == "gossip":
		gossipViewers(readLine)
	case role == "viewers":
		feedViewers(readLine)
	default:
		nsFail(role, errors.New("unknown role"))
	}
}

// nsAppend appends the anchor's workload for DV_NETSIM_SECONDS at 30 blocks/s through put,
// then prints DONE blocks bytes seller-cores.
func nsAppend(put func(i int, b []byte) error) {
	secs, _ := strconv.Atoi(os.Getenv("DV_NETSIM_SECONDS"))
	r := rand.New(rand.NewPCG(1, 2))
	count := secs * 30
	var bytes int64
	cpu0, t0 := cpuSeconds(), time.Now()
	for i := 0; i < count; i++ {
		if d := time.Until(t0.Add(time.Duration(i) * time.Second / 30)); d > 0 {
			time.Sleep(d)
		}
		b := fanoutBlock(i, r)
		bytes += int64(len(b))
		if err := put(i, b); err != nil {
			nsFail("seller", err)
		}
	}
	time.Sleep(time.Second) // the last blocks leave
	cpu := (cpuSeconds() - cpu0) / time.Since(t0).Seconds()
	fmt.Printf("DONE %d %d %.4f\n", count, bytes, cpu)
}

// feedSeller is the seller of the star and relay modes: a feed on tmpfs served by a Seller.
func feedSeller(readLine func(string) string) {
	tmp, err := os.MkdirTemp(nsTmp(), "nsseller")
	if err != nil {
		nsFail("seller", err)
	}
	defer os.RemoveAll(tmp)
	tb := &benchTB{dir: tmp}
	defer tb.done()
	f, _ := newWriter(tb, filepath.Join(tmp, "feed"), 0, 0)
	node := nsNode(os.Getenv("DV_NETSIM_IP"), 4001)
	defer node.Close()
	s, err := NewSeller(SellerConfig{Host: node.Host(), Feed: f, Logger: quietLogger()})
	if err != nil {
		nsFail("seller", err)
	}
	defer s.Close()
	key := f.Key()
	fmt.Printf("ADDR %s/p2p/%s %s\n", node.Host().Addrs()[0], node.ID(), hex.EncodeToString(key[:]))
	readLine("PEERS")
	readLine("GO")
	nsAppend(func(i int, b []byte) error {
		var err error
		if i%60 == 0 {
			_, err = f.AppendSync(b)
		} else {
			_, err = f.Append(b)
		}
		return err
	})
	_, _ = io.Copy(io.Discard, os.Stdin) // serve until the run ends
}

// nsTmp is where the simulated peers keep their feeds: tmpfs when there is one, so that the
// figures show the network and not this machine's disk.
func nsTmp() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// nsViewerStats collects one simulated viewer's blocks.
type nsViewerStats struct {
	mu   sync.Mutex
	seen map[uint64]bool
	lat  []float32
}

func (s *nsViewerStats) record(i uint64, b []byte) {
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
	s.lat = append(s.lat, float32(ms(d)))
}

func (s *nsViewerStats) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// nsCollect waits for DONE, gives the viewers up to 5 s to get every block, and prints the
// group's RESULT.
func nsCollect(readLine func(string) string, stats []*nsViewerStats, cpu0 float64, t0 time.Time, drops func() int64) {
	var expected int
	fmt.Sscan(readLine("DONE "), &expected)
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
	res := nsGroupResult{CPU: (cpuSeconds() - cpu0) / time.Since(t0).Seconds()}
	if drops != nil {
		res.Drops = drops()
	}
	for _, s := range stats {
		s.mu.Lock()
		res.Viewers = append(res.Viewers, nsViewer{Received: len(s.seen), Lat: slices.Clone(s.lat)})
		s.mu.Unlock()
	}
	out, err := json.Marshal(res)
	if err != nil {
		nsFail("viewers", err)
	}
	fmt.Printf("RESULT %s\n", out)
}

// feedViewers is a group of viewers of the star and relay modes.
func feedViewers(readLine func(string) string) {
	n, _ := strconv.Atoi(os.Getenv("DV_NETSIM_COUNT"))
	ai, err := peer.AddrInfoFromString(os.Getenv("DV_NETSIM_SELLER"))
	if err != nil {
		nsFail("viewers", err)
	}
	var key [32]byte
	kb, _ := hex.DecodeString(os.Getenv("DV_NETSIM_KEY"))
	copy(key[:], kb)
	tmp, err := os.MkdirTemp(nsTmp(), "nsviewers")
	if err != nil {
		nsFail("viewers", err)
	}
	defer os.RemoveAll(tmp)
	tb := &benchTB{dir: tmp}
	defer tb.done()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	ip := os.Getenv("DV_NETSIM_IP")
	stats := make([]*nsViewerStats, n)
	nodes := make([]*p2p.Node, n)
	var addrs []string
	for i := range n {
		nodes[i] = nsNode(ip, 0)
		defer nodes[i].Close()
		addrs = append(addrs, fmt.Sprintf("%s/p2p/%s", nodes[i].Host().Addrs()[0], nodes[i].ID()))
	}
	fmt.Printf("ADDRS %s\n", strings.Join(addrs, " "))
	readLine("PEERS")
	var answered atomic.Int64
	sem := make(chan struct{}, 8) // sessions being opened at once
	for i := range n {
		stats[i] = &nsViewerStats{seen: map[uint64]bool{}}
		st := stats[i]
		vf := newReader(tb, filepath.Join(tmp, "v"+strconv.Itoa(i)), key)
		var once sync.Once
		sem <- struct{}{}
		v, err := NewViewer(ViewerConfig{Dialer: nodes[i], Seller: *ai, Feed: vf, Live: true,
			Logger: quietLogger(), OnBlock: st.record,
			OnAccess: func(wire.Access) { once.Do(func() { answered.Add(1); <-sem }) }})
		if err != nil {
			nsFail("viewers", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = v.Run(ctx) }()
	}
	// Ready when every viewer had the seller's first answer (refused ones included), or
	// after two minutes: a viewer the seller never answers is simply not reached.
	for wait := time.Now().Add(2 * time.Minute); answered.Load() < int64(n) && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("READY")
	readLine("GO")
	nsCollect(readLine, stats, cpuSeconds(), time.Now(), nil)
}

// nsNode is a node of the simulation: listening on ip (port 0: any), no DHT service, no relay
// service, its reachability known.
func nsNode(ip string, port int) *p2p.Node {
	id, err := p2p.NewIdentity()
	if err != nil {
		nsFail("node", err)
	}
	sk, err := p2p.ParseIdentity(id)
	if err != nil {
		nsFail("node", err)
	}
	n, err := p2p.New(context.Background(), p2p.Config{Identity: sk, PrivateAddrs: true,
		ListenAddrs: []string{fmt.Sprintf("/ip4/%s/tcp/%d", ip, port)}, Reachability: p2p.ReachabilityPublic,
		DHTClientOnly: true, NoRelayService: true, Protocols: []protocol.ID{wire.Protocol}})
	if err != nil {
		nsFail("node", err)
	}
	return n
}
