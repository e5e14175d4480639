package replicate

// Fan-out figure of `make bench`: one seller, N viewers at about 1 Mbit/s each on loopback.
// The seller runs in this process; the viewers are spread over further processes (this test
// binary again, DV_FANOUT_VIEWERS set; DV_FANOUT_PROCS of them, by default one per 100
// viewers). Latency is append() called → the viewer has the verified block, from a timestamp
// the seller writes into each block (one machine, one wall clock). The seller's side of it is
// measured too: append() called → the block's bytes written to that viewer's stream (the
// seller's queueing), so a run says which side gives way first: the seller, or the simulated
// viewers sharing the machine's cores with it. Next to it, the
// plain go-libp2p baseline of ../shared/notes/scale-anchor.md: one stream per viewer, a writer
// goroutine per viewer with a 512-block queue, no verification.
//
// Diagnostics: DV_SELLER_CPUPROFILE=file and DV_VIEWERS_CPUPROFILE=file profile either side
// (the latter the first viewers' process); DV_FANOUT_SERIES=1 prints each second's mean and
// worst latency of both sides (DV_FANOUT_SERIES=k, k > 1: each k blocks'), which tells a
// start-up backlog from a steady queue.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/internal/anchor"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

const baselineProto = "/dazaar-vision/bench-baseline/1"

// FanoutResult is one fan-out run, as the seller process reports it.
type FanoutResult struct {
	Mode           string  `json:"mode"`
	Viewers        int     `json:"viewers"`
	Seconds        float64 `json:"seconds"`
	Expected       int     `json:"expected"`
	Delivered      int     `json:"delivered"`
	P50, P99, Max  float64 // ms over all viewers' blocks
	WorstViewerP99 float64 `json:"worstViewerP99"`
	SellerCPU      float64 `json:"sellerCPU"`     // cores used by the seller process while appending
	SellerMbps     float64 `json:"sellerMbps"`    // payload sent by the seller, all viewers
	CoresPerGbps   float64 `json:"coresPerGbps"`  // seller CPU per Gbit/s sent
	ViewerProcCPU  float64 `json:"viewerProcCPU"` // cores used by the viewers' processes together
	ViewerProcs    int     `json:"viewerProcs"`   // processes the viewers were spread over
	// The seller's side: append() called → the block written to the viewer's stream.
	SellerP50, SellerP99 float64
	WorstViewerSellerP99 float64   `json:"worstViewerSellerP99"`
	Limit                string    `json:"limit"`                // "none", "seller" or "viewers": where the worst viewer's p99 accrued
	ViewerP99s           []float64 `json:"viewerP99s,omitempty"` // per viewer, from a viewers' process
	LatFile              string    `json:"latFile,omitempty"`    // a viewers' process's raw latencies
	Drops                int64     `json:"drops"`                // baseline: blocks dropped by full queues
	Payload              int64     `json:"payload"`              // block bytes the viewers received
}

func lightHost() host.Host {
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.Security(noise.ID, noise.New), libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(),
		libp2p.DisableMetrics())
	if err != nil {
		panic(err)
	}
	return h
}

// hostDialer adapts a bare host to Dialer.
type hostDialer struct{ h host.Host }

func (d hostDialer) Host() host.Host                                     { return d.h }
func (d hostDialer) Connect(ctx context.Context, ai peer.AddrInfo) error { return d.h.Connect(ctx, ai) }
func (d hostDialer) WaitDirect(context.Context, peer.ID) error           { return nil }

// runFanout is the seller side of one run (DV_FANOUT=mode:N:seconds, result JSON to stdout).
func runFanout(spec string) {
	parts := strings.Split(spec, ":")
	mode := parts[0]
	n, _ := strconv.Atoi(parts[1])
	dur, _ := strconv.Atoi(parts[2])
	tmp, _ := os.MkdirTemp("", "fanout")
	defer os.RemoveAll(tmp)
	// The live broadcaster's durability (app/session's Broadcaster): signatures leave without
	// waiting for the disk, so a live push is one message, not early data and a signature.
	// DV_DURABILITY=sync measures the feed's default instead.
	writerDurability = feed.ForkOnPowerLoss
	if os.Getenv("DV_DURABILITY") == "sync" {
		writerDurability = feed.SyncBeforeShare
	}

	var h host.Host
	var f *feed.Feed
	var queues struct {
		sync.Mutex
		qs []chan []byte
	}
	var drops atomic.Int64
	sside := newSellerSide(dur * 30)
	tb := &benchTB{dir: tmp}
	defer tb.done()
	switch mode {
	case "ours":
		f, _ = newWriter(tb, filepath.Join(tmp, "seller"), 0, 0)
		node := benchNode(nil)
		defer node.Close()
		h = node.Host()
		s, err := NewSeller(SellerConfig{Host: h, Feed: f, Logger: quietLogger(), Gate: sside})
		if err != nil {
			panic(err)
		}
		defer s.Close()
	case "baseline":
		var err error
		h, err = libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.ResourceManager(&network.NullResourceManager{}),
			libp2p.Security(noise.ID, noise.New), libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableMetrics())
		if err != nil {
			panic(err)
		}
		defer h.Close()
		h.SetStreamHandler(baselineProto, func(s network.Stream) {
			q := make(chan []byte, 512) // the anchor's queue; a full queue drops the block
			queues.Lock()
			queues.qs = append(queues.qs, q)
			queues.Unlock()
			go func() {
				defer s.Reset()
				w := bufio.NewWriter(s)
				var hdr [4]byte
				var unflushed []int64 // append times of the blocks in w
				viewer := s.Conn().RemotePeer()
				for b := range q {
					binary.LittleEndian.PutUint32(hdr[:], uint32(len(b)))
					w.Write(hdr[:])
					w.Write(b)
					unflushed = append(unflushed, int64(binary.LittleEndian.Uint64(b)))
					if len(q) == 0 {
						if w.Flush() != nil {
							return
						}
						for _, at := range unflushed {
							sside.record(viewer, at)
						}
						unflushed = unflushed[:0]
					}
				}
			}()
		})
	}
	addr := fmt.Sprintf("%s/p2p/%s", h.Addrs()[0], h.ID())
	key := [32]byte{}
	if f != nil {
		key = f.Key()
	}
	procs := (n + 99) / 100
	if v, err := strconv.Atoi(os.Getenv("DV_FANOUT_PROCS")); err == nil && v > 0 {
		procs = min(v, n)
	}
	type viewerProc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		sc    *bufio.Scanner
	}
	vps := make([]viewerProc, procs)
	for i := range vps {
		count := n / procs
		if i < n%procs {
			count++
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "DV_REPLBENCH=", "DV_FANOUT=", "DV_FANOUT_VIEWERS="+strconv.Itoa(count), "DV_FANOUT_MODE="+mode,
			"DV_FANOUT_ADDR="+addr, "DV_FANOUT_KEY="+hex.EncodeToString(key[:]), "DV_FANOUT_DIR="+filepath.Join(tmp, "p"+strconv.Itoa(i)))
		if i > 0 {
			cmd.Env = append(cmd.Env, "DV_VIEWERS_CPUPROFILE=") // one profile, of the first process
		}
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		vps[i] = viewerProc{cmd, stdin, sc}
	}
	for _, vp := range vps {
		if !vp.sc.Scan() || vp.sc.Text() != "READY" {
			panic("viewer process did not get ready: " + vp.sc.Text())
		}
	}
	// DV_SELLER_CPUPROFILE profiles the seller's process while it appends.
	if pf := os.Getenv("DV_SELLER_CPUPROFILE"); pf != "" {
		if f, err := os.Create(pf); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	runtime.GC() // the set-up's garbage, as in the viewers' processes
	// Append for dur seconds at 30 blocks/s.
	r := rand.New(rand.NewPCG(1, 2))
	count := dur * 30
	cpu0, t0 := anchor.CPUSeconds(), time.Now()
	for i := 0; i < count; i++ {
		if d := time.Until(t0.Add(time.Duration(i) * time.Second / 30)); d > 0 {
			time.Sleep(d)
		}
		b := anchor.Block(i, r)
		sside.appended[i].Store(int64(binary.LittleEndian.Uint64(b)))
		switch mode {
		case "ours":
			var err error
			if i%60 == 0 {
				_, err = f.AppendSync(b)
			} else {
				_, err = f.Append(b)
			}
			if err != nil {
				panic(err)
			}
		case "baseline":
			queues.Lock()
			for _, q := range queues.qs {
				select {
				case q <- b:
				default:
					drops.Add(1)
				}
			}
			queues.Unlock()
		}
	}
	time.Sleep(time.Second)
	secs := time.Since(t0).Seconds()
	cpu := (anchor.CPUSeconds() - cpu0) / secs
	for _, vp := range vps {
		fmt.Fprintf(vp.stdin, "DONE %d\n", count)
	}
	var res FanoutResult
	var all, worst []float64
	for _, vp := range vps {
		if !vp.sc.Scan() {
			panic("viewer process sent no result")
		}
		var part FanoutResult
		if err := json.Unmarshal(vp.sc.Bytes(), &part); err != nil {
			panic(err)
		}
		_ = vp.cmd.Wait()
		lats, err := readLatencies(part.LatFile)
		if err != nil {
			panic(err)
		}
		all = append(all, lats...)
		worst = append(worst, part.ViewerP99s...)
		res.ViewerProcCPU += part.ViewerProcCPU
		res.Payload += part.Payload
	}
	res.ViewerProcs = procs
	if os.Getenv("DV_FANOUT_SERIES") != "" {
		printSeries(all, n, count, sside)
	}
	res.Delivered = len(all)
	res.P50, res.P99, res.Max = pct(all, 50), pct(all, 99), pct(all, 100)
	res.WorstViewerP99 = pct(worst, 100)
	res.SellerP50, res.SellerP99, res.WorstViewerSellerP99 = sside.figures(n)
	res.Limit = limitSide(res.WorstViewerP99, res.WorstViewerSellerP99)
	res.Mode, res.Viewers, res.Seconds, res.Expected, res.SellerCPU, res.Drops = mode, n, secs, count*n, cpu, drops.Load()
	res.SellerMbps = float64(res.Payload) * 8 / secs / 1e6
	if res.SellerMbps > 0 {
		res.CoresPerGbps = cpu / (res.SellerMbps / 1000)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// runFanoutViewers is the viewers' process.
func runFanoutViewers() {
	n, _ := strconv.Atoi(os.Getenv("DV_FANOUT_VIEWERS"))
	mode := os.Getenv("DV_FANOUT_MODE")
	ai, err := peer.AddrInfoFromString(os.Getenv("DV_FANOUT_ADDR"))
	if err != nil {
		panic(err)
	}
	var key [32]byte
	kb, _ := hex.DecodeString(os.Getenv("DV_FANOUT_KEY"))
	copy(key[:], kb)
	dir := os.Getenv("DV_FANOUT_DIR")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		panic(err)
	}

	type viewerLat struct {
		mu  sync.Mutex
		lat []float64
	}
	lats := make([]*viewerLat, n)
	var payload atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	sem := make(chan struct{}, 16)
	tb := &benchTB{dir: dir}
	for i := 0; i < n; i++ {
		lats[i] = &viewerLat{}
		vl := lats[i]
		record := func(b []byte) {
			if len(b) < 8 {
				return
			}
			sent := time.Unix(0, int64(binary.LittleEndian.Uint64(b)))
			d := time.Since(sent)
			vl.mu.Lock()
			vl.lat = append(vl.lat, ms(d))
			vl.mu.Unlock()
			payload.Add(int64(len(b)))
		}
		h := lightHost()
		ready.Add(1)
		sem <- struct{}{}
		switch mode {
		case "ours":
			vf := newReader(tb, filepath.Join(dir, "v"+strconv.Itoa(i)), key)
			var once sync.Once
			v, err := NewViewer(ViewerConfig{Dialer: hostDialer{h}, Seller: *ai, Feed: vf, Live: true, Logger: quietLogger(),
				OnAccess: func(wire.Access) { once.Do(func() { <-sem; ready.Done() }) },
				OnBlock:  func(_ uint64, b []byte) { record(b) }})
			if err != nil {
				panic(err)
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = v.Run(ctx); h.Close() }()
		case "baseline":
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer h.Close()
				if err := h.Connect(ctx, *ai); err != nil {
					panic(err)
				}
				s, err := h.NewStream(ctx, ai.ID, baselineProto)
				if err != nil {
					panic(err)
				}
				_, _ = s.Write(nil)
				<-sem
				ready.Done()
				go func() { <-ctx.Done(); s.Reset() }()
				br := bufio.NewReader(s)
				var hdr [4]byte
				for {
					if _, err := io.ReadFull(br, hdr[:]); err != nil {
						return
					}
					b := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
					if _, err := io.ReadFull(br, b); err != nil {
						return
					}
					record(b)
				}
			}()
		}
	}
	ready.Wait()
	time.Sleep(500 * time.Millisecond) // let the baseline's stream handlers register
	// Collect the set-up's garbage (hosts, handshakes) before the run, as testing.B does before
	// a benchmark: else the run starts inside a collection of the set-up heap.
	runtime.GC()
	if pf := os.Getenv("DV_VIEWERS_CPUPROFILE"); pf != "" {
		if f, err := os.Create(pf); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	cpu0, t0 := anchor.CPUSeconds(), time.Now()
	fmt.Println("READY")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	var expected int
	fmt.Sscanf(line, "DONE %d", &expected)
	// Give the last blocks a moment.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, vl := range lats {
			vl.mu.Lock()
			k := len(vl.lat)
			vl.mu.Unlock()
			if k < expected {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	vcpu := (anchor.CPUSeconds() - cpu0) / time.Since(t0).Seconds()
	cancel()
	wg.Wait()
	tb.done()
	var all []float64
	res := FanoutResult{ViewerProcCPU: vcpu, LatFile: filepath.Join(dir, "latencies")}
	for _, vl := range lats {
		vl.mu.Lock()
		all = append(all, vl.lat...)
		p := pct(vl.lat, 99)
		if len(vl.lat) == 0 {
			p = 1e9
		}
		res.ViewerP99s = append(res.ViewerP99s, p)
		vl.mu.Unlock()
	}
	if err := writeLatencies(res.LatFile, all); err != nil {
		panic(err)
	}
	res.Delivered = len(all)
	res.Payload = payload.Load()
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// sellerSide records, per viewer, append() called → the block written to the viewer's stream:
// ours through the gate's Delivered (told once the block's bytes reached the stream), the
// baseline when its writer flushed the block.
type sellerSide struct {
	FreeGate
	appended []atomic.Int64 // unix ns each block was appended, by index
	mu       sync.Mutex
	lat      map[peer.ID][]float64
}

func newSellerSide(blocks int) *sellerSide {
	return &sellerSide{appended: make([]atomic.Int64, blocks), lat: map[peer.ID][]float64{}}
}

// Delivered implements Gate for ours: the feed's block index is the bench's append order.
func (g *sellerSide) Delivered(viewer peer.ID, index uint64, _ int) {
	if index < uint64(len(g.appended)) {
		if at := g.appended[index].Load(); at != 0 {
			g.record(viewer, at)
		}
	}
}

func (g *sellerSide) record(viewer peer.ID, appendedAt int64) {
	d := ms(time.Since(time.Unix(0, appendedAt)))
	g.mu.Lock()
	g.lat[viewer] = append(g.lat[viewer], d)
	g.mu.Unlock()
}

// figures: p50 and p99 over all viewers' blocks, and the worst viewer's p99 (a viewer that got
// nothing counts as 1e9).
func (g *sellerSide) figures(viewers int) (p50, p99, worst float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var all []float64
	for _, l := range g.lat {
		all = append(all, l...)
		worst = max(worst, pct(l, 99))
	}
	if len(g.lat) < viewers {
		worst = 1e9
	}
	return pct(all, 50), pct(all, 99), worst
}

// limitSide says where a run's worst viewer p99 accrued: "none" when every viewer held 100 ms,
// "seller" when the seller's own queueing is at least half of it, else "viewers" (the
// simulated viewers' processes, which verify and store every block for all of them).
func limitSide(worst, sellerWorst float64) string {
	switch {
	case worst <= 100:
		return "none"
	case sellerWorst >= worst/2:
		return "seller"
	default:
		return "viewers"
	}
}

// writeLatencies and readLatencies pass a viewers' process's latencies (ms, float32) to the
// seller's process through a file.
func writeLatencies(path string, lat []float64) error {
	b := make([]byte, 0, 4*len(lat))
	for _, v := range lat {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	return os.WriteFile(path, b, 0o600)
}

func readLatencies(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lat := make([]float64, 0, len(b)/4)
	for i := 0; i+4 <= len(b); i += 4 {
		lat = append(lat, float64(math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))))
	}
	return lat, nil
}

// printSeries writes each second's mean and worst latency to stderr, both sides, to tell a
// start-up transient or periodic spikes from a steady queue (DV_FANOUT_SERIES=1). Each viewer's
// latencies are in arrival order, which for live pushes is append order.
func printSeries(all []float64, viewers, count int, sside *sellerSide) {
	if len(all) != viewers*count {
		fmt.Fprintf(os.Stderr, "series: %d of %d blocks delivered, no series\n", len(all), viewers*count)
		return
	}
	sside.mu.Lock()
	defer sside.mu.Unlock()
	bucket := 30 // blocks: one second
	if b, err := strconv.Atoi(os.Getenv("DV_FANOUT_SERIES")); err == nil && b > 1 {
		bucket = b
	}
	for sec := 0; sec < count/bucket; sec++ {
		var sum, worst, ssum, sworst float64
		var sn int
		for k := sec * bucket; k < sec*bucket+bucket; k++ {
			for v := 0; v < viewers; v++ {
				sum += all[v*count+k]
				worst = max(worst, all[v*count+k])
			}
		}
		for _, l := range sside.lat {
			for k := sec * bucket; k < min(sec*bucket+bucket, len(l)); k++ {
				ssum += l[k]
				sworst = max(sworst, l[k])
				sn++
			}
		}
		fmt.Fprintf(os.Stderr, "series block %-4d e2e mean %6.1f max %7.1f ms   seller mean %6.1f max %7.1f ms\n",
			sec*bucket, sum/float64(bucket*viewers), worst, ssum/float64(max(sn, 1)), sworst)
	}
}
