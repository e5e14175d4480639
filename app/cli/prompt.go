package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
)

// maxSecretLine caps a passphrase, in bytes, however it is given: a longer one is refused,
// never cut (a cut passphrase would encrypt a backup nobody could open with the whole one).
const maxSecretLine = 1024

var errSecretTooLong = fmt.Errorf("the passphrase is longer than %d bytes", maxSecretLine)

// envSecret is a passphrase from the environment variable name, or nil when it is unset.
func envSecret(name string) ([]byte, error) {
	p := os.Getenv(name)
	if len(p) > maxSecretLine {
		return nil, fmt.Errorf("$%s: %w", name, errSecretTooLong)
	}
	return []byte(p), nil
}

// passphrase is the secrets file's: $DAZAAR_VISION_PASSPHRASE, or asked for.
func (e *env) passphrase() ([]byte, error) {
	if p, err := envSecret(EnvPassphrase); err != nil || len(p) > 0 {
		return p, err
	}
	p, err := e.askSecret("Passphrase for the secrets file: ")
	if errors.Is(err, errSecretTooLong) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("no passphrase for the secrets file (set %s or type it): %w", EnvPassphrase, err)
	}
	return p, nil
}

// errPassphrasesDiffer is a new backup's passphrase typed twice differently.
var errPassphrasesDiffer = errors.New("the two passphrases differ: nothing was written")

// backupPassphrase is a backup's, never the secrets file's (a backup is kept elsewhere and may
// be given to someone else): $DAZAAR_VISION_BACKUP_PASSPHRASE, or asked for. A new backup's
// (isNew) must pass secrets.CheckBackupPassphrase and, typed at a terminal, be typed twice.
func (e *env) backupPassphrase(isNew bool) ([]byte, error) {
	p, err := envSecret(EnvBackupPassphrase)
	if err != nil {
		return nil, err
	}
	typed := len(p) == 0
	if typed {
		prompt := "Passphrase of the backup: "
		if isNew {
			prompt = "Passphrase for the new backup (not the secrets file's): "
		}
		if p, err = e.askSecret(prompt); errors.Is(err, errSecretTooLong) {
			return nil, err
		} else if err != nil {
			return nil, fmt.Errorf("no passphrase for the backup (set %s or type it): %w", EnvBackupPassphrase, err)
		}
	}
	if !isNew {
		return p, nil
	}
	if err := secrets.CheckBackupPassphrase(p); err != nil {
		return nil, err
	}
	if typed && e.stdinTerminal() {
		again, err := e.askSecret("The same passphrase again: ")
		if err != nil {
			return nil, fmt.Errorf("no passphrase for the backup: %w", err)
		}
		if !bytes.Equal(p, again) {
			return nil, errPassphrasesDiffer
		}
	}
	return p, nil
}

// stdinTerminal reports whether stdin is a terminal, where secrets are typed without echo.
func (e *env) stdinTerminal() bool {
	f, ok := e.stdin.(*os.File)
	return ok && isTerminal(f)
}

// isTerminal reports whether f is a terminal (not merely a character device: /dev/null is one
// and takes video fine). It is the command line's one test for a terminal: secrets typed
// without echo, the status line rewritten in place, the export's progress bar, video refused
// on stdout.
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// isTerminalWriter reports whether w is a terminal (a buffer or pipe is not).
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// askSecret prints prompt on stderr and reads one line from stdin: without echo from a
// terminal, otherwise a byte at a time, so that the next prompt's line is still unread.
func (e *env) askSecret(prompt string) ([]byte, error) {
	fmt.Fprint(e.err, prompt)
	if e.stdinTerminal() {
		p, err := term.ReadPassword(int(e.stdin.(*os.File).Fd()))
		fmt.Fprintln(e.err) // the newline the user typed was not echoed
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, errors.New("nothing was typed")
		}
		if len(p) > maxSecretLine {
			return nil, errSecretTooLong
		}
		return p, nil
	}
	var line []byte
	buf := make([]byte, 1)
	for {
		n, err := e.stdin.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			if len(line) == maxSecretLine {
				return nil, errSecretTooLong
			}
			line = append(line, buf[0])
		}
		if err != nil {
			if len(line) > 0 && errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, io.EOF) {
				return nil, errors.New("stdin ended")
			}
			return nil, err
		}
	}
	return bytes.TrimRight(line, "\r"), nil
}
