package lightning

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a subscription or its reconnect loop leaves goroutines behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
