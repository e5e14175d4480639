//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package secrets

import "runtime"

var keyringName = map[string]string{"darwin": "macOS Keychain", "windows": "Windows Credential Manager"}[runtime.GOOS]

func keyringReachable() error { return nil }
