//go:build !linux && !darwin && !windows

package feed

// bootID is unknown here: every unclean shutdown of a ForkOnPowerLoss writer
// is taken as a possible power loss.
func bootID() string { return "" }
