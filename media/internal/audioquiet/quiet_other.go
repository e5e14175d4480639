//go:build !linux

package audioquiet

// install does nothing here: the sound systems of Windows and macOS do not print to stderr.
func install() {}
