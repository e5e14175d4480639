//go:build !unix && !windows

package feed

import "os"

func lockDir(string) (*os.File, error) { return nil, nil }
func unlockDir(*os.File)               {}
