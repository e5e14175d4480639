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
//   - item "<name>" holds
//     "dv1:<parts>:<gen>:<sha256 of the value, first 8 bytes, hex>:<base64 of part 0>"
//   - items "<name>#<gen>.<i>", 1 <= i < parts, hold "dv1p:<base64 of part i>";
//     gen is 0 or 1 and alternates on each write, so a new value's parts
//     never overwrite the parts the current main item points to.
//   - the names, one a line, are kept as a value of their own (the keyring
//     APIs we use cannot enumerate) in one of two slots, ".index.0" and
//     ".index.1"; item ".index" holds "dv1i:<slot>", the slot in use. A new
//     index is written whole into the other slot before ".index" is pointed
//     at it, so a crash mid-write leaves the previous index readable.
//
// Values are split into parts of at most chunk bytes because the platform
// keyrings cap an item (about 2.5 KB on Windows, 3 KB hex-encoded on macOS);
// an LND TLS certificate or a long index needs several. A value's parts are
// written before the main item that points to them, and the old parts are
// deleted after it, so a crash or failed write at any point leaves the old
// value (or the new one) readable; the checksum catches anything else.
type keyringBackend struct {
	service string
	kr      keyringAPI
	chunk   int
}

const (
	indexItem        = ".index"
	indexSlotTag     = "dv1i:"
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

// probe checks that the keyring answers, and reports whether it holds any
// of this service's secrets.
func (k *keyringBackend) probe() (hasSecrets bool, err error) {
	names, err := k.readIndex()
	if err != nil {
		return false, err
	}
	return len(names) > 0, nil
}

func partUser(name string, gen, i int) string {
	return name + "#" + strconv.Itoa(gen) + "." + strconv.Itoa(i)
}

func valueSum(v []byte) string {
	s := sha256.Sum256(v)
	return hex.EncodeToString(s[:keyringSumHexLen/2])
}

// mainItem is a parsed main item.
type mainItem struct {
	parts int
	gen   int
	sum   string
	part0 []byte
}

// parseMain parses a main item.
func parseMain(item string) (mainItem, error) {
	var m mainItem
	if len(item) > maxKeyringItem || !strings.HasPrefix(item, keyringMainTag) {
		return m, fmt.Errorf("%w: keyring item is not in this app's format", ErrCorrupt)
	}
	f := strings.SplitN(item[len(keyringMainTag):], ":", 4)
	if len(f) != 4 {
		return m, fmt.Errorf("%w: keyring item has %d fields", ErrCorrupt, len(f))
	}
	var err error
	m.parts, err = strconv.Atoi(f[0])
	if err != nil || m.parts < 1 || m.parts > maxKeyringParts || f[0] != strconv.Itoa(m.parts) {
		return m, fmt.Errorf("%w: keyring item part count %q", ErrCorrupt, f[0])
	}
	switch f[1] {
	case "0", "1":
		m.gen = int(f[1][0] - '0')
	default:
		return m, fmt.Errorf("%w: keyring item generation %q", ErrCorrupt, f[1])
	}
	if len(f[2]) != keyringSumHexLen {
		return m, fmt.Errorf("%w: keyring item checksum malformed", ErrCorrupt)
	}
	m.sum = f[2]
	if m.part0, err = base64.StdEncoding.DecodeString(f[3]); err != nil {
		return m, fmt.Errorf("%w: keyring item is not valid base64", ErrCorrupt)
	}
	return m, nil
}

func (k *keyringBackend) getValue(user string, limit int) ([]byte, error) {
	item, err := k.kr.Get(k.service, user)
	if err != nil {
		return nil, err
	}
	m, err := parseMain(item)
	if err != nil {
		return nil, err
	}
	buf := m.part0
	for i := 1; i < m.parts; i++ {
		p, err := k.kr.Get(k.service, partUser(user, m.gen, i))
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: part %d of %d is missing from the keyring", ErrCorrupt, i, m.parts)
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
	if valueSum(buf) != m.sum {
		wipe(buf)
		return nil, fmt.Errorf("%w: keyring value fails its checksum", ErrCorrupt)
	}
	return buf, nil
}

// current returns the stored main item under user; ok is false if there is
// none or it cannot be parsed.
func (k *keyringBackend) current(user string) (m mainItem, ok bool) {
	item, err := k.kr.Get(k.service, user)
	if err != nil {
		return m, false
	}
	m, err = parseMain(item)
	return m, err == nil
}

// deleteParts deletes parts 1..parts-1 of generation gen.
func (k *keyringBackend) deleteParts(user string, gen, parts int) error {
	for i := 1; i < parts; i++ {
		if err := k.kr.Delete(k.service, partUser(user, gen, i)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

func (k *keyringBackend) putValue(user string, v []byte) error {
	old, hadOld := k.current(user)
	gen := 0
	if hadOld && old.gen == 0 {
		gen = 1
	}
	parts := max(1, (len(v)+k.chunk-1)/k.chunk)
	if parts > maxKeyringParts {
		return fmt.Errorf("value of %d bytes needs too many keyring items", len(v))
	}
	part := func(i int) []byte {
		return v[min(i*k.chunk, len(v)):min((i+1)*k.chunk, len(v))]
	}
	for i := 1; i < parts; i++ {
		if err := k.kr.Set(k.service, partUser(user, gen, i), keyringPartTag+base64.StdEncoding.EncodeToString(part(i))); err != nil {
			return err
		}
	}
	main := keyringMainTag + strconv.Itoa(parts) + ":" + strconv.Itoa(gen) + ":" + valueSum(v) + ":" + base64.StdEncoding.EncodeToString(part(0))
	if err := k.kr.Set(k.service, user, main); err != nil {
		return err
	}
	if hadOld {
		// Best effort: leftovers of a failed cleanup are overwritten or
		// deleted by a later write of this generation.
		return k.deleteParts(user, old.gen, old.parts)
	}
	return nil
}

func (k *keyringBackend) delValue(user string) error {
	old, hadOld := k.current(user)
	if err := k.kr.Delete(k.service, user); err != nil {
		return err
	}
	if hadOld {
		return k.deleteParts(user, old.gen, old.parts)
	}
	return nil
}

const maxIndexSize = maxEntries * (MaxNameLen + 1)

func indexSlotUser(slot int) string { return indexItem + "." + strconv.Itoa(slot) }

// indexSlot returns the index slot in use, or -1 if no index was written.
func (k *keyringBackend) indexSlot() (int, error) {
	item, err := k.kr.Get(k.service, indexItem)
	if errors.Is(err, ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	switch item {
	case indexSlotTag + "0":
		return 0, nil
	case indexSlotTag + "1":
		return 1, nil
	}
	return 0, fmt.Errorf("%w: keyring index pointer is not in this app's format", ErrCorrupt)
}

func (k *keyringBackend) readIndex() ([]string, error) {
	slot, err := k.indexSlot()
	if err != nil {
		return nil, fmt.Errorf("reading the keyring index: %w", err)
	}
	if slot < 0 {
		return nil, nil
	}
	b, err := k.getValue(indexSlotUser(slot), maxIndexSize)
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
	slot, err := k.indexSlot()
	if err != nil {
		return err
	}
	next := 0
	if slot == 0 {
		next = 1
	}
	if err := k.putValue(indexSlotUser(next), []byte(strings.Join(names, "\n"))); err != nil {
		return err
	}
	return k.kr.Set(k.service, indexItem, indexSlotTag+strconv.Itoa(next))
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
