package xtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// PlainTestBinary builds the test binary of the package in the working directory without the
// race detector (go test -c, GOFLAGS cleared) into dir and returns its path. Timing tests and
// simulated peers run it from a -race test: the race detector's cost is not what they measure.
func PlainTestBinary(ctx context.Context, dir string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the test binary without -race: %w", err)
	}
	exe := filepath.Join(dir, "plain.test")
	cmd := exec.CommandContext(ctx, gobin, "test", "-c", "-o", exe, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test binary without -race: %w: %s", err, out)
	}
	return exe, nil
}
