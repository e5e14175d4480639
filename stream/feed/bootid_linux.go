package feed

import (
	"os"
	"strings"
)

// bootID names the running boot of the operating system: it changes when the
// machine restarts (after a power loss too), not when a process does.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
