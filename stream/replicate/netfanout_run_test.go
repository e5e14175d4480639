package replicate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/internal/netsim"
)

// debugNS prints a run's figures in the test log.
func (r nsResult) String() string {
	return fmt.Sprintf("%s N=%d: reached %d (complete %d), delivered %.2f%%, p50/p99/max %.1f/%.1f/%.1f ms, worst viewer p99 %.1f ms, seller copies %.2f, seller CPU %.3f, viewers CPU %.2f, shaper drops %d, load %s",
		r.Mode, r.Viewers, r.Reached, r.Complete, 100*r.Delivered, r.P50, r.P99, r.Max, r.WorstViewerP99, r.Copies, r.SellerCPU, r.ViewersCPU, r.ShaperDrops, r.Load)
}

// The seller's uplink is shaped to 20 Mbit/s and the stream is about 1 Mbit/s: with relaying
// off it reaches about uplink / bit rate viewers, however many come.
func TestAudienceThroughShapedUplink(t *testing.T) {
	if err := netsim.Check(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := runNetFanout(ctx, nsRun{Mode: "star", Viewers: 30, Groups: 3, Seconds: 8, Uplink: "20mbit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
}

// runNetBench is the namespaces sweep of `make bench` (DV_NETSIM_BENCH="mode:N,N,...;mode:..."):
// one JSON line per run on stdout. DV_NETSIM_SECONDS, DV_NETSIM_GROUPS (viewers per group),
// DV_NETSIM_UPLINK (default 20mbit) and DV_NETSIM_STOP_MS (stop a mode's sweep once its p99
// passed this) tune it.
func runNetBench(spec string) {
	secs := envInt("DV_NETSIM_SECS", 20)
	per := envInt("DV_NETSIM_PER_GROUP", 50)
	stop := float64(envInt("DV_NETSIM_STOP_MS", 0))
	uplink := os.Getenv("DV_NETSIM_UPLINK")
	if uplink == "" {
		uplink = "20mbit"
	}
	for _, part := range strings.Split(spec, ";") {
		mode, counts, _ := strings.Cut(part, ":")
		for _, c := range strings.Split(counts, ",") {
			n, err := strconv.Atoi(c)
			if err != nil {
				nsFail("bench", fmt.Errorf("%q: %w", part, err))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+15*time.Minute)
			r, err := runNetFanout(ctx, nsRun{Mode: mode, Viewers: n, Groups: (n + per - 1) / per, Seconds: secs, Uplink: uplink})
			cancel()
			if err != nil {
				fmt.Fprintf(os.Stderr, "netsim bench %s %d: %v\n", mode, n, err)
				r.nsRun = nsRun{Mode: mode, Viewers: n}
				r.P99 = -1
			}
			out, _ := json.Marshal(r)
			fmt.Println(string(out))
			fmt.Fprintln(os.Stderr, r)
			if stop > 0 && (r.P99 < 0 || r.WorstViewerP99 > stop) {
				break
			}
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
