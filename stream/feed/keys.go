package feed

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// KeyPair is a feed's Ed25519 signing key pair.
type KeyPair struct {
	Public ed25519.PublicKey
	Secret ed25519.PrivateKey
}

// KeyPairFromSeed derives the key pair from a 32-byte seed, as libsodium's
// crypto_sign_seed_keypair does.
func KeyPairFromSeed(seed []byte) (KeyPair, error) {
	if len(seed) != ed25519.SeedSize {
		return KeyPair{}, fmt.Errorf("feed: a key seed is %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	sk := ed25519.NewKeyFromSeed(seed)
	return KeyPair{Public: sk.Public().(ed25519.PublicKey), Secret: sk}, nil
}

// Mode says what a feed's key is and how its heads are signed.
type Mode uint8

const (
	// Compat is Hypercore v10's default: the key is the Ed25519 public key and
	// the signature is a raw 64-byte Ed25519 signature over the 80-byte signable.
	Compat Mode = iota
	// Manifest is Hypercore v11's default: the key is the hash of a manifest
	// that names the signers, and the signature is a multisignature envelope
	// (68 bytes for one signer) over the 112-byte signable.
	Manifest
)

func (m Mode) String() string {
	switch m {
	case Compat:
		return "compat"
	case Manifest:
		return "manifest"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Signable is the message signed for a tree: NS[TREE] ‖ [manifestHash] ‖
// treeHash ‖ u64le(length) ‖ u64le(fork). A nil manifestHash gives the 80-byte
// compat form, a non-nil one the 112-byte manifest form.
func Signable(manifestHash *[32]byte, treeHash [32]byte, length, fork uint64) []byte {
	ns := namespaces[NSTree]
	b := make([]byte, 0, 112)
	b = append(b, ns[:]...)
	if manifestHash != nil {
		b = append(b, manifestHash[:]...)
	}
	b = append(b, treeHash[:]...)
	b = binary.LittleEndian.AppendUint64(b, length)
	b = binary.LittleEndian.AppendUint64(b, fork)
	return b
}

// Manifest limits: more than this many signers is refused before allocation.
const (
	maxSigners      = 16
	maxManifestSize = 4096
)

// ManifestSigner is one signer of a manifest.
type ManifestSigner struct {
	Namespace [32]byte
	PublicKey [32]byte
}

// FeedManifest is a Hypercore v11 manifest (version 1, BLAKE2b, Ed25519).
type FeedManifest struct {
	Version    uint64
	AllowPatch bool
	Quorum     uint64
	Signers    []ManifestSigner
	// Prologue, when set, makes the feed start from another tree's hash at a
	// given length. It is decoded so the hash matches; feeds with a prologue
	// are not written by this package.
	Prologue *Prologue
	Linked   [][32]byte
	UserData []byte
}

// Prologue pins a feed's start to a tree hash at a length.
type Prologue struct {
	Hash   [32]byte
	Length uint64
}

// DefaultManifest is the manifest Hypercore v11 makes for one key pair.
func DefaultManifest(pub ed25519.PublicKey) FeedManifest {
	var s ManifestSigner
	s.Namespace = namespaces[NSDefaultSigner]
	copy(s.PublicKey[:], pub)
	return FeedManifest{Version: 1, Quorum: 1, Signers: []ManifestSigner{s}}
}

const (
	manifestFlagAllowPatch = 1
	manifestFlagPrologue   = 2
	manifestFlagLinked     = 4
	manifestFlagUserData   = 8
)

// Encode gives the manifest's compact encoding.
func (m FeedManifest) Encode() []byte {
	var e encoder
	e.uint(m.Version)
	var flags uint64
	if m.AllowPatch {
		flags |= manifestFlagAllowPatch
	}
	if m.Prologue != nil {
		flags |= manifestFlagPrologue
	}
	if len(m.Linked) > 0 {
		flags |= manifestFlagLinked
	}
	if m.UserData != nil {
		flags |= manifestFlagUserData
	}
	e.uint(flags)
	e.uint(0) // hash: blake2b
	e.uint(m.Quorum)
	e.uint(uint64(len(m.Signers)))
	for _, s := range m.Signers {
		e.uint(0) // signature: ed25519
		e.raw(s.Namespace[:])
		e.raw(s.PublicKey[:])
	}
	if m.Prologue != nil {
		e.raw(m.Prologue.Hash[:])
		e.uint(m.Prologue.Length)
	}
	if len(m.Linked) > 0 {
		e.uint(uint64(len(m.Linked)))
		for _, l := range m.Linked {
			e.raw(l[:])
		}
	}
	if m.UserData != nil {
		e.bytes(m.UserData)
	}
	return e.b
}

// Hash is the manifest hash, which is the feed key in manifest mode.
func (m FeedManifest) Hash() [32]byte { return ManifestHash(m.Encode()) }

// ManifestHash hashes an encoded manifest: H(NS[MANIFEST] ‖ manifest).
func ManifestHash(encoded []byte) [32]byte {
	h := getHasher()
	ns := namespaces[NSManifest]
	h.Write(ns[:])
	h.Write(encoded)
	return sum(h)
}

// DecodeManifest decodes a version 1 manifest, refusing other versions, hash
// or signature algorithms, and anything longer than its limits.
func DecodeManifest(b []byte) (FeedManifest, error) {
	if len(b) > maxManifestSize {
		return FeedManifest{}, fmt.Errorf("feed: manifest of %d bytes is over the %d-byte limit", len(b), maxManifestSize)
	}
	d := decoder{b: b}
	var m FeedManifest
	m.Version = d.uint()
	if d.err == nil && m.Version != 1 {
		return m, fmt.Errorf("feed: manifest version %d is not supported (only 1)", m.Version)
	}
	flags := d.uint()
	if flags&^0xf != 0 {
		return m, fmt.Errorf("feed: manifest has unknown flags %#x", flags)
	}
	m.AllowPatch = flags&manifestFlagAllowPatch != 0
	if h := d.uint(); d.err == nil && h != 0 {
		return m, fmt.Errorf("feed: manifest hash algorithm %d is not supported (only BLAKE2b)", h)
	}
	m.Quorum = d.uint()
	n := d.uint()
	if n > maxSigners {
		return m, fmt.Errorf("feed: manifest names %d signers, more than %d", n, maxSigners)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		if sig := d.uint(); d.err == nil && sig != 0 {
			return m, fmt.Errorf("feed: manifest signer %d uses signature algorithm %d (only Ed25519)", i, sig)
		}
		var s ManifestSigner
		d.fixed(s.Namespace[:])
		d.fixed(s.PublicKey[:])
		m.Signers = append(m.Signers, s)
	}
	if flags&manifestFlagPrologue != 0 {
		p := &Prologue{}
		d.fixed(p.Hash[:])
		p.Length = d.uint()
		m.Prologue = p
	}
	if flags&manifestFlagLinked != 0 {
		n := d.uint()
		if n > maxSigners {
			return m, fmt.Errorf("feed: manifest links %d feeds, more than %d", n, maxSigners)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			var l [32]byte
			d.fixed(l[:])
			m.Linked = append(m.Linked, l)
		}
	}
	if flags&manifestFlagUserData != 0 {
		m.UserData = d.bytes(maxManifestSize)
		if m.UserData == nil {
			m.UserData = []byte{}
		}
	}
	if d.err != nil {
		return m, fmt.Errorf("feed: manifest: %w", d.err)
	}
	if d.off != len(b) {
		return m, fmt.Errorf("feed: manifest has %d trailing bytes", len(b)-d.off)
	}
	if m.Quorum == 0 || m.Quorum > uint64(len(m.Signers)) {
		return m, fmt.Errorf("feed: manifest quorum %d does not fit its %d signers", m.Quorum, len(m.Signers))
	}
	return m, nil
}

// signerProof is one signer's signature inside a multisignature envelope.
type signerProof struct {
	Signer    uint64
	Signature [64]byte
	Patch     uint64
}

// EncodeMultiSignature wraps Ed25519 signatures in v11's envelope:
// uint(#proofs) ‖ per proof uint(signer) ‖ sig(64) ‖ uint(patch) ‖ uint(#patch nodes).
func encodeMultiSignature(proofs []signerProof) []byte {
	var e encoder
	e.uint(uint64(len(proofs)))
	for _, p := range proofs {
		e.uint(p.Signer)
		e.raw(p.Signature[:])
		e.uint(p.Patch)
	}
	e.uint(0) // no patch nodes
	return e.b
}

func decodeMultiSignature(b []byte) ([]signerProof, error) {
	d := decoder{b: b}
	n := d.uint()
	if n > maxSigners {
		return nil, fmt.Errorf("feed: signature holds %d proofs, more than %d", n, maxSigners)
	}
	var out []signerProof
	for i := uint64(0); i < n && d.err == nil; i++ {
		var p signerProof
		p.Signer = d.uint()
		d.fixed(p.Signature[:])
		p.Patch = d.uint()
		out = append(out, p)
	}
	if patch := d.uint(); d.err == nil && patch != 0 {
		return nil, errors.New("feed: patched signatures are not supported")
	}
	if d.err != nil {
		return nil, fmt.Errorf("feed: signature envelope: %w", d.err)
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("feed: signature envelope has %d trailing bytes", len(b)-d.off)
	}
	return out, nil
}

// verifier checks heads' signatures for one feed key.
type verifier struct {
	mode         Mode
	key          [32]byte
	manifest     *FeedManifest
	manifestHash [32]byte
	encoded      []byte // encoded manifest, to hand to readers

	// The signers' public keys in curve25519-voi's expanded form (the point decoded and a
	// table of its multiples), made on the first check: a viewer checks a signature for
	// every upgrade of a live stream, and an expanded key halves the cost of each check
	// (BenchmarkVerifySignature). nil where a key is not a valid point: its checks fail, as
	// crypto/ed25519's do.
	expandOnce sync.Once
	expanded   []*voied25519.ExpandedPublicKey
}

// stdlibChecks makes curve25519-voi accept and refuse exactly what crypto/ed25519.Verify does
// (cofactorless, non-canonical A accepted, S < L), so no signature valid before is refused now
// and none refused before is accepted (TestVerifierMatchesStdlib, FuzzVerifierMatchesStdlib).
var stdlibChecks = &voied25519.Options{Verify: voied25519.VerifyOptionsStdLib}

// checkSig is ed25519.Verify with signer i's expanded key.
func (v *verifier) checkSig(i int, msg, sig []byte) bool {
	v.expandOnce.Do(func() {
		var keys [][32]byte
		if v.mode == Compat {
			keys = [][32]byte{v.key}
		} else {
			for _, s := range v.manifest.Signers {
				keys = append(keys, s.PublicKey)
			}
		}
		v.expanded = make([]*voied25519.ExpandedPublicKey, len(keys))
		for j, k := range keys {
			if ek, err := voied25519.NewExpandedPublicKey(voied25519.PublicKey(k[:])); err == nil {
				v.expanded[j] = ek
			}
		}
	})
	if i >= len(v.expanded) || v.expanded[i] == nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voied25519.VerifyExpandedWithOptions(v.expanded[i], msg, sig, stdlibChecks)
}

func newCompatVerifier(pub [32]byte) *verifier {
	return &verifier{mode: Compat, key: pub}
}

func newManifestVerifier(encoded []byte) (*verifier, error) {
	m, err := DecodeManifest(encoded)
	if err != nil {
		return nil, err
	}
	if m.Prologue != nil || m.AllowPatch {
		return nil, errors.New("feed: manifests with a prologue or patches are not supported")
	}
	h := ManifestHash(encoded)
	return &verifier{mode: Manifest, key: h, manifest: &m, manifestHash: h, encoded: append([]byte(nil), encoded...)}, nil
}

func (v *verifier) signable(treeHash [32]byte, length, fork uint64) []byte {
	if v.mode == Manifest {
		return Signable(&v.manifestHash, treeHash, length, fork)
	}
	return Signable(nil, treeHash, length, fork)
}

// ErrBadSignature is wrapped by every failed signature check.
var ErrBadSignature = errors.New("signature does not match the feed key")

func (v *verifier) verify(treeHash [32]byte, length, fork uint64, sig []byte) error {
	msg := v.signable(treeHash, length, fork)
	if v.mode == Compat {
		if len(sig) != ed25519.SignatureSize {
			return fmt.Errorf("feed: %w: a compat signature is 64 bytes, got %d", ErrBadSignature, len(sig))
		}
		if !v.checkSig(0, msg, sig) {
			return fmt.Errorf("feed: %w (length %d, fork %d)", ErrBadSignature, length, fork)
		}
		return nil
	}
	proofs, err := decodeMultiSignature(sig)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	seen := map[uint64]bool{}
	for _, p := range proofs {
		if p.Signer >= uint64(len(v.manifest.Signers)) || seen[p.Signer] {
			return fmt.Errorf("feed: %w: unknown or repeated signer %d", ErrBadSignature, p.Signer)
		}
		if p.Patch != 0 {
			return fmt.Errorf("feed: %w: patched signatures are not supported", ErrBadSignature)
		}
		seen[p.Signer] = true
		if !v.checkSig(int(p.Signer), msg, p.Signature[:]) {
			return fmt.Errorf("feed: %w (signer %d, length %d, fork %d)", ErrBadSignature, p.Signer, length, fork)
		}
	}
	if uint64(len(seen)) < v.manifest.Quorum {
		return fmt.Errorf("feed: %w: %d of the %d signatures needed", ErrBadSignature, len(seen), v.manifest.Quorum)
	}
	return nil
}

// signer signs heads for a writable feed.
type signer struct {
	*verifier
	secret ed25519.PrivateKey
}

func (s *signer) sign(treeHash [32]byte, length, fork uint64) []byte {
	raw := ed25519.Sign(s.secret, s.signable(treeHash, length, fork))
	if s.mode == Compat {
		return raw
	}
	var p signerProof
	copy(p.Signature[:], raw)
	return encodeMultiSignature([]signerProof{p})
}

func newSigner(kp KeyPair, mode Mode) (*signer, error) {
	if len(kp.Secret) != ed25519.PrivateKeySize || len(kp.Public) != ed25519.PublicKeySize {
		return nil, errors.New("feed: key pair is not an Ed25519 key pair")
	}
	switch mode {
	case Compat:
		var pk [32]byte
		copy(pk[:], kp.Public)
		return &signer{verifier: newCompatVerifier(pk), secret: kp.Secret}, nil
	case Manifest:
		v, err := newManifestVerifier(DefaultManifest(kp.Public).Encode())
		if err != nil {
			return nil, err
		}
		return &signer{verifier: v, secret: kp.Secret}, nil
	}
	return nil, fmt.Errorf("feed: unknown mode %v", mode)
}
