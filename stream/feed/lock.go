package feed

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/dazaarvision/dazaar-vision/internal/filelock"
)

// lockDir takes an exclusive lock on dir's lock file, so that one process (and one handle in
// it) owns a feed: two writers would sign different blocks at the same length.
func lockDir(dir string) (*filelock.Lock, error) {
	l, err := filelock.Take(filepath.Join(dir, "lock"))
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("feed: %s: %w", dir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	return l, nil
}

func unlockDir(l *filelock.Lock) { l.Unlock() }
