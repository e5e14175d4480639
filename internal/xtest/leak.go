package xtest

import "go.uber.org/goleak"

// LeakOptions are goleak's options for every test that checks for leaked goroutines: the
// goroutines libp2p's dependencies start once per process and never stop are set aside, and
// extra adds a package's own (a GUI toolkit's, a capture driver's).
func LeakOptions(extra ...goleak.Option) []goleak.Option {
	return append([]goleak.Option{
		goleak.IgnoreTopFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"),
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2.(*PipeReader).Read"),
	}, extra...)
}
