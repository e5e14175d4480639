// Package secrets keeps the app's secrets: feed signing keys, the libp2p
// identity and LND credentials. They live in the OS keyring (Secret Service
// on Linux, Keychain on macOS, Credential Manager on Windows) or, when no
// keyring is reachable or the user chooses it, in one file encrypted with a
// passphrase-derived key (Argon2id, XChaCha20-Poly1305). Secret values are
// never written to disk in plaintext and never logged. Every store can be
// exported to an encrypted backup and restored into any other store.
package secrets

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// Kind names a storage backend.
type Kind string

const (
	// KindAuto (the zero value) lets Open choose.
	KindAuto Kind = ""
	// KindKeyring is the OS keyring.
	KindKeyring Kind = "keyring"
	// KindFile is the passphrase-encrypted file.
	KindFile Kind = "file"
	// KindMemory keeps secrets in memory only (for tests of other packages).
	KindMemory Kind = "memory"
)

// ErrNotFound is returned by Get and Delete for a name that is not stored.
var ErrNotFound = errors.New("secret not found")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("secret store is closed")

// Conventional secret names: the one naming every package uses. The LND names are the ones
// wallet/lightning reads its credentials under (lightning.SecretMacaroon and SecretTLSCert;
// app/session's tests check they agree).
const (
	NameP2PIdentity = "p2p/identity"
	NameLNDMacaroon = "lnd.invoice.macaroon"
	NameLNDTLSCert  = "lnd.tls.cert"
	// The on-chain back-end: the watch-only account key (not a spending key, but it reveals
	// every payment to the seller), the node's RPC password and its TLS certificate.
	NameOnChainAccountKey = "onchain/account-key"
	NameOnChainNodePass   = "onchain/node-pass"
	NameOnChainNodeCert   = "onchain/node-cert"
)

// FeedSeedName is the name of a feed's signing seed, keyed by the feed's
// discovery key in hex.
func FeedSeedName(discoveryKeyHex string) string {
	return "feed/" + discoveryKeyHex + "/seed"
}

// ValidateName reports whether name can name a secret: 1 to MaxNameLen bytes
// of ASCII letters, digits and "._-", in segments separated by single '/',
// not starting with '.'. (Names starting with '.' and the '#' character are
// reserved for the keyring backend's own items.)
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("invalid secret name %q: length must be 1..%d", name, MaxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("invalid secret name %q: must not start with '.'", name)
	}
	prevSlash := true // a leading '/' counts as an empty segment
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			prevSlash = false
		case c == '/':
			if prevSlash {
				return fmt.Errorf("invalid secret name %q: empty path segment", name)
			}
			prevSlash = true
		default:
			return fmt.Errorf("invalid secret name %q: character %q not allowed", name, c)
		}
	}
	if prevSlash {
		return fmt.Errorf("invalid secret name %q: must not end with '/'", name)
	}
	return nil
}

// backend is what a Store keeps its secrets in. Implementations copy values
// in and out; the Store validates names and sizes before calling them.
type backend interface {
	get(name string) ([]byte, error)
	set(name string, value []byte) error
	del(name string) error
	list() ([]string, error)
	close() error
}

// batchSetter is implemented by backends that can store many secrets at
// once, all or nothing (the file backend: one atomic write).
type batchSetter interface {
	setMany(entries map[string][]byte) error
}

// Store is a set of named secrets in one backend. It is safe for concurrent
// use.
type Store struct {
	kind   Kind
	desc   string
	reason string
	b      backend
	log    *slog.Logger

	mu     sync.Mutex
	closed bool
}

func newStore(kind Kind, desc, reason string, b backend, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{kind: kind, desc: desc, reason: reason, b: b, log: log.With("component", "secrets", "backend", string(kind))}
}

// Kind reports which backend holds the secrets.
func (s *Store) Kind() Kind { return s.kind }

// Description says in plain words where the secrets are, for the UI, e.g.
// "OS keyring (service dazaar-vision)" or "encrypted file /home/a/.config/…".
func (s *Store) Description() string { return s.desc }

// Reason says why Open chose this backend, for the UI.
func (s *Store) Reason() string { return s.reason }

// Get returns a copy of the named secret, or an error wrapping ErrNotFound.
func (s *Store) Get(name string) ([]byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, err := s.b.get(name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("secret %q: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("reading secret %q from the %s: %w", name, s.kind, err)
	}
	s.log.Debug("secret read", "name", name, "bytes", len(v))
	return v, nil
}

// Set stores value under name, replacing any earlier value. Values may be
// any bytes, up to MaxValueSize.
func (s *Store) Set(name string, value []byte) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("secret %q: value of %d bytes exceeds the %d-byte limit", name, len(value), MaxValueSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.b.set(name, value); err != nil {
		return fmt.Errorf("storing secret %q in the %s: %w", name, s.kind, err)
	}
	s.log.Info("secret stored", "name", name, "bytes", len(value))
	return nil
}

// Delete removes the named secret; deleting a missing one returns an error
// wrapping ErrNotFound.
func (s *Store) Delete(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.b.del(name); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("secret %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("deleting secret %q from the %s: %w", name, s.kind, err)
	}
	s.log.Info("secret deleted", "name", name)
	return nil
}

// List returns the names of all stored secrets, sorted.
func (s *Store) List() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	names, err := s.b.list()
	if err != nil {
		return nil, fmt.Errorf("listing secrets in the %s: %w", s.kind, err)
	}
	sort.Strings(names)
	return names, nil
}

// Close releases the backend (the file backend wipes its key from memory).
// Further calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.b.close()
}

// memoryBackend keeps secrets in a map.
type memoryBackend struct {
	m map[string][]byte
}

// NewMemory returns a Store that keeps secrets in memory only, for other
// packages' tests.
func NewMemory() *Store {
	return newStore(KindMemory, "memory (not persisted)", "chosen by the caller", &memoryBackend{m: map[string][]byte{}}, nil)
}

func (m *memoryBackend) get(name string) ([]byte, error) {
	v, ok := m.m[name]
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte{}, v...), nil
}

func (m *memoryBackend) set(name string, value []byte) error {
	m.m[name] = append([]byte{}, value...)
	return nil
}

func (m *memoryBackend) del(name string) error {
	v, ok := m.m[name]
	if !ok {
		return ErrNotFound
	}
	wipe(v)
	delete(m.m, name)
	return nil
}

func (m *memoryBackend) list() ([]string, error) {
	names := make([]string, 0, len(m.m))
	for n := range m.m {
		names = append(names, n)
	}
	return names, nil
}

func (m *memoryBackend) close() error {
	for n, v := range m.m {
		wipe(v)
		delete(m.m, n)
	}
	return nil
}
