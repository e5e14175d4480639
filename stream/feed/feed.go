// Package feed is Dazaar Vision's signed append-only log: a Merkle tree over
// the blocks whose hashes, signatures and proofs follow Hypercore v10 (and
// v11's manifest-mode keys), stored on disk so that it survives crashes.
//
// A writer (created with a key pair) appends blocks and answers requests with
// proofs; a reader (opened with the feed key) verifies proofs and stores only
// what verified, in any order. Both keep their state across restarts.
package feed

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/filelock"
)

// Durability says when appended data reaches stable storage.
type Durability uint8

const (
	// SyncBeforeShare writes appends to the OS at once (they survive the
	// process being killed) and syncs them to disk before any signature
	// covering them leaves the process (Proof). After power loss the feed
	// reopens at the last synced or later state, and never signs a different
	// block at a length whose signature it may have sent. This is the default.
	SyncBeforeShare Durability = iota
	// SyncEveryAppend syncs to disk before Append returns.
	SyncEveryAppend
	// ForkOnPowerLoss lets signatures leave before the disk has what they
	// sign, and syncs in the background (within BackgroundSync of an append).
	// A process that dies loses nothing (its writes are in the operating
	// system's cache); a machine that loses power may lose the last appends
	// after their signatures were sent. So a writer that finds the feed's
	// last writer died holding it with this durability on an earlier boot of
	// the machine (or cannot tell) signs the feed again on a new fork before
	// anything else: the feed never signs a different block at a length it
	// signed before within one fork, and readers that held the lost tail see
	// the new fork and start again from it. For live streams, where the sync
	// would sit between an append and every viewer.
	ForkOnPowerLoss
)

// BackgroundSync is how long a ForkOnPowerLoss append waits on the OS before
// the feed syncs it: the most a power loss can take.
const BackgroundSync = time.Second

// Options configure Create and Open.
type Options struct {
	// KeyPair makes the feed writable. Create needs it; Open with it checks
	// that it matches the stored key. The app keeps it in its secret store:
	// the feed never writes the secret key to disk.
	KeyPair *KeyPair
	// Mode of a new writable feed's key (Compat, Hypercore v10's default, or Manifest).
	Mode Mode
	// Key is the feed key a reader is created with (Create without KeyPair).
	Key *[32]byte
	// Manifest is the encoded manifest when a reader already knows it.
	Manifest []byte
	// CompatKey says a reader's Key is known to be a compat-mode (v10)
	// public key, so no proof has to teach it the signer.
	CompatKey bool
	// MaxBlockSize caps appended and received blocks (default 4 MiB).
	MaxBlockSize int
	Durability   Durability
	Logger       *slog.Logger
	// BootID names the operating system's current boot (default: asked of
	// the system). A writer compares it with the boot its dead predecessor
	// ran on (see ForkOnPowerLoss); tests set it to act out a reboot.
	BootID string
	// Encryption, when set, encrypts appended blocks before hashing and
	// decrypts them in Read. A feed created with it is marked encrypted; a
	// reader of an encrypted feed without it verifies and serves ciphertext.
	Encryption BlockEncryption
	// Encrypted marks a new reader's feed as encrypted when the reader (a
	// relay) does not hold the key: it verifies and serves, Read refuses.
	Encrypted bool
	// ReadOnly opens a feed to look at it (the command line's info, verify
	// and get) while another process may own it: no lock is taken and
	// nothing is written, not even crash recovery.
	ReadOnly bool
}

// Head is a feed's newest signed state.
type Head struct {
	Fork       uint64
	Length     uint64
	ByteLength uint64
	TreeHash   [32]byte
	// Signature of the head. Under SyncBeforeShare it may not be on disk yet:
	// a signature meant for a peer goes out through Proof or PendingProof.
	Signature []byte
	// SyncPoint is the index of the newest block the appender marked as a
	// sync point (for video: a keyframe); HasSyncPoint says whether any is.
	SyncPoint    uint64
	HasSyncPoint bool
}

// Errors callers can test for with errors.Is.
var (
	ErrClosed       = errors.New("feed is closed")
	ErrReadOnly     = errors.New("feed is read-only: it has no signing key")
	ErrBlockTooBig  = errors.New("block is larger than the maximum block size")
	ErrNotStored    = errors.New("block is not stored here")
	ErrCorrupt      = errors.New("stored data is corrupt")
	ErrExists       = errors.New("a feed already exists there")
	ErrWrongKeyPair = errors.New("key pair does not match the feed")
	ErrLocked       = errors.New("feed is in use by another program (or already open here)")
	// ErrStorage marks a failure of the feed's own disk (a write or sync that failed), as
	// opposed to data that did not verify: errors.Is(err, ErrStorage).
	ErrStorage = errors.New("the feed's storage failed")
)

// Feed is a signed append-only log on disk. Its methods are safe for
// concurrent use.
type Feed struct {
	dir      string
	enc      BlockEncryption
	maxBlock int
	dur      Durability
	log      *slog.Logger

	mu      sync.Mutex
	closed  bool
	failed  error // a write or sync failed: memory and disk may differ; reopen to recover
	t       tree
	v       *verifier // nil for a reader that does not know its signer yet
	s       *signer   // nil for readers
	meta    *metaInfo
	fs      *files
	present bitset
	have    uint64 // number of blocks stored
	dataEnd uint64
	seq     uint64
	syncPt  uint64 // index+1 of newest sync point
	dirty   map[uint64]Node
	dirtyBl map[uint64]blockEntry
	cpData  uint64 // block bytes written since the last checkpoint
	lock    *filelock.Lock
	ro      bool
	// lostShared: Open cut log records that were written, not torn (a damaged record in
	// the middle of the log); a writer moves to a new fork.
	lostShared bool
	scratch    []byte
	frame      []byte
	subs       map[chan Head]struct{}

	syncMu    sync.Mutex     // serialises syncs; held without mu
	syncWG    sync.WaitGroup // early syncs started by append, and the background sync
	bgSync    *time.Timer    // pending background sync (ForkOnPowerLoss), guarded by mu
	syncedSeq uint64         // guarded by mu
	waiting   *syncWait      // the sync SignatureContext's callers wait for, guarded by mu
	syncedLog int64          // log size covered by the last sync (for power-loss tests)

	// One sync of each file at a time, and the first sync that failed (see syncFile).
	dataSyncMu, logSyncMu sync.Mutex
	syncErr               atomic.Pointer[error]
}

// bitset marks the stored blocks in pages of 2^16 bits (8 KiB), each made when a block in it is
// first stored: a sparse reader, or a signed upgrade that jumps far ahead, costs a page per
// stored region and one page-table entry per 2^16 blocks of length (maxLength keeps the table
// under 2^16 entries), never a bit for every block before the one stored.
type bitset struct{ pages []*bitPage }

const bitPageBits = 16

type bitPage [1 << bitPageBits / 64]uint64

func (b *bitset) has(i uint64) bool {
	p := i >> bitPageBits
	if p >= uint64(len(b.pages)) || b.pages[p] == nil {
		return false
	}
	return b.pages[p][i%(1<<bitPageBits)/64]&(1<<(i%64)) != 0
}

func (b *bitset) set(i uint64) {
	p := int(i >> bitPageBits)
	if len(b.pages) <= p {
		b.pages = slices.Grow(b.pages, p+1-len(b.pages))[:p+1]
	}
	if b.pages[p] == nil {
		b.pages[p] = new(bitPage)
	}
	b.pages[p][i%(1<<bitPageBits)/64] |= 1 << (i % 64)
}

// next is the first index at or after i whose page exists (a block at i or later may be set),
// and false past the last page.
func (b *bitset) next(i uint64) (uint64, bool) {
	for p := i >> bitPageBits; p < uint64(len(b.pages)); p++ {
		if b.pages[p] != nil {
			return max(i, p<<bitPageBits), true
		}
	}
	return 0, false
}

// Key is the feed key: the public key in compat mode, the manifest hash in manifest mode.
func (f *Feed) Key() [32]byte { return f.meta.key }

// DiscoveryKey is the name peers find the feed by without learning its key.
func (f *Feed) DiscoveryKey() [32]byte { return DiscoveryKey(f.meta.key) }

// Writable reports whether the feed can append (it holds the signing key).
func (f *Feed) Writable() bool { return f.s != nil }

// Mode reports the key's mode, and whether a reader knows it yet (a reader
// with a manifest-mode key learns its manifest with its first upgrade).
func (f *Feed) Mode() (Mode, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.v == nil {
		return 0, false
	}
	return f.v.mode, true
}

// Manifest is the encoded manifest in manifest mode (nil in compat mode).
func (f *Feed) Manifest() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.v == nil || f.v.mode != Manifest {
		return nil
	}
	return append([]byte(nil), f.v.encoded...)
}

// MaxBlockSize is the largest block the feed accepts.
func (f *Feed) MaxBlockSize() int { return f.maxBlock }

// Dir is the feed's directory.
func (f *Feed) Dir() string { return f.dir }

func (f *Feed) headLocked() Head {
	h := Head{Fork: f.t.fork, Length: f.t.length, ByteLength: f.t.byteLength,
		Signature: append([]byte(nil), f.t.signature...)}
	if f.t.length > 0 {
		h.TreeHash = f.t.hash()
	} else {
		h.TreeHash = TreeHash(nil)
	}
	if f.syncPt > 0 {
		h.SyncPoint, h.HasSyncPoint = f.syncPt-1, true
	}
	return h
}

// Head is the newest signed state.
func (f *Feed) Head() Head {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headLocked()
}

// Length is the signed length.
func (f *Feed) Length() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t.length
}

func (f *Feed) usable() error {
	if f.closed {
		return fmt.Errorf("feed: %w", ErrClosed)
	}
	if f.failed != nil {
		return fmt.Errorf("feed: an earlier write or sync failed, reopen the feed: %w: %w", ErrStorage, f.failed)
	}
	return nil
}

// Subscribe returns a channel that receives the newest head after each append
// or verified upgrade, and a function that ends the subscription. Overflow
// policy: the channel holds one head; a newer head replaces one not yet
// received, so a slow receiver sees the newest state, never a backlog.
func (f *Feed) Subscribe() (<-chan Head, func()) {
	ch := make(chan Head, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

func (f *Feed) notify(h Head) {
	for ch := range f.subs {
		select {
		case ch <- h:
		default:
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- h:
			default:
			}
		}
	}
}

// Close checkpoints the log and closes the files.
func (f *Feed) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true // no append starts an early sync from here on
	if f.bgSync != nil && f.bgSync.Stop() {
		f.syncWG.Done() // it will not run: the checkpoint below syncs instead
	}
	f.bgSync = nil
	f.mu.Unlock()
	f.syncWG.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.failed == nil && !f.ro {
		err = f.checkpointLocked()
		if err == nil && f.s != nil {
			// Everything is on disk: the next writer has nothing to fear.
			err = writeOwner(f.dir, ownerState{held: false, mode: f.dur})
		}
	}
	if cerr := f.fs.close(); err == nil {
		err = cerr
	}
	unlockDir(f.lock)
	for ch := range f.subs {
		delete(f.subs, ch)
	}
	return err
}

// PublicKey is the writer's Ed25519 public key (nil for a reader).
func (f *Feed) PublicKey() ed25519.PublicKey {
	if f.s == nil {
		return nil
	}
	return f.s.secret.Public().(ed25519.PublicKey)
}
