package fanoutlab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Bench is the namespaces sweep of `make bench` (spec "mode:N,N,...;mode:..."): one JSON line
// per run on stdout, the run's summary on stderr. Environment: DV_NETSIM_SECS (default 20),
// DV_NETSIM_PER_GROUP (viewers per process, default 50), DV_NETSIM_UPLINK (default 20mbit),
// DV_NETSIM_STOP_MS (a mode's sweep stops after the first run whose p99 passed this; 0: never),
// DV_NETSIM_DIRECT_<MODE> (the seller's limit on its own viewers in that mode).
func Bench(spec string) {
	secs := envInt("DV_NETSIM_SECS", 20)
	per := envInt("DV_NETSIM_PER_GROUP", 50)
	stop := float64(envInt("DV_NETSIM_STOP_MS", 0))
	uplink := os.Getenv("DV_NETSIM_UPLINK")
	if uplink == "" {
		uplink = "20mbit"
	}
	for _, part := range strings.Split(spec, ";") {
		mode, counts, _ := strings.Cut(part, ":")
		direct := envInt("DV_NETSIM_DIRECT_"+strings.ToUpper(mode), 0)
		for _, c := range strings.Split(counts, ",") {
			n, err := strconv.Atoi(c)
			if err != nil {
				fmt.Fprintf(os.Stderr, "netsim bench: %q: %v\n", part, err)
				os.Exit(2)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+15*time.Minute)
			r, err := Measure(ctx, Run{Mode: mode, Viewers: n, Groups: (n + per - 1) / per, Seconds: secs,
				Uplink: uplink, DirectLimit: direct})
			cancel()
			if err != nil {
				fmt.Fprintf(os.Stderr, "netsim bench %s %d: %v\n", mode, n, err)
				r.Err = err.Error()
				r.P99 = -1
			}
			out, _ := json.Marshal(r)
			fmt.Println(string(out))
			fmt.Fprintln(os.Stderr, r)
			if stop > 0 && (r.P99 < 0 || r.P99 > stop) {
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
