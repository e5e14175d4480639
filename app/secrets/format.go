package secrets

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The encrypted format shared by the fallback file and backups (version 1).
// All integers are big-endian.
//
//	offset size  field
//	0      6     magic "DZVSEC"
//	6      1     format version (1)
//	7      1     purpose: 1 = secret store file, 2 = backup
//	8      4     Argon2id time (passes)
//	12     4     Argon2id memory in KiB
//	16     1     Argon2id threads (lanes)
//	17     1     salt length (16)
//	18     16    salt
//	34     24    XChaCha20-Poly1305 nonce
//	58     16    key check: HMAC-SHA256(checkKey, "dazaar-vision secrets key check")[:16]
//	74     4     ciphertext length n (payload + 16-byte tag)
//	78     n     ciphertext
//
// Argon2id derives 64 bytes from the passphrase and salt: the first 32 are the
// XChaCha20-Poly1305 key, the last 32 the key-check key. The key check tells a
// wrong passphrase apart from a damaged file; the whole header (bytes 0..77) is
// the AEAD's associated data, so no header byte can change unnoticed.
//
// The plaintext payload is:
//
//	4     entry count
//	then for each entry, sorted by name:
//	2     name length, name bytes (a valid secret name)
//	4     value length, value bytes
//
// Every length is checked against its cap and against the bytes that remain
// before anything is allocated.
const (
	magic          = "DZVSEC"
	formatVersion  = 1
	saltLen        = 16
	checkLen       = 16
	headerLen      = 6 + 1 + 1 + 4 + 4 + 1 + 1 + saltLen + chacha20poly1305.NonceSizeX + checkLen + 4
	keyCheckString = "dazaar-vision secrets key check"

	purposeStore  byte = 1
	purposeBackup byte = 2

	// MaxValueSize is the largest secret value a Store accepts.
	MaxValueSize = 64 << 10
	// MaxNameLen is the longest secret name.
	MaxNameLen = 200
	// maxEntries caps the entries of one file or backup.
	maxEntries = 4096
	// maxCiphertext caps the encrypted payload of one file or backup (16 MiB).
	maxCiphertext = 16 << 20

	// Caps on the KDF parameters read from a file, so a hostile file cannot
	// make us allocate or spin without bound.
	maxKDFTime    = 64
	maxKDFMemory  = 1 << 20 // KiB: 1 GiB
	maxKDFThreads = 64
)

// KDFParams are the Argon2id parameters used when a new file or backup is
// written. Files record their own parameters, so reading never depends on
// these.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultKDF is RFC 9106's second recommended Argon2id setting:
// t=3, m=64 MiB, p=4.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

func (p KDFParams) orDefault() KDFParams {
	if p == (KDFParams{}) {
		return DefaultKDF
	}
	return p
}

func (p KDFParams) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxKDFTime:
		return fmt.Errorf("argon2id time %d out of range 1..%d", p.Time, maxKDFTime)
	case p.Threads < 1 || p.Threads > maxKDFThreads:
		return fmt.Errorf("argon2id threads %d out of range 1..%d", p.Threads, maxKDFThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemory:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxKDFMemory)
	}
	return nil
}

// Errors of the encrypted format. Each is wrapped with detail; test with
// errors.Is.
var (
	// ErrWrongPassphrase: the passphrase does not open this file or backup.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrCorrupt: the file or backup is damaged, truncated or was altered.
	ErrCorrupt = errors.New("secret file is damaged or was altered")
	// ErrEmptyPassphrase: an empty passphrase was given.
	ErrEmptyPassphrase = errors.New("the passphrase is empty")
)

// envelope is a parsed header plus its ciphertext (which aliases the input).
type envelope struct {
	purpose    byte
	kdf        KDFParams
	salt       [saltLen]byte
	nonce      [chacha20poly1305.NonceSizeX]byte
	check      [checkLen]byte
	header     []byte // bytes 0..headerLen, the associated data
	ciphertext []byte
}

// parseEnvelope checks the header and the lengths without deriving a key.
func parseEnvelope(data []byte) (*envelope, error) {
	if len(data) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrCorrupt, len(data), headerLen)
	}
	if string(data[:6]) != magic {
		return nil, fmt.Errorf("%w: not a Dazaar Vision secrets file (bad magic)", ErrCorrupt)
	}
	if data[6] != formatVersion {
		return nil, fmt.Errorf("%w: format version %d is not supported (this build reads version %d)", ErrCorrupt, data[6], formatVersion)
	}
	e := &envelope{purpose: data[7]}
	if e.purpose != purposeStore && e.purpose != purposeBackup {
		return nil, fmt.Errorf("%w: unknown purpose %d", ErrCorrupt, e.purpose)
	}
	e.kdf = KDFParams{
		Time:      binary.BigEndian.Uint32(data[8:]),
		MemoryKiB: binary.BigEndian.Uint32(data[12:]),
		Threads:   data[16],
	}
	if err := e.kdf.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if data[17] != saltLen {
		return nil, fmt.Errorf("%w: salt length %d, want %d", ErrCorrupt, data[17], saltLen)
	}
	off := 18
	off += copy(e.salt[:], data[off:])
	off += copy(e.nonce[:], data[off:])
	off += copy(e.check[:], data[off:])
	n := binary.BigEndian.Uint32(data[off:])
	off += 4
	if n < chacha20poly1305.Overhead || n > maxCiphertext {
		return nil, fmt.Errorf("%w: ciphertext length %d out of range", ErrCorrupt, n)
	}
	if rest := len(data) - off; rest != int(n) {
		return nil, fmt.Errorf("%w: header says %d ciphertext bytes, file has %d (truncated or extended)", ErrCorrupt, n, rest)
	}
	e.header = data[:off]
	e.ciphertext = data[off:]
	return e, nil
}

// derivedKey is the AEAD key and key-check key derived from a passphrase.
type derivedKey struct {
	kdf  KDFParams
	salt [saltLen]byte
	aead [chacha20poly1305.KeySize]byte
	chk  [32]byte
}

func deriveKey(passphrase []byte, kdf KDFParams, salt [saltLen]byte) (*derivedKey, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	if err := kdf.validate(); err != nil {
		return nil, err
	}
	out := argon2.IDKey(passphrase, salt[:], kdf.Time, kdf.MemoryKiB, kdf.Threads, 64)
	k := &derivedKey{kdf: kdf, salt: salt}
	copy(k.aead[:], out[:32])
	copy(k.chk[:], out[32:])
	wipe(out)
	return k, nil
}

// newDerivedKey derives a key with a fresh random salt.
func newDerivedKey(passphrase []byte, kdf KDFParams) (*derivedKey, error) {
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("reading random salt: %w", err)
	}
	return deriveKey(passphrase, kdf, salt)
}

func (k *derivedKey) keyCheck() [checkLen]byte {
	m := hmac.New(sha256.New, k.chk[:])
	m.Write([]byte(keyCheckString))
	var c [checkLen]byte
	copy(c[:], m.Sum(nil))
	return c
}

func (k *derivedKey) wipe() {
	if k != nil {
		wipe(k.aead[:])
		wipe(k.chk[:])
	}
}

// seal encrypts a payload into a complete file image.
func (k *derivedKey) seal(purpose byte, payload []byte) ([]byte, error) {
	if len(payload)+chacha20poly1305.Overhead > maxCiphertext {
		return nil, fmt.Errorf("secrets too large to store: %d bytes (limit %d)", len(payload), maxCiphertext-chacha20poly1305.Overhead)
	}
	aead, err := chacha20poly1305.NewX(k.aead[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen, headerLen+len(payload)+aead.Overhead())
	copy(out, magic)
	out[6] = formatVersion
	out[7] = purpose
	binary.BigEndian.PutUint32(out[8:], k.kdf.Time)
	binary.BigEndian.PutUint32(out[12:], k.kdf.MemoryKiB)
	out[16] = k.kdf.Threads
	out[17] = saltLen
	off := 18
	off += copy(out[off:], k.salt[:])
	nonce := out[off : off+chacha20poly1305.NonceSizeX]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("reading random nonce: %w", err)
	}
	off += len(nonce)
	chk := k.keyCheck()
	off += copy(out[off:], chk[:])
	binary.BigEndian.PutUint32(out[off:], uint32(len(payload)+aead.Overhead()))
	return aead.Seal(out, nonce, payload, out[:headerLen]), nil
}

// open decrypts an envelope with k, which must have been derived with the
// envelope's salt and parameters.
func (k *derivedKey) open(e *envelope) ([]byte, error) {
	chk := k.keyCheck()
	if !hmac.Equal(chk[:], e.check[:]) {
		return nil, ErrWrongPassphrase
	}
	aead, err := chacha20poly1305.NewX(k.aead[:])
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, e.nonce[:], e.ciphertext, e.header)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
	}
	return pt, nil
}

// decryptFile parses data, derives the key from passphrase and decrypts. It
// returns the key (for re-encrypting later writes) and the entries.
func decryptFile(data, passphrase []byte, purpose byte) (*derivedKey, map[string][]byte, error) {
	e, err := parseEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	if e.purpose != purpose {
		return nil, nil, fmt.Errorf("%w: this is a %s, not a %s", ErrCorrupt, purposeName(e.purpose), purposeName(purpose))
	}
	k, err := deriveKey(passphrase, e.kdf, e.salt)
	if err != nil {
		return nil, nil, err
	}
	pt, err := k.open(e)
	if err != nil {
		k.wipe()
		return nil, nil, err
	}
	entries, err := decodePayload(pt)
	wipe(pt)
	if err != nil {
		k.wipe()
		return nil, nil, err
	}
	return k, entries, nil
}

func purposeName(p byte) string {
	switch p {
	case purposeStore:
		return "secret store file"
	case purposeBackup:
		return "secrets backup"
	}
	return fmt.Sprintf("purpose %d", p)
}

// encodePayload serialises entries sorted by name. The caller wipes the result.
func encodePayload(entries map[string][]byte) ([]byte, error) {
	if len(entries) > maxEntries {
		return nil, fmt.Errorf("too many secrets: %d (limit %d)", len(entries), maxEntries)
	}
	names := make([]string, 0, len(entries))
	size := 4
	for name, v := range entries {
		if err := ValidateName(name); err != nil {
			return nil, err
		}
		if len(v) > MaxValueSize {
			return nil, fmt.Errorf("secret %q: value of %d bytes exceeds %d", name, len(v), MaxValueSize)
		}
		names = append(names, name)
		size += 2 + len(name) + 4 + len(v)
	}
	sort.Strings(names)
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint32(out, uint32(len(names)))
	for _, name := range names {
		v := entries[name]
		out = binary.BigEndian.AppendUint16(out, uint16(len(name)))
		out = append(out, name...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
		out = append(out, v...)
	}
	return out, nil
}

// decodePayload parses a decrypted payload. Lengths are checked against their
// caps and the remaining input before any allocation.
func decodePayload(p []byte) (map[string][]byte, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: payload of %d bytes has no entry count", ErrCorrupt, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	// Each entry takes at least 2+1+4 bytes.
	if n > maxEntries || uint64(n)*7 > uint64(len(p)) {
		return nil, fmt.Errorf("%w: entry count %d does not fit", ErrCorrupt, n)
	}
	entries := make(map[string][]byte, n)
	prev := ""
	for i := uint32(0); i < n; i++ {
		if len(p) < 2 {
			return nil, fmt.Errorf("%w: entry %d truncated", ErrCorrupt, i)
		}
		nl := int(binary.BigEndian.Uint16(p))
		p = p[2:]
		if nl > MaxNameLen || nl > len(p) {
			return nil, fmt.Errorf("%w: entry %d name length %d", ErrCorrupt, i, nl)
		}
		name := string(p[:nl])
		p = p[nl:]
		if err := ValidateName(name); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrCorrupt, i, err)
		}
		if i > 0 && name <= prev {
			return nil, fmt.Errorf("%w: entry %d out of order or duplicated", ErrCorrupt, i)
		}
		prev = name
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: entry %d truncated", ErrCorrupt, i)
		}
		vl := binary.BigEndian.Uint32(p)
		p = p[4:]
		if vl > MaxValueSize || uint64(vl) > uint64(len(p)) {
			return nil, fmt.Errorf("%w: entry %d value length %d", ErrCorrupt, i, vl)
		}
		entries[name] = append([]byte(nil), p[:vl]...)
		p = p[vl:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d stray bytes after the last entry", ErrCorrupt, len(p))
	}
	return entries, nil
}

// wipe zeroes b: best effort, Go may have copied it elsewhere.
func wipe(b []byte) {
	clear(b)
}
