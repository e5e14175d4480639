// Package leaktest holds the goroutine-leak check shared by the replication packages' tests.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// Options lists goroutines that libp2p and its dependencies start once per process and never
// stop, so that goleak reports only goroutines our sessions leave behind.
func Options() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"),
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2.(*PipeReader).Read"),
	}
}

// Main runs the package's tests and fails them if goroutines are left running afterwards.
func Main(m *testing.M) { goleak.VerifyTestMain(m, Options()...) }
