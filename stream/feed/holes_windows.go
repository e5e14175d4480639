package feed

import (
	"os"

	"golang.org/x/sys/windows"
)

// nextData answers off itself: the blocks file is read through.
func nextData(_ *os.File, off int64) (int64, bool) { return off, true }

// markSparse makes f a sparse file. NTFS files are not sparse by default: a write far past the
// end would have the filesystem write zeros up to it (a reader's tree is written at offsets of
// up to 2^33 × 40 bytes).
func markSparse(f *os.File) error {
	var n uint32
	return windows.DeviceIoControl(windows.Handle(f.Fd()), windows.FSCTL_SET_SPARSE, nil, 0, nil, 0, &n, nil)
}
