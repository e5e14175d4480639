package p2p

import (
	"testing"

	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"
)

// A node's resource manager reports nothing to Prometheus: its reporter runs a tracer that
// formats a timestamp for every stream and memory event, about a tenth of a seller's CPU
// when peers open streams in a loop, for metrics nothing in the app reads.
func TestResourceManagerReportsNoMetrics(t *testing.T) {
	// libp2p's collectors are package globals that any resource manager with metrics on
	// fills in; a registry of the test's own shows whether any did.
	reg := prometheus.NewRegistry()
	rcmgr.MustRegisterWith(reg)
	newTestNode(t, Config{})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if m.GetGauge().GetValue() != 0 || m.GetCounter().GetValue() != 0 || m.GetHistogram().GetSampleCount() != 0 {
				t.Fatalf("the resource manager reports %s to Prometheus (%v): its tracer runs on every scope event", f.GetName(), m)
			}
		}
	}
}
