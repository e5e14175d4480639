package feed

import (
	"regexp"
	"testing"
)

// macOS names each boot with a UUID (sysctl kern.bootsessionuuid): the boot identity is
// known, shaped like a UUID and the same for the whole boot. Runs on the macOS CI workflow
// (.github/workflows/macos.yml); no machine here runs macOS.
func TestBootIDDarwin(t *testing.T) {
	a := bootID()
	if !regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`).MatchString(a) {
		t.Fatalf("bootID() = %q, want the boot session's UUID", a)
	}
	if b := bootID(); b != a {
		t.Fatalf("bootID() changed within a boot: %q then %q", a, b)
	}
}
