package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	keyring "github.com/zalando/go-keyring"
)

// keyringAPI is the part of the OS keyring this package uses: string values
// under (service, user). zalandoKeyring is the real one; tests inject faults.
type keyringAPI interface {
	Set(service, user, password string) error
	Get(service, user string) (string, error)
	Delete(service, user string) error
}

// zalandoKeyring talks to the OS keyring through github.com/zalando/go-keyring:
// Secret Service over D-Bus on Linux and the BSDs, /usr/bin/security on macOS,
// Credential Manager on Windows.
type zalandoKeyring struct{}

func (zalandoKeyring) Set(service, user, password string) error {
	return keyring.Set(service, user, password)
}

func (zalandoKeyring) Get(service, user string) (string, error) {
	v, err := keyring.Get(service, user)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", ErrNotFound
	}
	return v, err
}

func (zalandoKeyring) Delete(service, user string) error {
	err := keyring.Delete(service, user)
	if errors.Is(err, keyring.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// keyringBackend stores each secret as one or more keyring items of the
// app's service:
//
//   - item "<name>" holds "dv1:<parts>:<sha256 of the value, first 8 bytes, hex>:<base64 of part 0>"
//   - items "<name>#<i>", 1 <= i < parts, hold "dv1p:<base64 of part i>"
//   - item ".index" (stored the same way) lists the names, one a line, since
//     the keyring APIs we use cannot enumerate.
//
// Values are split into parts of at most chunk bytes because the platform
// keyrings cap an item (about 2.5 KB on Windows, 3 KB hex-encoded on macOS);
// an LND TLS certificate or a long index needs several. A part is written
// before the item that points to it, and the checksum catches a value torn
// by a crash between writes.
type keyringBackend struct {
	service string
	kr      keyringAPI
	chunk   int
}

const (
	indexItem        = ".index"
	defaultChunk     = 768 // bytes of value per item: 1024 base64 characters
	maxKeyringParts  = 4096
	maxKeyringItem   = 64 << 10 // characters read from one item
	keyringMainTag   = "dv1:"
	keyringPartTag   = "dv1p:"
	keyringSumHexLen = 16
)

func newKeyringBackend(service string, kr keyringAPI) *keyringBackend {
	return &keyringBackend{service: service, kr: kr, chunk: defaultChunk}
}

// probe checks that the keyring answers: reading the index either finds it
// or reports it missing.
func (k *keyringBackend) probe() error {
	_, err := k.kr.Get(k.service, indexItem)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

func partUser(name string, i int) string { return name + "#" + strconv.Itoa(i) }

func valueSum(v []byte) string {
	s := sha256.Sum256(v)
	return hex.EncodeToString(s[:keyringSumHexLen/2])
}

// parseMain splits a main item into its part count, checksum and part 0.
func parseMain(item string) (parts int, sum string, part0 []byte, err error) {
	if len(item) > maxKeyringItem || !strings.HasPrefix(item, keyringMainTag) {
		return 0, "", nil, fmt.Errorf("%w: keyring item is not in this app's format", ErrCorrupt)
	}
	f := strings.SplitN(item[len(keyringMainTag):], ":", 3)
	if len(f) != 3 {
		return 0, "", nil, fmt.Errorf("%w: keyring item has %d fields", ErrCorrupt, len(f))
	}
	parts, err = strconv.Atoi(f[0])
	if err != nil || parts < 1 || parts > maxKeyringParts {
		return 0, "", nil, fmt.Errorf("%w: keyring item part count %q", ErrCorrupt, f[0])
	}
	if len(f[1]) != keyringSumHexLen {
		return 0, "", nil, fmt.Errorf("%w: keyring item checksum malformed", ErrCorrupt)
	}
	part0, err = base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		return 0, "", nil, fmt.Errorf("%w: keyring item is not valid base64", ErrCorrupt)
	}
	return parts, f[1], part0, nil
}

func (k *keyringBackend) getValue(user string, limit int) ([]byte, error) {
	item, err := k.kr.Get(k.service, user)
	if err != nil {
		return nil, err
	}
	parts, sum, buf, err := parseMain(item)
	if err != nil {
		return nil, err
	}
	for i := 1; i < parts; i++ {
		p, err := k.kr.Get(k.service, partUser(user, i))
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: part %d of %d is missing from the keyring", ErrCorrupt, i, parts)
			}
			return nil, err
		}
		if len(p) > maxKeyringItem || !strings.HasPrefix(p, keyringPartTag) {
			return nil, fmt.Errorf("%w: part %d is not in this app's format", ErrCorrupt, i)
		}
		b, err := base64.StdEncoding.DecodeString(p[len(keyringPartTag):])
		if err != nil {
			return nil, fmt.Errorf("%w: part %d is not valid base64", ErrCorrupt, i)
		}
		if len(buf)+len(b) > limit {
			return nil, fmt.Errorf("%w: value exceeds %d bytes", ErrCorrupt, limit)
		}
		buf = append(buf, b...)
	}
	if len(buf) > limit {
		return nil, fmt.Errorf("%w: value exceeds %d bytes", ErrCorrupt, limit)
	}
	if valueSum(buf) != sum {
		wipe(buf)
		return nil, fmt.Errorf("%w: keyring value fails its checksum (torn write?)", ErrCorrupt)
	}
	return buf, nil
}

// oldParts returns how many parts the stored value under user has (0 if none
// or unreadable).
func (k *keyringBackend) oldParts(user string) int {
	item, err := k.kr.Get(k.service, user)
	if err != nil {
		return 0
	}
	parts, _, _, err := parseMain(item)
	if err != nil {
		return 1
	}
	return parts
}

func (k *keyringBackend) putValue(user string, v []byte) error {
	old := k.oldParts(user)
	parts := (len(v) + k.chunk - 1) / k.chunk
	if parts == 0 {
		parts = 1
	}
	if parts > maxKeyringParts {
		return fmt.Errorf("value of %d bytes needs too many keyring items", len(v))
	}
	part := func(i int) []byte {
		lo, hi := i*k.chunk, (i+1)*k.chunk
		return v[min(lo, len(v)):min(hi, len(v))]
	}
	for i := 1; i < parts; i++ {
		if err := k.kr.Set(k.service, partUser(user, i), keyringPartTag+base64.StdEncoding.EncodeToString(part(i))); err != nil {
			return err
		}
	}
	main := keyringMainTag + strconv.Itoa(parts) + ":" + valueSum(v) + ":" + base64.StdEncoding.EncodeToString(part(0))
	if err := k.kr.Set(k.service, user, main); err != nil {
		return err
	}
	for i := parts; i < old; i++ {
		if err := k.kr.Delete(k.service, partUser(user, i)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

func (k *keyringBackend) delValue(user string) error {
	parts := k.oldParts(user)
	if err := k.kr.Delete(k.service, user); err != nil {
		return err
	}
	for i := 1; i < parts; i++ {
		if err := k.kr.Delete(k.service, partUser(user, i)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

const maxIndexSize = maxEntries * (MaxNameLen + 1)

func (k *keyringBackend) readIndex() ([]string, error) {
	b, err := k.getValue(indexItem, maxIndexSize)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the keyring index: %w", err)
	}
	var names []string
	for _, n := range bytes.Split(b, []byte("\n")) {
		if len(n) == 0 {
			continue
		}
		if err := ValidateName(string(n)); err != nil {
			return nil, fmt.Errorf("%w: keyring index: %v", ErrCorrupt, err)
		}
		names = append(names, string(n))
	}
	return names, nil
}

func (k *keyringBackend) writeIndex(names []string) error {
	if len(names) > maxEntries {
		return fmt.Errorf("too many secrets: %d (limit %d)", len(names), maxEntries)
	}
	if len(names) == 0 {
		err := k.delValue(indexItem)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	return k.putValue(indexItem, []byte(strings.Join(names, "\n")))
}

func (k *keyringBackend) get(name string) ([]byte, error) {
	return k.getValue(name, MaxValueSize)
}

func (k *keyringBackend) set(name string, value []byte) error {
	names, err := k.readIndex()
	if err != nil {
		return err
	}
	if err := k.putValue(name, value); err != nil {
		return err
	}
	for _, n := range names {
		if n == name {
			return nil
		}
	}
	return k.writeIndex(append(names, name))
}

func (k *keyringBackend) del(name string) error {
	names, err := k.readIndex()
	if err != nil {
		return err
	}
	delErr := k.delValue(name)
	if delErr != nil && !errors.Is(delErr, ErrNotFound) {
		return delErr
	}
	kept := names[:0]
	listed := false
	for _, n := range names {
		if n == name {
			listed = true
			continue
		}
		kept = append(kept, n)
	}
	if listed {
		if err := k.writeIndex(kept); err != nil {
			return err
		}
	}
	return delErr
}

func (k *keyringBackend) list() ([]string, error) {
	return k.readIndex()
}

func (k *keyringBackend) close() error { return nil }
