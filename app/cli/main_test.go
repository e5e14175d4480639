package cli

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// The commands' tests run real broadcasters and viewers: whatever they start must have ended
// when the tests do. (Fyne, linked for the ui command, starts one goroutine when its packages
// initialise.)
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, xtest.LeakOptions(
		goleak.IgnoreAnyFunction("fyne.io/fyne/v2/internal/async.(*UnboundedChan[...]).processing"))...)
}
