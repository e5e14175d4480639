//go:build unix

package filelock

import (
	"os"

	"golang.org/x/sys/unix"
)

// errWouldBlock is what lock returns when the lock is held elsewhere.
var errWouldBlock = unix.EWOULDBLOCK

// flock locks belong to the open file description, so a second handle in the same process is
// refused too.
func lock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }

func unlock(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }
