//go:build !unix

package session

import "io/fs"

// allocated is the disk space a file takes; here its size (a sparse file counts its holes).
func allocated(info fs.FileInfo) int64 { return info.Size() }
