//go:build !unix && !windows

package filelock

import (
	"errors"
	"os"
)

// errWouldBlock is never returned here: these systems take no lock.
var errWouldBlock = errors.New("would block")

func lock(*os.File) error { return nil }

func unlock(*os.File) {}
