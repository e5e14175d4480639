// Package filelock takes an exclusive, advisory lock on a file for as long as a process holds
// it open: the one home for "one process owns this" (a feed's directory, a seller's ledger).
// The operating system drops the lock when the process ends, killed or not, so a crash never
// leaves a stale lock behind.
package filelock

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked says another open handle (another process, or another handle in this one) holds
// the lock.
var ErrLocked = errors.New("in use by another program (or already open here)")

// Lock is a held lock; Unlock releases it.
type Lock struct{ f *os.File }

// Take creates path if need be and locks it without waiting: ErrLocked (wrapped) when it is
// held elsewhere.
func Take(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := lock(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock; on a nil Lock it does nothing.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	unlock(l.f)
	err := l.f.Close()
	l.f = nil
	return err
}
