package secrets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// Options configure Open.
type Options struct {
	// Service is the keyring service name the secrets are filed under,
	// e.g. "dazaar-vision". Required for the keyring.
	Service string
	// FallbackPath is the encrypted file used when no keyring is reachable
	// or Backend is KindFile.
	FallbackPath string
	// Passphrase is asked only when the encrypted file is used (to create
	// it, or to open it). The returned slice is wiped after use.
	Passphrase func() ([]byte, error)
	// Backend forces a backend; KindAuto (the zero value) chooses as Open
	// describes.
	Backend Kind
	// ChosenBy says who forced Backend, for Store.Reason (empty: "chosen in
	// settings"); the command line passes "chosen on the command line".
	ChosenBy string
	// KDF sets the Argon2id parameters of a new file (zero: DefaultKDF).
	KDF KDFParams
	// KeyringTimeout bounds the keyring probe (zero: 20 s). A keyring that
	// shows an unlock prompt may take that long to answer.
	KeyringTimeout time.Duration
	// Logger receives events (never secret values); nil: slog.Default().
	Logger *slog.Logger

	keyring keyringAPI // tests inject faults here; nil: the OS keyring
}

const defaultKeyringTimeout = 20 * time.Second

func (o Options) chosenBy() string {
	if o.ChosenBy != "" {
		return o.ChosenBy
	}
	return "chosen in settings"
}

// Open opens the secret store. With Backend KindAuto it chooses:
//
//  1. the OS keyring, if it answers within KeyringTimeout and already holds
//     secrets of this Service;
//  2. otherwise the encrypted file, if FallbackPath names an existing file;
//  3. otherwise the OS keyring, if it answered (a first start);
//  4. otherwise a new encrypted file at FallbackPath (an error if empty).
//
// Secrets stay where they are: Open never moves them (Export and Import
// do). If the keyring holds secrets and the file exists too, the keyring
// wins and Reason says so (the UI can offer to import the file's backup). Store.Kind, Store.Description and Store.Reason tell the
// UI which backend was chosen and why.
func Open(ctx context.Context, o Options) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	switch o.Backend {
	case KindMemory:
		s := NewMemory()
		s.log = log.With("component", "secrets", "backend", string(KindMemory))
		return s, nil
	case KindFile:
		return openFileStore(o, log, o.chosenBy())
	case KindKeyring:
		s, _, err := openKeyringStore(ctx, o, log)
		if err != nil {
			return nil, fmt.Errorf("the OS keyring is not available: %w", err)
		}
		s.reason = o.chosenBy()
		return s, nil
	case KindAuto:
	default:
		return nil, fmt.Errorf("unknown secrets backend %q", o.Backend)
	}
	fileExists := false
	if o.FallbackPath != "" {
		if _, err := os.Stat(o.FallbackPath); err == nil {
			fileExists = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checking the secrets file: %w", err)
		}
	}
	s, hasSecrets, kerr := openKeyringStore(ctx, o, log)
	if kerr == nil {
		switch {
		case hasSecrets && fileExists:
			s.reason = "the OS keyring holds this app's secrets (an encrypted secrets file also exists at " + o.FallbackPath + "; import a backup of it to use its secrets)"
			log.Warn("both the keyring and an encrypted file hold secrets; using the keyring", "component", "secrets", "path", o.FallbackPath)
			return s, nil
		case hasSecrets:
			s.reason = "the OS keyring holds this app's secrets"
			return s, nil
		case !fileExists:
			s.reason = "the OS keyring is reachable"
			return s, nil
		}
		s.Close()
		return openFileStore(o, log, "an encrypted secrets file exists and the OS keyring holds none of this app's secrets")
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if fileExists {
		return openFileStore(o, log, "an encrypted secrets file exists and no OS keyring is reachable: "+kerr.Error())
	}
	if o.FallbackPath == "" {
		return nil, fmt.Errorf("no OS keyring is reachable (%w) and no fallback file is configured", kerr)
	}
	log.Warn("OS keyring not reachable; using the encrypted file", "component", "secrets", "err", kerr, "path", o.FallbackPath)
	return openFileStore(o, log, "no OS keyring is reachable: "+kerr.Error())
}

func openFileStore(o Options, log *slog.Logger, reason string) (*Store, error) {
	return OpenFile(o.FallbackPath, o.Passphrase, o.KDF, WithLogger(log), withReason(reason))
}

func openKeyringStore(ctx context.Context, o Options, log *slog.Logger) (s *Store, hasSecrets bool, err error) {
	if o.Service == "" {
		return nil, false, errors.New("no keyring service name given")
	}
	kr := o.keyring
	if kr == nil {
		if err := keyringReachable(); err != nil {
			return nil, false, err
		}
		kr = zalandoKeyring{}
	}
	b := newKeyringBackend(o.Service, kr)
	timeout := o.KeyringTimeout
	if timeout <= 0 {
		timeout = defaultKeyringTimeout
	}
	hasSecrets, err = probeWithin(ctx, b, timeout)
	if err != nil {
		return nil, false, err
	}
	return newStore(KindKeyring, "OS keyring ("+keyringName+", service "+o.Service+")", "", b, log), hasSecrets, nil
}

// probeWithin runs the keyring probe, waiting at most timeout or until ctx
// ends. The keyring libraries take no context, so on a time-out the probe's
// goroutine is left to finish on its own: it ends when the keyring answers
// (a locked keyring's unlock prompt is answered or dismissed) and sends into
// a buffered channel nobody reads.
func probeWithin(ctx context.Context, b *keyringBackend, timeout time.Duration) (hasSecrets bool, err error) {
	type result struct {
		has bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		has, err := b.probe()
		done <- result{has, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.has, r.err
	case <-t.C:
		return false, fmt.Errorf("the keyring did not answer within %v", timeout)
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
