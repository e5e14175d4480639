package session

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultWatchedQuota bounds what copies of watched streams may take on disk together.
const DefaultWatchedQuota = 4 << 30

// dirSize is the disk space the files under dir take (allocated, not their lengths: a viewer's
// copy of a stream joined late is a sparse file).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += allocated(info)
			}
		}
		return nil
	})
	return n
}

// EvictWatched removes the copies of the least recently watched streams, oldest first, until
// all watched copies together fit in quota bytes. The stream keep (the one being opened) is
// never removed. It returns the IDs removed.
func (d DataDir) EvictWatched(quota int64, keep string) ([]string, error) {
	ws, err := d.Watched()
	if err != nil {
		return nil, err
	}
	var total int64
	sizes := make([]int64, len(ws))
	for i, w := range ws {
		sizes[i] = dirSize(d.watchedDir(w.ID))
		total += sizes[i]
	}
	var removed []string
	for i := len(ws) - 1; i >= 0 && total > quota; i-- { // Watched is newest first
		if ws[i].ID == keep {
			continue
		}
		if err := os.RemoveAll(d.watchedDir(ws[i].ID)); err != nil {
			return removed, fmt.Errorf("cannot free space taken by a watched stream: %w", err)
		}
		total -= sizes[i]
		removed = append(removed, ws[i].ID)
	}
	return removed, nil
}
