package secrets

import (
	"errors"
	"fmt"
	"sort"
)

// MinBackupPassphrase is the shortest passphrase CheckBackupPassphrase
// accepts for a new backup, in bytes.
const MinBackupPassphrase = 8

// CheckBackupPassphrase says why passphrase is too weak to encrypt a new
// backup with, or nil. Every way of making a backup (the window, the command
// line) asks it, so they agree; Export itself refuses only the empty one, so
// old backups stay readable whatever this rule becomes.
func CheckBackupPassphrase(passphrase []byte) error {
	if len(passphrase) < MinBackupPassphrase {
		return fmt.Errorf("use a passphrase of at least %d characters: anyone with the backup file can try passphrases against it", MinBackupPassphrase)
	}
	return nil
}

// Export returns every secret in one backup blob, encrypted with a key
// derived from passphrase (the same format as the encrypted file, marked as
// a backup; kdf zero means DefaultKDF). Keep it wherever backups go: it is
// useless without the passphrase. WriteBackupFile writes it safely.
func (s *Store) Export(passphrase []byte, kdf KDFParams) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	names, err := s.b.list()
	if err != nil {
		return nil, fmt.Errorf("listing secrets for the backup: %w", err)
	}
	entries := make(map[string][]byte, len(names))
	defer func() {
		for _, v := range entries {
			wipe(v)
		}
	}()
	for _, n := range names {
		v, err := s.b.get(n)
		if err != nil {
			return nil, fmt.Errorf("reading secret %q for the backup: %w", n, err)
		}
		entries[n] = v
	}
	payload, err := encodePayload(entries)
	if err != nil {
		return nil, err
	}
	defer wipe(payload)
	k, err := newDerivedKey(passphrase, kdf.orDefault())
	if err != nil {
		return nil, err
	}
	defer k.wipe()
	blob, err := k.seal(purposeBackup, payload)
	if err != nil {
		return nil, err
	}
	s.log.Info("secrets exported to a backup", "count", len(entries))
	return blob, nil
}

// Import decrypts a backup made by Export and stores its secrets, replacing
// secrets of the same names and keeping the others. It returns the imported
// names, sorted. The whole backup is decrypted and checked first: a wrong
// passphrase (ErrWrongPassphrase) or a damaged backup (ErrCorrupt) changes
// nothing. The file backend stores everything in one atomic write; the
// keyring one secret at a time, so an error there names what was stored.
func (s *Store) Import(backup, passphrase []byte) ([]string, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	if len(backup) > maxFileSize {
		return nil, fmt.Errorf("%w: backup is larger than %d bytes", ErrCorrupt, maxFileSize)
	}
	k, entries, err := decryptFile(backup, passphrase, purposeBackup)
	if err != nil {
		return nil, fmt.Errorf("reading the backup: %w", err)
	}
	k.wipe()
	defer func() {
		for _, v := range entries {
			wipe(v)
		}
	}()
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if bs, ok := s.b.(batchSetter); ok {
		if err := bs.setMany(entries); err != nil {
			return nil, fmt.Errorf("restoring the backup into the %s: %w", s.kind, err)
		}
	} else {
		for i, n := range names {
			if err := s.b.set(n, entries[n]); err != nil {
				return names[:i], fmt.Errorf("restoring secret %q into the %s (%d of %d restored before it): %w", n, s.kind, i, len(names), err)
			}
		}
	}
	s.log.Info("secrets imported from a backup", "count", len(names))
	return names, nil
}

// WriteBackupFile writes a backup blob to path atomically with mode 0600.
func WriteBackupFile(path string, blob []byte) error {
	if _, err := parseEnvelope(blob); err != nil {
		return fmt.Errorf("refusing to write an invalid backup: %w", err)
	}
	if len(blob) > 7 && blob[7] != purposeBackup {
		return errors.New("refusing to write: not a backup")
	}
	return writeAtomic(path, blob, "backup")
}

// ErrNotBackup: a file given as a backup is not one (another file, or a secrets file).
var ErrNotBackup = errors.New("not a Dazaar Vision backup")

// ReadBackupFile reads a backup blob from path, capped at the format's
// largest size, and checks its header (no passphrase needed): a file that is not
// a backup is refused before anyone is asked for the backup's passphrase.
func ReadBackupFile(path string) ([]byte, error) {
	blob, err := readCapped(path, maxFileSize)
	if err != nil {
		return nil, err
	}
	if len(blob) < len(magic) || string(blob[:len(magic)]) != magic {
		return nil, fmt.Errorf("%s: %w", path, ErrNotBackup)
	}
	env, err := parseEnvelope(blob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if env.purpose != purposeBackup {
		return nil, fmt.Errorf("%s: %w (it is a secrets file; make a backup with secrets export)", path, ErrNotBackup)
	}
	return blob, nil
}
