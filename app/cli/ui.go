package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/app/ui"
)

// errNoDisplay is what `ui` (and no command at all) says on a machine without a display.
var errNoDisplay = errors.New("no display to open the window on ($DISPLAY and $WAYLAND_DISPLAY are not set): use the command line instead, see `dazaar-vision help` (live, watch, streams, ...)")

// hasDisplay reports whether a window can be opened.
func hasDisplay() bool {
	if runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "openbsd" && runtime.GOOS != "netbsd" {
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// ui opens the desktop window: `dazaar-vision [ui [CARD]]`.
func (e *env) ui(args []string) error {
	fs := e.flags("ui")
	lan := fs.Bool("lan", false, "use private and loopback addresses for direct connections (a LAN, or testing on one machine)")
	var listen listFlag
	fs.Var(&listen, "listen", "multiaddrs to listen on (default: every interface, TCP and QUIC)")
	rest, err := parse(fs, args, 0, 1, "[-lan] [-listen ADDR] [CARD]")
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef("usage: ui [-lan] [-listen ADDR] [CARD]")
	}
	if !hasDisplay() {
		return errNoDisplay
	}
	data, err := e.openData()
	if err != nil {
		return err
	}
	opts := ui.Options{Data: data, Logger: e.log,
		Network: session.NetworkConfig{Listen: listen, LAN: *lan, Public: *lan},
		OpenStore: func(ctx context.Context, passphrase func() ([]byte, error)) (*secrets.Store, error) {
			return e.openSecretsWith(ctx, passphrase)
		}}
	if len(rest) == 1 {
		c, err := e.readCardArg(rest[0])
		if err != nil {
			return err
		}
		opts.Card = c.String()
	}
	return ui.Run(e.ctx, opts)
}

// openSecretsWith opens the secret store of -secrets and -secrets-file, asking for the secrets
// file's passphrase with passphrase (the terminal's for the commands, the window's dialog for
// the window). The caller owns the store and closes it.
func (e *env) openSecretsWith(ctx context.Context, passphrase func() ([]byte, error)) (*secrets.Store, error) {
	kind, chosenBy := secrets.KindAuto, "chosen on the command line (-secrets "+e.secretsKind+")"
	switch e.secretsKind {
	case "auto", "":
	case "keyring":
		kind = secrets.KindKeyring
	case "file":
		kind = secrets.KindFile
	default:
		return nil, usagef("-secrets is auto, keyring or file, not %q", e.secretsKind)
	}
	if err := os.MkdirAll(filepath.Dir(e.secretsFile), 0o700); err != nil {
		return nil, fmt.Errorf("cannot make the secrets folder: %w", err)
	}
	s, err := secrets.Open(ctx, secrets.Options{Service: serviceName, FallbackPath: e.secretsFile,
		Passphrase: passphrase, Backend: kind, ChosenBy: chosenBy, Logger: e.log})
	if err != nil {
		return nil, fmt.Errorf("cannot open the secret store: %w", err)
	}
	return s, nil
}
