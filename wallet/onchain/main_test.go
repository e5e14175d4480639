package onchain

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a watcher leaves goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
