// Package fanoutlab measures the audience a seller reaches through a home uplink (issue 13):
// the seller in a network namespace whose upload is shaped with tc (../netsim), viewers in
// groups, one namespace and one process per group, all on one bridge. It is shared by the
// tests of stream/replicate (star and GossipSub modes) and stream/swarm (relaying on and off),
// which cannot import each other.
//
// Each process is the calling test binary again (ip netns exec, DV_NETSIM_ROLE set); the test
// package hands the re-executed binary to Child (from TestMain or an init function) with the
// modes it knows. The seller appends the scale anchor's workload (30 blocks/s, every 60th block
// 40 KiB, the others 2-8 KiB: 1.07 Mbit/s), each block starting with its append time; a viewer's
// latency is append called -> it has the verified block (one machine, one wall clock).
//
// Modes (the package provides star and gossip; others are given to Child):
//
//	star   every viewer opens a session with the seller (relaying off, no limit)
//	gossip go-libp2p-pubsub GossipSub with default settings: the publisher in the seller's
//	       namespace, subscribers relaying (gossip.go)
//	relay, direct  stream/swarm with relaying on and off (that package's tests)
//
// The copies of the stream the seller uploads come from its interface's counters (bytes on
// the wire: IP, TCP, Noise and yamux framing included) over the stream's payload bytes; feed
// modes also report the replication protocol's own bytes (no framing: the scale anchor's
// measure).
//
// The parent and the children talk over the children's stdin and stdout, one line at a time:
// the seller says ADDR, each group says ADDRS (its viewers' addresses); everyone is told PEERS;
// each group says READY when its viewers are set up; GO starts the appends; the seller says
// DONE blocks bytes cores [bytes sent in each protocol]; each group is told DONE blocks and says RESULT json.
package fanoutlab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/stream/internal/netsim"
)

// Run is one run in namespaces.
type Run struct {
	Mode    string `json:"mode"`
	Viewers int    `json:"viewers"`
	Groups  int    `json:"groups"`
	Seconds int    `json:"seconds"`
	Uplink  string `json:"uplink"` // tc rate of the seller's upload, "" unshaped
	// DirectLimit is the seller's limit on its own viewers (0: the mode's default).
	DirectLimit int `json:"directLimit"`
	// Exe is the test binary the processes run (empty: this one). A test built with -race
	// hands a plain build here: the race detector's cost would be measured, not the protocol.
	Exe string `json:"-"`
}

// Viewer is what one simulated viewer saw.
type Viewer struct {
	Received int       `json:"n"`   // distinct blocks verified (or, for GossipSub, delivered)
	Lat      []float32 `json:"lat"` // ms, append -> verified, per block received
	Depth    int       `json:"depth,omitempty"`
}

// GroupResult is one viewers' process's report.
type GroupResult struct {
	Viewers []Viewer `json:"viewers"`
	CPU     float64  `json:"cpu"` // cores over the measured window
	Drops   int64    `json:"drops,omitempty"`
}

// Result is a run's figures.
type Result struct {
	Run
	Blocks        int     `json:"blocks"`      // appended
	StreamBytes   int64   `json:"streamBytes"` // payload appended
	SellerTxBytes uint64  `json:"sellerTxBytes"`
	Copies        float64 `json:"copies"`      // seller's bytes on the wire / stream bytes
	ProtoCopies   float64 `json:"protoCopies"` // seller's replication bytes / stream bytes (feed modes)
	// AuxCopies is the seller's bytes in its other protocols (stream/swarm's Have links) over
	// the stream bytes.
	AuxCopies float64 `json:"auxCopies"`
	// ProtoCopiesAll and AuxCopiesAll are the same over Copies' window (from the viewers'
	// READY to their results, not only while appending).
	ProtoCopiesAll float64 `json:"protoCopiesAll"`
	AuxCopiesAll   float64 `json:"auxCopiesAll"`
	Delivered      float64 `json:"delivered"` // of all viewers' blocks
	P50            float64 `json:"p50"`
	P99            float64 `json:"p99"`
	Max            float64 `json:"max"`
	WorstViewerP99 float64 `json:"worstViewerP99"`
	Reached        int     `json:"reached"`  // viewers with >= 95 % of blocks and p99 <= 1 s
	Complete       int     `json:"complete"` // viewers with >= 95 % of blocks
	MaxDepth       int     `json:"maxDepth,omitempty"`
	SellerCPU      float64 `json:"sellerCPU"`
	ViewersCPU     float64 `json:"viewersCPU"` // all viewers' processes together
	ShaperDrops    uint64  `json:"shaperDrops"`
	PubsubDrops    int64   `json:"pubsubDrops,omitempty"`
	Load           string  `json:"load"`
	MachineCPU     float64 `json:"machineCPU"`   // cores busy on the whole machine over the run
	OthersCPU      float64 `json:"othersCPU"`    // of which not this run's seller and viewers
	SetupSeconds   float64 `json:"setupSeconds"` // namespaces, processes, viewers joined
	Err            string  `json:"err,omitempty"`
}

func (r Result) String() string {
	return fmt.Sprintf("%s N=%d: reached %d (complete %d), delivered %.2f%%, p50/p99/max %.1f/%.1f/%.1f ms, worst viewer p99 %.1f ms, seller copies %.2f on the wire (%.2f in the protocol while appending, %.2f to the last result; %.2f in Have links), depth ≤ %d, seller CPU %.3f, viewers CPU %.2f, others' CPU %.2f, shaper drops %d, set-up %.0f s, load %s",
		r.Mode, r.Viewers, r.Reached, r.Complete, 100*r.Delivered, r.P50, r.P99, r.Max, r.WorstViewerP99, r.Copies, r.ProtoCopies, r.ProtoCopiesAll, r.AuxCopies, r.MaxDepth, r.SellerCPU, r.ViewersCPU, r.OthersCPU, r.ShaperDrops, r.SetupSeconds, r.Load)
}

// Reached viewer's bounds: almost every block, the live edge within a second.
const (
	ReachedShare = 0.95
	ReachedP99ms = 1000
)

// proc is a process in a namespace, its stdout as lines.
type proc struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func start(ctx context.Context, n *netsim.Net, h netsim.Host, exe, name string, env ...string) (*proc, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
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
	p := &proc{name: name, cmd: cmd, in: in, lines: make(chan string, 64)}
	// The reader ends when the process's stdout closes (stop waits for the process).
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	return p, nil
}

// expect returns the rest of the next line starting with prefix (other lines are skipped).
func (p *proc) expect(ctx context.Context, prefix string) (string, error) {
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

func (p *proc) say(format string, a ...any) error {
	_, err := fmt.Fprintf(p.in, format+"\n", a...)
	return err
}

// stop closes its stdin (the roles end on it), then kills it if it has not ended in 10 s,
// and drains what is left of its output so the reader goroutine ends.
func (p *proc) stop() {
	_ = p.in.Close()
	done := make(chan struct{})
	go func() {
		for range p.lines {
		}
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// Debug prints stage timings on stderr when DV_NETSIM_DEBUG is set.
func debugf(format string, a ...any) {
	if os.Getenv("DV_NETSIM_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, format+"\n", a...)
	}
}

// PlainBuild builds the test binary of the package in the working directory without the race
// detector into dir and returns its path, for Run.Exe (internal/xtest.PlainTestBinary).
func PlainBuild(ctx context.Context, dir string) (string, error) {
	return xtest.PlainTestBinary(ctx, dir)
}

// Measure builds the network, runs one seller and the viewer groups, and gathers the figures.
// Everything it made is removed when it returns, also on an error.
func Measure(ctx context.Context, r Run) (res Result, err error) {
	t0 := time.Now()
	stage := func(what string) {
		debugf("netsim %s %d: %s at %.1f s", r.Mode, r.Viewers, what, time.Since(t0).Seconds())
	}
	defer stage("removed")
	if r.Groups < 1 {
		r.Groups = 1
	}
	if r.Groups > r.Viewers {
		r.Groups = r.Viewers
	}
	res.Run = r
	n, err := netsim.New(ctx, netsim.Config{Groups: r.Groups, SellerUplink: r.Uplink})
	if err != nil {
		return res, err
	}
	stage("built")
	var procs []*proc
	defer func() {
		stage("stopping")
		for _, p := range procs {
			p.stop()
		}
		if cerr := n.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	common := []string{"DV_NETSIM_MODE=" + r.Mode, "DV_NETSIM_SECONDS=" + strconv.Itoa(r.Seconds),
		"DV_NETSIM_DIRECT=" + strconv.Itoa(r.DirectLimit)}
	seller, err := start(ctx, n, n.Seller, r.Exe, "seller", append(common, "DV_NETSIM_ROLE=seller", "DV_NETSIM_IP="+n.Seller.IP)...)
	if err != nil {
		return res, err
	}
	procs = append(procs, seller)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	addr, err := seller.expect(sctx, "ADDR ")
	if err != nil {
		return res, err
	}
	sellerAddr, key, _ := strings.Cut(addr, " ")
	var groups []*proc
	for g := 0; g < r.Groups; g++ {
		count := r.Viewers / r.Groups
		if g < r.Viewers%r.Groups {
			count++
		}
		p, err := start(ctx, n, n.Groups[g], r.Exe, fmt.Sprintf("viewers %d", g), append(common, "DV_NETSIM_ROLE=viewers",
			"DV_NETSIM_SELLER="+sellerAddr, "DV_NETSIM_KEY="+key, "DV_NETSIM_COUNT="+strconv.Itoa(count),
			"DV_NETSIM_GROUP="+strconv.Itoa(g), "DV_NETSIM_IP="+n.Groups[g].IP)...)
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
		groups = append(groups, p)
	}
	// Every process lists its peers' addresses; every process is told all of them (GossipSub
	// dials among the viewers; the relay modes ignore them: viewers find each other through
	// the seller's redirects).
	stage("seller up")
	var all []string
	for _, p := range groups {
		a, err := p.expect(sctx, "ADDRS")
		if err != nil {
			return res, err
		}
		all = append(all, strings.Fields(a)...)
	}
	for _, p := range append([]*proc{seller}, groups...) {
		if err := p.say("PEERS %s", strings.Join(all, " ")); err != nil {
			return res, err
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 4*time.Minute)
	defer rcancel()
	for _, p := range groups {
		if _, err := p.expect(rctx, "READY"); err != nil {
			return res, err
		}
	}
	stage("viewers ready")
	if r.Mode == "gossip" {
		time.Sleep(4 * time.Second) // the anchor's wait for the mesh to form
	}
	res.SetupSeconds = time.Since(t0).Seconds()
	c0, err := n.Counters(ctx, n.Seller)
	if err != nil {
		return res, err
	}
	busy0, t1 := busyCores(), time.Now()
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
	var proto, aux int64
	f := strings.Fields(done)
	if len(f) < 3 {
		return res, fmt.Errorf("the seller's DONE line %q is short", done)
	}
	if res.Blocks, err = strconv.Atoi(f[0]); err == nil {
		if res.StreamBytes, err = strconv.ParseInt(f[1], 10, 64); err == nil {
			res.SellerCPU, err = strconv.ParseFloat(f[2], 64)
		}
	}
	if err == nil {
		proto, aux, err = protocolBytes(f[3:])
	}
	if err != nil {
		return res, fmt.Errorf("the seller's DONE line %q: %w", done, err)
	}
	if busy := busyCores(); busy0 > 0 && busy > busy0 {
		res.MachineCPU = (busy - busy0) / time.Since(t1).Seconds()
	}
	stage("appended")
	for _, p := range groups {
		if err := p.say("DONE %d", res.Blocks); err != nil {
			return res, err
		}
	}
	var viewers []Viewer
	for _, p := range groups {
		line, err := p.expect(dctx, "RESULT ")
		if err != nil {
			return res, err
		}
		var gr GroupResult
		if err := json.Unmarshal([]byte(line), &gr); err != nil {
			return res, fmt.Errorf("the %s process's result: %w", p.name, err)
		}
		res.ViewersCPU += gr.CPU
		res.PubsubDrops += gr.Drops
		viewers = append(viewers, gr.Viewers...)
	}
	stage("results in")
	c1, err := n.Counters(ctx, n.Seller)
	if err != nil {
		return res, err
	}
	if len(f) > 3 {
		// The protocols' bytes over the wire count's window too (to the last result: a
		// loaded run's seller still sends after the appends end).
		if err := seller.say("BYTES"); err != nil {
			return res, err
		}
		line, err := seller.expect(dctx, "BYTES")
		if err != nil {
			return res, err
		}
		fmt.Fprintf(os.Stderr, "%s N=%d: the seller's bytes in each protocol, run to results:%s\n", r.Mode, r.Viewers, line)
		whole, wholeAux, err := protocolBytes(strings.Fields(line))
		if err != nil {
			return res, fmt.Errorf("the seller's BYTES line %q: %w", line, err)
		}
		if res.StreamBytes > 0 {
			res.ProtoCopiesAll = float64(whole) / float64(res.StreamBytes)
			res.AuxCopiesAll = float64(wholeAux) / float64(res.StreamBytes)
		}
	}
	if res.ShaperDrops, err = n.QdiscDrops(ctx); err != nil {
		return res, err
	}
	res.SellerTxBytes = c1.TxBytes - c0.TxBytes
	if res.StreamBytes > 0 {
		res.Copies = float64(res.SellerTxBytes) / float64(res.StreamBytes)
		res.ProtoCopies = float64(proto) / float64(res.StreamBytes)
		res.AuxCopies = float64(aux) / float64(res.StreamBytes)
	}
	summarize(&res, viewers)
	if res.MachineCPU > 0 {
		res.OthersCPU = max(0, res.MachineCPU-res.SellerCPU-res.ViewersCPU)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return res, nil
}

// busyCores is the machine's CPU time spent busy so far, in seconds (/proc/stat: everything
// but idle and iowait), or 0 when it cannot be read.
func busyCores() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:] {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is already in user
			busy += x
		}
	}
	return busy / 100 // USER_HZ
}

// summarize puts the viewers' figures into res.
func summarize(res *Result, viewers []Viewer) {
	got := 0
	var lat []float64
	for _, v := range viewers {
		got += v.Received
		res.MaxDepth = max(res.MaxDepth, v.Depth)
		vl := make([]float64, len(v.Lat))
		for i, x := range v.Lat {
			vl[i] = float64(x)
		}
		lat = append(lat, vl...)
		p99 := math.Inf(1)
		if len(vl) > 0 {
			p99 = Pct(vl, 99)
		}
		if float64(v.Received) >= ReachedShare*float64(res.Blocks) {
			res.Complete++
			if p99 <= ReachedP99ms {
				res.Reached++
			}
		}
		if !math.IsInf(p99, 1) {
			res.WorstViewerP99 = max(res.WorstViewerP99, p99)
		}
	}
	if res.Blocks > 0 && len(viewers) > 0 {
		res.Delivered = float64(got) / float64(res.Blocks*len(viewers))
	}
	if len(lat) > 0 {
		res.P50, res.P99, res.Max = Pct(lat, 50), Pct(lat, 99), slices.Max(lat)
	}
}

// Pct is the nearest-rank percentile (NaN for no values).
func Pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// protocolBytes reads the seller's bytes in each protocol (DONE's and BYTES's tail): the
// first is the replication protocol's, the rest (Have links) are summed.
func protocolBytes(fields []string) (proto, aux int64, err error) {
	for i, w := range fields {
		b, err := strconv.ParseInt(w, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if i == 0 {
			proto = b
		} else {
			aux += b
		}
	}
	return proto, aux, nil
}
