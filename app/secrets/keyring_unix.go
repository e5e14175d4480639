//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
)

const keyringName = "Secret Service"

// keyringReachable checks that a D-Bus session bus exists before the
// keyring library is used: without one, the D-Bus library would autolaunch
// a new bus daemon (dbus-launch) that outlives the app.
func keyringReachable() error {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	// The same places the D-Bus library looks (/run/user/<uid>).
	dir := "/run/user/" + strconv.Itoa(os.Getuid())
	if fi, err := os.Stat(filepath.Join(dir, "bus")); err == nil && fi.Mode()&os.ModeSocket != 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "dbus-session")); err == nil {
		return nil
	}
	return errors.New("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
}
