package feed

import "golang.org/x/sys/unix"

// bootID names the running boot of the operating system: it changes when the
// machine restarts (after a power loss too), not when a process does.
func bootID() string {
	s, err := unix.Sysctl("kern.bootsessionuuid")
	if err != nil {
		return ""
	}
	return s
}
