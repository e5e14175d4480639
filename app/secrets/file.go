package secrets

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/atomicfile"
	"github.com/dazaarvision/dazaar-vision/internal/filelock"
)

// ErrChangedOnDisk is returned when the encrypted file was replaced by
// someone else since this Store read it in a way this Store cannot merge
// with (another passphrase or key-derivation salt: the file was made anew);
// the write is refused so that neither side's secrets are silently lost.
// A file another instance of the app changed with the same key is merged:
// see change.
var ErrChangedOnDisk = errors.New("the secrets file was changed by another program; reopen it")

// fileBackend keeps all secrets in memory, decrypted, and rewrites the whole
// encrypted file atomically on every change.
type fileBackend struct {
	path    string
	key     *derivedKey
	entries map[string][]byte
	sum     [sha256.Size]byte // hash of the file as last read or written
}

// maxFileSize caps what is read from disk before parsing.
const maxFileSize = headerLen + maxCiphertext

// OpenFile opens the encrypted secrets file at path, creating it (and its
// directory, mode 0700) if it does not exist. The passphrase is asked once;
// kdf sets the Argon2id parameters of a new file (zero: DefaultKDF). A wrong
// passphrase returns an error wrapping ErrWrongPassphrase, a damaged file one
// wrapping ErrCorrupt; neither changes the file.
func OpenFile(path string, passphrase func() ([]byte, error), kdf KDFParams, opts ...FileOption) (*Store, error) {
	var o fileOptions
	for _, f := range opts {
		f(&o)
	}
	b, err := openFileBackend(path, passphrase, kdf)
	if err != nil {
		return nil, err
	}
	return newStore(KindFile, "encrypted file "+path, o.reason, b, o.log), nil
}

func openFileBackend(path string, passphrase func() ([]byte, error), kdf KDFParams) (*fileBackend, error) {
	if path == "" {
		return nil, errors.New("no path given for the encrypted secrets file")
	}
	if passphrase == nil {
		return nil, errors.New("no passphrase prompt given for the encrypted secrets file")
	}
	data, err := readCapped(path, maxFileSize)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading secrets file: %w", err)
	}
	if exists {
		// Check the header before asking for the passphrase.
		if _, err := parseEnvelope(data); err != nil {
			return nil, fmt.Errorf("secrets file %s: %w", path, err)
		}
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("asking for the secrets passphrase: %w", err)
	}
	defer wipe(pass)
	if len(pass) == 0 {
		return nil, ErrEmptyPassphrase
	}
	b := &fileBackend{path: path}
	if exists {
		key, entries, err := decryptFile(data, pass, purposeStore)
		if err != nil {
			return nil, fmt.Errorf("opening secrets file %s: %w", path, err)
		}
		b.key, b.entries, b.sum = key, entries, sha256.Sum256(data)
		return b, nil
	}
	if b.key, err = newDerivedKey(pass, kdf.orDefault()); err != nil {
		return nil, err
	}
	b.entries = map[string][]byte{}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the secrets directory: %w", err)
	}
	if err := b.write(b.entries, true); err != nil {
		b.key.wipe()
		return nil, err
	}
	return b, nil
}

// FileOption adjusts OpenFile.
type FileOption func(*fileOptions)

type fileOptions struct {
	log    *slog.Logger
	reason string
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) FileOption { return func(o *fileOptions) { o.log = l } }

func withReason(r string) FileOption { return func(o *fileOptions) { o.reason = r } }

func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrCorrupt, max)
	}
	return data, nil
}

func (b *fileBackend) get(name string) ([]byte, error) {
	v, ok := b.entries[name]
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte{}, v...), nil
}

func (b *fileBackend) set(name string, value []byte) error {
	return b.setMany(map[string][]byte{name: value})
}

func (b *fileBackend) setMany(in map[string][]byte) error {
	return b.change(func(next map[string][]byte) error {
		for n, v := range in {
			next[n] = append([]byte{}, v...)
		}
		return nil
	})
}

func (b *fileBackend) del(name string) error {
	return b.change(func(next map[string][]byte) error {
		if _, ok := next[name]; !ok {
			return ErrNotFound
		}
		delete(next, name)
		return nil
	})
}

// lockWait bounds how long change waits for another instance's write to the file.
const lockWait = 10 * time.Second

// change applies edit to a copy of the secrets and writes them. Instances of the app that
// share the file (two windows, a window and the command line, started together) take turns
// through a lock file beside it (path + ".lock"); one that finds the file changed since it
// last read it reads the other's secrets (same key: the same file's salt and passphrase) and
// applies its own change on top, so neither side's secrets are lost. A file made anew (another
// salt or passphrase) is not merged: ErrChangedOnDisk.
func (b *fileBackend) change(edit func(next map[string][]byte) error) error {
	l, err := takeLock(b.path+".lock", lockWait)
	if err != nil {
		return err
	}
	defer l.Unlock()
	base := b.entries
	var fresh map[string][]byte // the other instance's secrets, read here
	cur, err := readCapped(b.path, maxFileSize)
	if err != nil {
		return fmt.Errorf("re-reading secrets file before writing: %w", err)
	}
	if sha256.Sum256(cur) != b.sum {
		if fresh, err = b.reread(cur); err != nil {
			return err
		}
		base = fresh
	}
	next := make(map[string][]byte, len(base)+1)
	for n, v := range base {
		next[n] = v
	}
	if err := edit(next); err != nil {
		wipeAllBut(fresh, nil)
		return err
	}
	if err := b.write(next, true); err != nil { // compared with the file above, under the lock
		wipeAllBut(next, base) // the edit's fresh copies
		wipeAllBut(fresh, nil)
		return err
	}
	wipeAllBut(b.entries, next) // replaced, deleted, or superseded by the other's copy
	wipeAllBut(fresh, next)     // the other's, deleted by the edit
	b.entries = next
	return nil
}

// reread decrypts the file as another instance left it, with this backend's key.
func (b *fileBackend) reread(data []byte) (map[string][]byte, error) {
	e, err := parseEnvelope(data)
	if err != nil {
		return nil, fmt.Errorf("re-reading secrets file: %w", err)
	}
	if e.purpose != purposeStore || e.salt != b.key.salt || e.kdf != b.key.kdf {
		return nil, ErrChangedOnDisk
	}
	pt, err := b.key.open(e)
	if err != nil {
		return nil, ErrChangedOnDisk // another passphrase
	}
	entries, err := decodePayload(pt)
	wipe(pt)
	if err != nil {
		return nil, fmt.Errorf("re-reading secrets file: %w", err)
	}
	return entries, nil
}

// wipeAllBut wipes the values of m that are not values of keep (compared by identity).
func wipeAllBut(m, keep map[string][]byte) {
	for n, v := range m {
		if k, ok := keep[n]; ok && len(k) > 0 && len(v) > 0 && &k[0] == &v[0] {
			continue
		}
		wipe(v)
	}
}

// takeLock takes the lock file at path, waiting up to wait for another instance to let it go.
func takeLock(path string, wait time.Duration) (*filelock.Lock, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := filelock.Take(path)
		if err == nil || !errors.Is(err, filelock.ErrLocked) || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("the secrets file is being written by another program: %w", err)
			}
			return l, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *fileBackend) list() ([]string, error) {
	names := make([]string, 0, len(b.entries))
	for n := range b.entries {
		names = append(names, n)
	}
	return names, nil
}

func (b *fileBackend) close() error {
	b.key.wipe()
	for n, v := range b.entries {
		wipe(v)
		delete(b.entries, n)
	}
	return nil
}

// write encrypts entries and replaces the file atomically: a temporary file
// in the same directory (mode 0600), fsync, rename over the old file, fsync
// of the directory. Until the rename the old file is untouched. Unless
// checked (a new file, or change compared it already), it first checks that
// the file on disk is still the one this backend last read or wrote.
func (b *fileBackend) write(entries map[string][]byte, checked bool) error {
	if !checked {
		cur, err := readCapped(b.path, maxFileSize)
		if err != nil {
			return fmt.Errorf("re-reading secrets file before writing: %w", err)
		}
		if sha256.Sum256(cur) != b.sum {
			return ErrChangedOnDisk
		}
	}
	payload, err := encodePayload(entries)
	if err != nil {
		return err
	}
	img, err := b.key.seal(purposeStore, payload)
	wipe(payload)
	if err != nil {
		return err
	}
	if err := writeAtomic(b.path, img, "secrets file"); err != nil {
		return err
	}
	b.sum = sha256.Sum256(img)
	return nil
}

// testHookBeforeRename, when set by a test, fails the write after the
// temporary file has been written and before it could replace the store
// (fault injection).
var testHookBeforeRename func() error

// writeAtomic replaces path with data: github.com/natefinch/atomic writes a
// synced temporary file (0600, in the same directory) and renames it over
// path, then the directory is synced so the rename survives a power loss.
// Errors name the secrets file, never the temporary one.
func writeAtomic(path string, data []byte, what string) error {
	st, err := os.Stat(path)
	if err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory: give the %s a file name", path, what)
	}
	// atomic keeps the mode of the file it replaces: make sure that is 0600.
	if err == nil && st.Mode().Perm() != 0o600 && runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("setting the %s's mode: %w", what, err)
		}
	}
	r := &faultReader{r: bytes.NewReader(data), fault: testHookBeforeRename}
	if err := atomicfile.Write(path, r, true); err != nil {
		if r.err != nil {
			return fmt.Errorf("writing the %s: %w", what, r.err)
		}
		return fmt.Errorf("writing the %s: %w", what, err)
	}
	return nil
}

// faultReader reads r, then returns fault's error (if any) instead of EOF.
type faultReader struct {
	r     io.Reader
	fault func() error
	err   error
}

func (f *faultReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF && f.fault != nil {
		if f.err = f.fault(); f.err != nil {
			return n, f.err
		}
	}
	return n, err
}

// ErrNotFile is returned by ChangePassphrase on a store that is not the
// encrypted file.
var ErrNotFile = errors.New("only the encrypted secrets file has a passphrase")

// ChangePassphrase re-encrypts the file backend's secrets under a key
// derived from newPassphrase with a fresh salt (kdf zero: DefaultKDF), in
// one atomic write: until it succeeds the old passphrase still opens the
// file.
func (s *Store) ChangePassphrase(newPassphrase []byte, kdf KDFParams) error {
	if len(newPassphrase) == 0 {
		return ErrEmptyPassphrase
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	b, ok := s.b.(*fileBackend)
	if !ok {
		return ErrNotFile
	}
	key, err := newDerivedKey(newPassphrase, kdf.orDefault())
	if err != nil {
		return err
	}
	l, err := takeLock(b.path+".lock", lockWait)
	if err != nil {
		key.wipe()
		return err
	}
	defer l.Unlock()
	old := b.key
	b.key = key
	if err := b.write(b.entries, false); err != nil {
		b.key = old
		key.wipe()
		return fmt.Errorf("changing the secrets passphrase: %w", err)
	}
	old.wipe()
	s.log.Info("secrets passphrase changed")
	return nil
}
