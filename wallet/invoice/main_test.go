package invoice

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a seller, watcher or LND client leaves goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
