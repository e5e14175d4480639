package replicate

// The replication figures of `make bench` (scripts/bench.d/replicate.sh). The test binary runs
// them when DV_REPLBENCH names an output file: the workloads (b) replicate, (c) live tail and
// (d) verify / late join of ../shared/reference/hypercore, written in its JSON shape so that
// its compare.js prints the ratios. Every workload replicates over real libp2p hosts on
// 127.0.0.1 (TCP, Noise, yamux): encryption on, like the reference's secret-stream.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// benchTB is the little of testing.TB the helpers need, for use outside a test.
type benchTB struct {
	cleanups []func()
	dir      string
	n        int
}

func (b *benchTB) Helper()                   {}
func (b *benchTB) Cleanup(f func())          { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (b *benchTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (b *benchTB) TempDir() string {
	b.n++
	d := filepath.Join(b.dir, strconv.Itoa(b.n))
	if err := os.MkdirAll(d, 0o700); err != nil {
		panic(err)
	}
	return d
}
func (b *benchTB) done() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

type benchResult struct {
	Label  string               `json:"label"`
	Median map[string]float64   `json:"median"`
	Runs   []map[string]float64 `json:"runs"`
}

func benchNode(identity []byte) *p2p.Node {
	if identity == nil {
		identity, _ = p2p.NewIdentity()
	}
	sk, err := p2p.ParseIdentity(identity)
	if err != nil {
		panic(err)
	}
	n, err := p2p.New(context.Background(), p2p.Config{Identity: sk, PrivateAddrs: true,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Reachability: p2p.ReachabilityPublic,
		DHTClientOnly: true, NoRelayService: true, Protocols: []protocol.ID{wire.Protocol}})
	if err != nil {
		panic(err)
	}
	return n
}

// benchPair is a seller with n blocks and a fresh viewer (not connected yet).
type benchPair struct {
	tb     *benchTB
	sf     *feed.Feed
	sn, vn *p2p.Node
	vf     *feed.Feed
	seller *Seller
}

func newBenchPair(tb *benchTB, n, size, batch int) *benchPair {
	p := &benchPair{tb: tb}
	p.sf, _ = newWriter(tb, filepath.Join(tb.TempDir(), "w"), 0, 0)
	for i := 0; i < n; i += batch {
		var bs [][]byte
		for j := i; j < n && j < i+batch; j++ {
			bs = append(bs, block(uint64(j), size))
		}
		if _, err := p.sf.Append(bs...); err != nil {
			panic(err)
		}
	}
	// Setup is not timed: put it on disk now, or the first signed proof would sync it.
	if err := p.sf.Sync(); err != nil {
		panic(err)
	}
	p.sn, p.vn = benchNode(nil), benchNode(nil)
	tb.Cleanup(func() { p.sn.Close(); p.vn.Close() })
	var err error
	if p.seller, err = NewSeller(SellerConfig{Host: p.sn.Host(), Feed: p.sf, Logger: quietLogger()}); err != nil {
		panic(err)
	}
	tb.Cleanup(func() { p.seller.Close() })
	p.vf = newReader(tb, filepath.Join(tb.TempDir(), "r"), p.sf.Key())
	return p
}

// viewer starts a viewer; the connection is made when it runs (timed by the caller).
func (p *benchPair) viewer(live bool, onBlock func(uint64, []byte)) (*Viewer, func()) {
	v, err := NewViewer(ViewerConfig{Dialer: p.vn, Seller: p.sn.AddrInfo(), Feed: p.vf, Live: live, OnBlock: onBlock,
		Logger: quietLogger()})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = v.Run(ctx); close(done) }()
	return v, func() { cancel(); <-done }
}

func fetchAll(v *Viewer, n uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := v.Fetch(ctx, 0, n); err != nil {
		panic(err)
	}
}

func benchReplicate(tb *benchTB, n int) map[string]float64 {
	p := newBenchPair(tb, n, 64<<10, 64)
	runtime.GC()
	t0 := time.Now()
	v, stop := p.viewer(false, nil)
	fetchAll(v, uint64(n))
	sec := time.Since(t0).Seconds()
	stop()
	if p.vf.Stored() != uint64(n) {
		panic("replicate: reader is missing blocks")
	}
	mb := float64(n) * 65536 / 1e6
	return map[string]float64{"MBps": mb / sec, "blocksPerSec": float64(n) / sec, "seconds": sec, "blocks": float64(n)}
}

func benchVerify(tb *benchTB, n, size int) map[string]float64 {
	p := newBenchPair(tb, n, size, 256)
	runtime.GC()
	t0 := time.Now()
	v, stop := p.viewer(false, nil)
	fetchAll(v, uint64(n))
	ms := float64(time.Since(t0).Microseconds()) / 1000
	stop()
	if p.vf.Stored() != uint64(n) {
		panic("verify: reader is missing blocks")
	}
	return map[string]float64{"totalMs": ms, "usPerBlock": ms * 1000 / float64(n)}
}

func benchLateJoin(tb *benchTB, n int) map[string]float64 {
	p := newBenchPair(tb, n, 1024, 256)
	heads, unsub := p.vf.Subscribe()
	defer unsub()
	runtime.GC()
	t0 := time.Now()
	v, stop := p.viewer(false, nil)
	defer stop()
	// One round trip: the range asks for the last block; the seller answers with the
	// upgrade to the signed length and then the block with its path.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = v.Fetch(ctx, uint64(n-1), uint64(n))
	}()
	var up time.Duration
	for h := range heads {
		if h.Length == uint64(n) {
			up = time.Since(t0)
			break
		}
	}
	for !p.vf.Has(uint64(n - 1)) {
		time.Sleep(20 * time.Microsecond)
	}
	total := time.Since(t0)
	return map[string]float64{"totalMs": ms(total), "upgradeMs": ms(up), "getMs": ms(total - up),
		"blocksStored": float64(p.vf.Stored())}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func benchLiveTail(tb *benchTB, count int) map[string]float64 {
	const pre, size = 1000, 16 << 10
	p := newBenchPair(tb, pre, size, 256)
	got := make([]atomic.Int64, pre+count)
	base := time.Now()
	_, stop := p.viewer(true, func(i uint64, _ []byte) {
		if i < uint64(len(got)) {
			got[i].Store(int64(time.Since(base)))
		}
	})
	defer stop()
	for p.vf.Length() < pre {
		time.Sleep(time.Millisecond)
	}
	blocks := make([][]byte, count)
	for i := range blocks {
		blocks[i] = block(uint64(i), size)
	}
	runtime.GC()
	starts := make([]time.Duration, count)
	ends := make([]time.Duration, count)
	t0 := time.Now()
	for k := 0; k < count; k++ {
		if d := time.Until(t0.Add(time.Duration(k) * 33 * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		starts[k] = time.Since(base)
		if _, err := p.sf.Append(blocks[k]); err != nil {
			panic(err)
		}
		ends[k] = time.Since(base)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && got[pre+count-1].Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var lat, after, app []float64
	received := 0
	for k := 0; k < count; k++ {
		app = append(app, ms(ends[k]-starts[k]))
		g := time.Duration(got[pre+k].Load())
		if g == 0 {
			continue
		}
		received++
		lat = append(lat, ms(g-starts[k]))
		after = append(after, ms(g-ends[k]))
	}
	history := 0
	for i := uint64(0); i < pre; i++ {
		if p.vf.Has(i) {
			history++
		}
	}
	return map[string]float64{"received": float64(received), "p50": pct(lat, 50), "p90": pct(lat, 90),
		"p99": pct(lat, 99), "max": pct(lat, 100), "upgradeP50": pct(lat, 50),
		"afterAppendP50": pct(after, 50), "afterAppendP99": pct(after, 99),
		"writerAppendP50": pct(app, 50), "writerAppendP99": pct(app, 99), "historyFetched": float64(history)}
}

// pct is the nearest-rank percentile, as the reference computes it.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(runs []map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k := range runs[0] {
		var v []float64
		for _, r := range runs {
			v = append(v, r[k])
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			out[k] = v[len(v)/2]
		} else {
			out[k] = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
	}
	return out
}

// runBench writes the results JSON to path. Settings: RUNS (default 3), ONLY (b,c,d).
func runBench(path string) {
	runs := 3
	if s := os.Getenv("RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	durName := "SyncBeforeShare"
	switch os.Getenv("DV_DURABILITY") {
	case "", "sync":
	case "fork":
		writerDurability, durName = feed.ForkOnPowerLoss, "ForkOnPowerLoss"
	default:
		panic("DV_DURABILITY is sync or fork")
	}
	only := os.Getenv("ONLY")
	if only == "" {
		only = "b,c,d"
	}
	tmp, err := os.MkdirTemp("", "replbench")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	var st0 [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &st0[0], &st0[1], &st0[2])
	}
	if pf := os.Getenv("DV_CPUPROFILE"); pf != "" {
		f, err := os.Create(pf)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	start := time.Now()
	results := map[string]benchResult{}
	do := func(group, key, label string, f func(tb *benchTB) map[string]float64) {
		if !strings.Contains(only, group) {
			return
		}
		var rs []map[string]float64
		for r := 0; r < runs; r++ {
			tb := &benchTB{dir: filepath.Join(tmp, key, strconv.Itoa(r))}
			fmt.Fprintf(os.Stderr, "# %s run %d\n", key, r+1)
			rs = append(rs, f(tb))
			tb.done()
			os.RemoveAll(tb.dir)
		}
		results[key] = benchResult{Label: label, Median: median(rs), Runs: rs}
	}
	nRep := int(math.Ceil(200e6 / 65536))
	do("b", "replicate_64KiB", "(b) replicate 64 KiB blocks, 200 MB", func(tb *benchTB) map[string]float64 { return benchReplicate(tb, nRep) })
	do("c", "liveTail_16KiB_33ms", "(c) live tail 16 KiB / 33 ms, 300 blocks", func(tb *benchTB) map[string]float64 { return benchLiveTail(tb, 300) })
	for _, size := range []int{1024, 16384} {
		for _, n := range []int{1000, 10000} {
			key := fmt.Sprintf("verifyDownload_%dx%dKiB", n, size/1024)
			do("d", key, fmt.Sprintf("(d) fresh reader download+verify %d x %d KiB", n, size/1024),
				func(tb *benchTB) map[string]float64 { return benchVerify(tb, n, size) })
		}
	}
	do("d", "lateJoin_last_of_100000", "(d) late join: get last block of 100000 x 1 KiB", func(tb *benchTB) map[string]float64 { return benchLateJoin(tb, 100000) })

	var st1 [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &st1[0], &st1[1], &st1[2])
	}
	fs := "unknown"
	if out, err := os.ReadFile("/proc/mounts"); err == nil {
		fs = mountFS(string(out), tmp)
	}
	units := map[string]string{}
	if b, err := os.ReadFile(os.Getenv("DV_REFERENCE_JSON")); err == nil {
		var ref struct {
			Units map[string]string `json:"units"`
		}
		_ = json.Unmarshal(b, &ref)
		units = ref.Units
	}
	out := map[string]any{
		"meta": map[string]any{
			"implementation": "dazaar-vision stream/replicate over go-libp2p (TCP, Noise, yamux) on 127.0.0.1",
			"go":             runtime.Version(), "platform": runtime.GOOS + " " + runtime.GOARCH,
			"cpus": runtime.NumCPU(), "storage": "temp directory on " + fs + " (stream/feed, durability " + durName + ")",
			"runs": runs, "quick": false, "only": only,
			"plan": map[string]any{
				"replicate":      map[string]any{"blockSize": 65536, "totalBytes": 200000000},
				"liveTail":       map[string]any{"blockSize": 16384, "count": 300, "intervalMs": 33, "preexisting": 1000},
				"verifyDownload": map[string]any{"counts": []int{1000, 10000}, "blockSizes": []int{1024, 16384}},
				"lateJoin":       map[string]any{"count": 100000, "blockSize": 1024},
			},
			"date": time.Now().UTC().Format(time.RFC3339), "loadavgStart": st0, "loadavgEnd": st1,
			"elapsedSec": time.Since(start).Seconds(),
		},
		"units":   units,
		"results": results,
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		panic(err)
	}
}

// mountFS names the file system type of the longest mount point containing dir.
func mountFS(mounts, dir string) string {
	best, fs := "", "unknown"
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if strings.HasPrefix(dir, f[1]) && len(f[1]) > len(best) {
			best, fs = f[1], f[2]
		}
	}
	return fs
}
