//go:build race

package replicate_test

// raceEnabled: this test binary has the race detector, which would make the simulated viewers
// several times slower; the namespace runs use a plain build instead.
const raceEnabled = true
