package xtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// GoCommand is `go args...` for a program or test binary that a test builds and runs itself,
// never with the race detector. Its build flags are $DV_GOFLAGS: `make test` sets them to the
// release build's (-trimpath -buildmode=pie, as packaging/linux/build.sh builds the .deb), so
// that these builds, vet, the benchmarks and the installer share one build configuration and
// a cold machine compiles the dependencies once for all of them, not once more for the .deb.
// Unset, the go command's defaults apply.
func GoCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("DV_GOFLAGS"))
	return cmd
}

// PlainTestBinary builds the test binary of the package in the working directory without the
// race detector (go test -c, GoCommand's flags) into dir and returns its path. Timing tests and
// simulated peers run it from a -race test: the race detector's cost is not what they measure.
func PlainTestBinary(ctx context.Context, dir string) (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("building the test binary without -race: %w", err)
	}
	exe := filepath.Join(dir, "plain.test")
	if out, err := GoCommand(ctx, "test", "-c", "-o", exe, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test binary without -race: %w: %s", err, out)
	}
	return exe, nil
}
