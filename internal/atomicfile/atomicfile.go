// Package atomicfile is the one home for replacing a file all at once. github.com/natefinch/atomic
// writes a synced temporary file beside the target and renames it over the target, so the name
// holds the old bytes or the new ones, never a mix; Write then syncs the directory, so that the
// rename itself survives a power loss (the library does not), and its errors name the target,
// never the temporary file (people are shown the file they know of).
package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"

	"github.com/natefinch/atomic"
)

// Write replaces path with what r reads. With durable, the directory is synced after the
// rename.
func Write(path string, r io.Reader, durable bool) error {
	if err := atomic.WriteFile(path, r); err != nil {
		tmp := regexp.MustCompile(regexp.QuoteMeta(path) + `[0-9]+`)
		return &hidden{msg: "cannot replace " + path + ": " + tmp.ReplaceAllLiteralString(err.Error(), "a temporary file"), err: err}
	}
	if durable {
		return SyncDir(filepath.Dir(path))
	}
	return nil
}

// SyncDir makes the renames and creations in dir durable where the OS syncs directories. On
// Windows a directory cannot be flushed through an ordinary handle (FlushFileBuffers refuses
// it) and NTFS journals its metadata itself, so there is nothing to do; elsewhere a file
// system that cannot sync a directory (EINVAL) is not an error either.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// hidden is the library's error with the temporary file's name replaced; errors.Is and As
// still see the cause.
type hidden struct {
	msg string
	err error
}

func (h *hidden) Error() string { return h.msg }
func (h *hidden) Unwrap() error { return h.err }
