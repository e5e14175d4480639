package feed

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// nextData is the offset of the first data at or after off in f, skipping a hole (SEEK_DATA);
// ok is false at the end of the data. A filesystem that cannot tell answers off itself.
func nextData(f *os.File, off int64) (next int64, ok bool) {
	n, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		return 0, false
	case err != nil || n < off:
		return off, true
	}
	return n, true
}

// markSparse is a no-op here: files are sparse on the filesystems Linux runs from.
func markSparse(*os.File) error { return nil }
