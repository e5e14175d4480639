//go:build !(linux || darwin || freebsd)

package feed

import "os"

func writeBlocks(f *os.File, blocks [][]byte, off int64) error {
	return writeBlocksEach(f, blocks, off)
}
