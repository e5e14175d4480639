//go:build linux || darwin || freebsd

package feed

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBlocks writes blocks back to back at off with as few system calls as
// the kernel allows (pwritev), without copying them into one buffer.
func writeBlocks(f *os.File, blocks [][]byte, off int64) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return writeBlocksEach(f, blocks, off)
	}
	const maxIov = 1024
	for len(blocks) > 0 {
		chunk := blocks[:min(len(blocks), maxIov)]
		blocks = blocks[len(chunk):]
		// Skip empty blocks and resume partial writes.
		var iov [][]byte
		for _, b := range chunk {
			if len(b) > 0 {
				iov = append(iov, b)
			}
		}
		for len(iov) > 0 {
			var n int
			var werr error
			if err := conn.Write(func(fd uintptr) bool {
				n, werr = unix.Pwritev(int(fd), iov, off)
				return werr != unix.EAGAIN
			}); err != nil {
				return err
			}
			if werr != nil {
				return &os.PathError{Op: "pwritev", Path: f.Name(), Err: werr}
			}
			off += int64(n)
			for n > 0 && len(iov) > 0 {
				if n >= len(iov[0]) {
					n -= len(iov[0])
					iov = iov[1:]
				} else {
					iov[0] = iov[0][n:]
					n = 0
				}
			}
		}
	}
	return nil
}
