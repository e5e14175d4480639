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

// Open opens the secret store. With Backend KindAuto it chooses:
//
//  1. the encrypted file, if FallbackPath names an existing file (secrets
//     stay where they are; move them with Export and Import);
//  2. otherwise the OS keyring, if it answers within KeyringTimeout;
//  3. otherwise a new encrypted file at FallbackPath (an error if empty).
//
// Store.Kind, Store.Description and Store.Reason tell the UI which backend
// was chosen and why.
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
		return openFileStore(o, log, "chosen in settings")
	case KindKeyring:
		s, err := openKeyringStore(ctx, o, log, "chosen in settings")
		if err != nil {
			return nil, fmt.Errorf("the OS keyring is not available: %w", err)
		}
		return s, nil
	case KindAuto:
	default:
		return nil, fmt.Errorf("unknown secrets backend %q", o.Backend)
	}
	if o.FallbackPath != "" {
		if _, err := os.Stat(o.FallbackPath); err == nil {
			return openFileStore(o, log, "an encrypted secrets file already exists")
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checking the secrets file: %w", err)
		}
	}
	s, kerr := openKeyringStore(ctx, o, log, "the OS keyring is reachable")
	if kerr == nil {
		return s, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
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

func openKeyringStore(ctx context.Context, o Options, log *slog.Logger, reason string) (*Store, error) {
	if o.Service == "" {
		return nil, errors.New("no keyring service name given")
	}
	kr := o.keyring
	if kr == nil {
		if err := keyringReachable(); err != nil {
			return nil, err
		}
		kr = zalandoKeyring{}
	}
	b := newKeyringBackend(o.Service, kr)
	timeout := o.KeyringTimeout
	if timeout <= 0 {
		timeout = defaultKeyringTimeout
	}
	if err := probeWithin(ctx, b, timeout); err != nil {
		return nil, err
	}
	return newStore(KindKeyring, "OS keyring ("+keyringName+", service "+o.Service+")", reason, b, log), nil
}

// probeWithin runs the keyring probe, waiting at most timeout or until ctx
// ends. The keyring libraries take no context, so on a time-out the probe's
// goroutine is left to finish on its own: it ends when the keyring answers
// (a locked keyring's unlock prompt is answered or dismissed) and sends into
// a buffered channel nobody reads.
func probeWithin(ctx context.Context, b *keyringBackend, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- b.probe() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("the keyring did not answer within %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
