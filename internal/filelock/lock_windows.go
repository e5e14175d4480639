//go:build windows

package filelock

import (
	"os"

	"golang.org/x/sys/windows"
)

// errWouldBlock is what lock returns when the lock is held elsewhere.
var errWouldBlock = windows.ERROR_LOCK_VIOLATION

func lock(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, new(windows.Overlapped))
}

func unlock(f *os.File) {
	windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}
