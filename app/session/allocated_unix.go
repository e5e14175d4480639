//go:build unix

package session

import (
	"io/fs"
	"syscall"
)

// allocated is the disk space a file takes: its allocated blocks, so that a sparse copy of a
// stream joined late (a hole where the blocks before it would be) counts what it holds.
func allocated(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
