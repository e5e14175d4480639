package replicate

// The audience a seller reaches through a home uplink (issue 13), measured in network
// namespaces by ../internal/fanoutlab (netfanout_ext_test.go): the seller's upload shaped with
// tc, viewers in groups, one namespace and one process per group (this test binary again).
// fanoutlab imports this package, so the measuring code lives in package replicate_test, and
// TestMain reaches it through these hooks, which that file's init sets.

// NetsimRole runs a process of a fanoutlab run (DV_NETSIM_ROLE set); NetsimBench runs the
// namespaces sweep (DV_NETSIM_BENCH="mode:N,N,...;mode:..."). Neither returns.
var NetsimRole, NetsimBench func(string)

func runNetsimRole(role string) { NetsimRole(role) }

func runNetBench(spec string) { NetsimBench(spec) }
