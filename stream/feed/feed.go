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
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
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
	failed  error // a write failed: memory and disk may differ; reopen to recover
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
	lock    *os.File
	ro      bool
	scratch []byte
	frame   []byte
	subs    map[chan Head]struct{}

	syncMu    sync.Mutex     // serialises syncs; held without mu
	syncWG    sync.WaitGroup // early syncs started by append, and the background sync
	bgSync    *time.Timer    // pending background sync (ForkOnPowerLoss), guarded by mu
	syncedSeq uint64         // guarded by mu
	syncedLog int64          // log size covered by the last sync (for power-loss tests)
}

type bitset []uint64

func (b bitset) has(i uint64) bool { return i/64 < uint64(len(b)) && b[i/64]&(1<<(i%64)) != 0 }
func (b *bitset) set(i uint64) {
	if w := int(i/64) + 1; len(*b) < w {
		*b = slices.Grow(*b, w-len(*b))[:w]
	}
	(*b)[i/64] |= 1 << (i % 64)
}

// Create makes a new feed in dir (created if missing). With o.KeyPair it is a
// writable feed; with o.Key a reader of someone else's feed.
func Create(dir string, o Options) (*Feed, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("feed: create %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, metaFile)); err == nil {
		// A reader's meta is not synced: after power loss it may be torn, and
		// then the reader is made again (its blocks are downloaded again).
		if _, rerr := readMeta(dir); rerr == nil || o.KeyPair != nil {
			return nil, fmt.Errorf("feed: %s: %w", dir, ErrExists)
		}
	}
	m := &metaInfo{maxBlockSize: uint64(o.MaxBlockSize), encrypted: o.Encryption != nil || o.Encrypted}
	switch {
	case o.KeyPair != nil:
		s, err := newSigner(*o.KeyPair, o.Mode)
		if err != nil {
			return nil, err
		}
		m.key, m.modeKnown, m.mode, m.manifest = s.key, true, s.mode, s.encoded
	case o.Key != nil:
		m.key = *o.Key
		if o.CompatKey {
			m.modeKnown, m.mode = true, Compat
		}
		if o.Manifest != nil {
			v, err := newManifestVerifier(o.Manifest)
			if err != nil {
				return nil, err
			}
			if v.key != m.key {
				return nil, fmt.Errorf("feed: the manifest does not hash to the feed key")
			}
			m.modeKnown, m.mode, m.manifest = true, Manifest, v.encoded
		}
	default:
		return nil, errors.New("feed: Create needs a key pair (to write) or a key (to read)")
	}
	if o.MaxBlockSize > MaxBlockSizeLimit {
		return nil, fmt.Errorf("feed: a maximum block size of %d is over the %d limit", o.MaxBlockSize, MaxBlockSizeLimit)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	// Empty files first (replacing leftovers of a create that crashed before
	// meta), synced; meta last, so that a feed exists only once it is whole.
	err = createFiles(dir)
	if err == nil {
		err = writeMeta(dir, m, o.KeyPair != nil)
	}
	unlockDir(lock)
	if err != nil {
		return nil, fmt.Errorf("feed: create %s: %w", dir, err)
	}
	return Open(dir, o)
}

// Open opens the feed in dir, recovering from a crash: a torn log tail is cut
// off and the feed comes back at its last complete signed state.
func Open(dir string, o Options) (*Feed, error) {
	m, err := readMeta(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("feed: no feed in %s: %w", dir, err)
		}
		return nil, err
	}
	if o.Encryption != nil && !m.encrypted {
		return nil, fmt.Errorf("feed: %s holds a feed whose blocks are not encrypted", dir)
	}
	if o.MaxBlockSize > MaxBlockSizeLimit {
		return nil, fmt.Errorf("feed: a maximum block size of %d is over the %d limit", o.MaxBlockSize, MaxBlockSizeLimit)
	}
	f := &Feed{dir: dir, meta: m, enc: o.Encryption, dur: o.Durability, ro: o.ReadOnly, log: o.Logger, maxBlock: o.MaxBlockSize,
		dirty: map[uint64]Node{}, dirtyBl: map[uint64]blockEntry{}, subs: map[chan Head]struct{}{}}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.maxBlock <= 0 {
		f.maxBlock = int(m.maxBlockSize)
	}
	if f.maxBlock <= 0 || f.maxBlock > MaxBlockSizeLimit {
		f.maxBlock = DefaultMaxBlockSize
	}
	if m.modeKnown {
		switch m.mode {
		case Compat:
			f.v = newCompatVerifier(m.key)
		case Manifest:
			if f.v, err = newManifestVerifier(m.manifest); err != nil {
				return nil, err
			}
		}
	}
	if o.Key != nil && *o.Key != m.key {
		return nil, fmt.Errorf("feed: %s holds feed %x, not %x", dir, m.key[:8], o.Key[:8])
	}
	if o.KeyPair != nil {
		mode := Compat
		if m.modeKnown {
			mode = m.mode
		}
		s, err := newSigner(*o.KeyPair, mode)
		if err != nil {
			return nil, err
		}
		if s.key != m.key {
			return nil, fmt.Errorf("feed: %s: %w", dir, ErrWrongKeyPair)
		}
		f.s, f.v = s, s.verifier
	}
	if !f.ro {
		if f.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	if f.fs, err = openFiles(dir, f.ro); err != nil {
		unlockDir(f.lock)
		return nil, err
	}
	f.t.nodes = nodeSet{file: f.fs.tree, maxPages: defaultMaxPage}
	if err := f.load(); err != nil {
		f.fs.close()
		unlockDir(f.lock)
		return nil, err
	}
	if f.s != nil && !f.ro {
		if err := f.takeOwnership(o.BootID); err != nil {
			f.fs.close()
			unlockDir(f.lock)
			return nil, err
		}
	}
	return f, nil
}

// takeOwnership moves to a new fork when the last writer died in a way that
// may have lost shared signatures, then records this writer in the owner
// file, durably, before anything is signed.
func (f *Feed) takeOwnership(boot string) error {
	if boot == "" {
		boot = bootID()
	}
	prev, err := readOwner(f.dir)
	if err != nil {
		return fmt.Errorf("feed: read the owner file: %w", err)
	}
	if prev.mayHaveLostShared(boot) {
		if err := f.bumpFork(); err != nil {
			return err
		}
	} else if prev.held && prev.mode == ForkOnPowerLoss {
		// Its process died on this boot: what it shared is in the OS cache,
		// not necessarily on disk. Sync it before this writer's owner record
		// (which may not ask for a new fork after a power loss) replaces it.
		if err := f.syncFilesLocked(); err != nil {
			return fmt.Errorf("feed: sync what the last writer left: %w", err)
		}
	}
	if err := writeOwner(f.dir, ownerState{held: true, mode: f.dur, boot: boot}); err != nil {
		return fmt.Errorf("feed: write the owner file: %w", err)
	}
	return nil
}

// load reads the checkpointed files and replays the log.
func (f *Feed) load() error {
	cp, err := f.fs.readHeader()
	if err != nil {
		return fmt.Errorf("feed: read header: %w", err)
	}
	if cp != nil {
		f.seq = cp.seq
		f.t.fork, f.t.length, f.t.byteLength, f.t.signature, f.syncPt = cp.fork, cp.length, cp.byteLength, cp.signature, cp.syncPoint
	}
	// Which blocks are stored, and where data ends: the blocks file, read in
	// chunks (entries themselves are read when needed).
	if err := f.scanBlocks(); err != nil {
		return err
	}
	// The log: records after the checkpoint, up to the first torn one.
	recs, offs, end, err := f.fs.readLog()
	if err != nil {
		return fmt.Errorf("feed: read log: %w", err)
	}
	cpSeq := f.seq
	// Records up to the newest sync any intact record vouches for have
	// their block bytes on disk; only later ones need reading back.
	durable := cpSeq
	for _, r := range recs {
		if r.synced > durable && r.synced <= r.seq {
			durable = r.synced
		}
	}
	replayed := 0
	for k, r := range recs {
		if r.seq <= f.seq {
			continue // already in the checkpoint
		}
		if r.seq != f.seq+1 {
			return fmt.Errorf("feed: %w: the log continues at record %d but the checkpoint ends at %d (header damaged?)", ErrCorrupt, r.seq, f.seq)
		}
		// After power loss a record can be on disk while the block bytes it
		// points at are not (two files). Such a record was never synced, so
		// never shared: roll back to before it.
		if r.seq <= durable {
			f.apply(r)
			replayed++
			continue
		}
		if bad := f.checkBlocks(r); bad != nil {
			f.log.Warn("feed: a logged block is missing or damaged on disk (power loss?); rolling back to the record before it",
				"dir", f.dir, "err", bad, "length", f.t.length)
			end = offs[k]
			recs = recs[:k]
			break
		}
		f.apply(r)
		replayed++
	}
	if cp == nil && len(recs) == 0 {
		if st, err := f.fs.tree.Stat(); err == nil && st.Size() > 0 {
			return fmt.Errorf("feed: %w: the header is unreadable but the tree holds data", ErrCorrupt)
		}
	}
	if st, err := f.fs.log.Stat(); err == nil && st.Size() > end {
		f.log.Warn("feed: cut a torn write off the log, rolling back to the last complete signed state",
			"dir", f.dir, "bytes", st.Size()-end, "length", f.t.length)
		if !f.ro {
			if err := f.fs.log.Truncate(end); err != nil {
				return fmt.Errorf("feed: cut torn log tail: %w", err)
			}
		}
	}
	f.fs.logSize, f.fs.logRecords = end, len(recs)
	// Roots of the signed length.
	if f.t.length > 0 {
		roots, err := f.t.rootsFor(f.t.length)
		if err != nil {
			return fmt.Errorf("feed: %w: %v", ErrCorrupt, err)
		}
		f.t.roots = roots
		if f.v != nil {
			if err := f.v.verify(TreeHash(roots), f.t.length, f.t.fork, f.t.signature); err != nil {
				return fmt.Errorf("feed: %w: stored head does not verify: %v", ErrCorrupt, err)
			}
		}
	}
	if f.t.nodes.err != nil {
		return fmt.Errorf("feed: read tree: %w", f.t.nodes.err)
	}
	// Only the checkpoint and records a later record vouches for are known
	// to be on disk: the rest may have been in the page cache of a killed
	// process, so they are synced again before a signature over them is shared.
	f.syncedSeq, f.syncedLog = min(durable, f.seq), 0
	if replayed > 0 {
		f.log.Debug("feed: replayed log", "dir", f.dir, "records", replayed, "length", f.t.length)
	}
	return nil
}

func leU64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
func leU32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// scanBlocks builds the bitfield and finds where data ends from the blocks file.
func (f *Feed) scanBlocks() error {
	buf := make([]byte, 64<<10*blockRecordSize/16)
	var off int64
	for {
		n, err := f.fs.blocks.ReadAt(buf, off)
		for j := 0; j+blockRecordSize <= n; j += blockRecordSize {
			rec := buf[j : j+blockRecordSize]
			if l := leU32(rec[8:]); l != 0 {
				f.setBlock(uint64(off+int64(j))/blockRecordSize, blockEntry{offset: leU64(rec), length: l - 1, crc: leU32(rec[12:])})
			}
		}
		off += int64(n - n%blockRecordSize)
		if err == io.EOF || n < len(buf) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("feed: read blocks: %w", err)
		}
	}
}

// checkBlocks reads back the blocks a log record references and checks their
// checksums (used when replaying a log after a crash).
func (f *Feed) checkBlocks(r *record) error {
	for _, b := range r.blocks {
		buf := make([]byte, b.entry.length)
		if n, err := f.fs.data.ReadAt(buf, int64(b.entry.offset)); n != len(buf) {
			return fmt.Errorf("block %d: %d of %d bytes on disk: %v", b.index, n, len(buf), err)
		}
		if crc32.Checksum(buf, crcTable) != b.entry.crc {
			return fmt.Errorf("block %d: checksum mismatch", b.index)
		}
	}
	return nil
}

// entry says where block i is in data (it must be present).
func (f *Feed) entry(i uint64) (blockEntry, error) {
	if e, ok := f.dirtyBl[i]; ok {
		return e, nil
	}
	var rec [blockRecordSize]byte
	if n, err := f.fs.blocks.ReadAt(rec[:], int64(i)*blockRecordSize); n != blockRecordSize {
		return blockEntry{}, fmt.Errorf("feed: block %d: %w (its entry is unreadable: %v)", i, ErrCorrupt, err)
	}
	l := leU32(rec[8:])
	if l == 0 {
		return blockEntry{}, fmt.Errorf("feed: block %d: %w (its entry is empty)", i, ErrCorrupt)
	}
	return blockEntry{offset: leU64(rec[:]), length: l - 1, crc: leU32(rec[12:])}, nil
}

// readBlock reads and checks a block's bytes; anything short or damaged is ErrCorrupt.
func readBlock(data *os.File, i uint64, e blockEntry) ([]byte, error) {
	buf := make([]byte, e.length)
	if n, err := data.ReadAt(buf, int64(e.offset)); n != len(buf) {
		return nil, fmt.Errorf("feed: block %d: %w (%d of %d bytes readable: %v)", i, ErrCorrupt, n, len(buf), err)
	}
	if crc32.Checksum(buf, crcTable) != e.crc {
		return nil, fmt.Errorf("feed: block %d: %w (checksum mismatch on disk)", i, ErrCorrupt)
	}
	return buf, nil
}

func (f *Feed) setBlock(i uint64, e blockEntry) {
	if !f.present.has(i) {
		f.have++
	}
	f.present.set(i)
	if end := e.offset + uint64(e.length); end > f.dataEnd {
		f.dataEnd = end
	}
}

// apply puts a record's content in memory and marks it for the next checkpoint.
func (f *Feed) apply(r *record) {
	for _, n := range r.nodes {
		f.t.nodes.put(n)
		f.dirty[n.Index] = n
	}
	for _, b := range r.blocks {
		f.setBlock(b.index, b.entry)
		f.dirtyBl[b.index] = b.entry
		f.cpData += uint64(b.entry.length)
	}
	if r.upgraded {
		f.t.fork, f.t.length, f.t.byteLength, f.t.signature, f.syncPt = r.fork, r.length, r.byteLength, r.signature, r.syncPoint
	}
	f.seq = r.seq
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
		return fmt.Errorf("feed: an earlier write failed, reopen the feed: %w", f.failed)
	}
	return nil
}

// Append adds blocks under one signature and returns the new head.
func (f *Feed) Append(blocks ...[]byte) (Head, error) { return f.append(blocks, false) }

// AppendSync is Append with the first block marked as a sync point (for video,
// a keyframe a viewer can start from). The mark is opaque to the feed.
func (f *Feed) AppendSync(blocks ...[]byte) (Head, error) { return f.append(blocks, true) }

func (f *Feed) append(blocks [][]byte, sync bool) (Head, error) {
	if len(blocks) == 0 {
		return f.Head(), nil
	}
	if f.s == nil || f.ro {
		return Head{}, fmt.Errorf("feed: %w", ErrReadOnly)
	}
	if f.meta.encrypted && f.enc == nil {
		return Head{}, errors.New("feed: this feed is encrypted: open it with its Encryption to append")
	}
	overhead := 0
	if f.enc != nil {
		overhead = f.enc.Overhead()
	}
	leaves := make([]Node, len(blocks))
	var total int
	for i, b := range blocks {
		if len(b)+overhead > f.maxBlock {
			return Head{}, fmt.Errorf("feed: block %d of the batch has %d bytes: %w (%d)", i, len(b), ErrBlockTooBig, f.maxBlock-overhead)
		}
		total += len(b) + overhead
	}
	hashes := make([][32]byte, len(blocks))
	if f.enc == nil {
		// Hash outside the lock; a block's hash does not depend on its index.
		hashLeaves(blocks, hashes)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(); err != nil {
		return Head{}, err
	}
	start := f.t.length
	if f.enc != nil {
		// Encrypt, then hash: the tree covers the ciphertext. The nonce
		// needs the index, known only under the lock.
		sealed := make([][]byte, len(blocks))
		for i, b := range blocks {
			sealed[i] = f.enc.Encrypt(make([]byte, 0, len(b)+overhead), start+uint64(i), f.t.fork, b)
		}
		blocks = sealed
		hashLeaves(blocks, hashes)
	}
	for i, b := range blocks {
		leaves[i] = Node{Index: 2 * (start + uint64(i)), Size: uint64(len(b)), Hash: hashes[i]}
	}
	// Write the block bytes first: a crash before the log record leaves them
	// unreferenced.
	off := f.dataEnd
	refs := make([]blockRef, len(blocks))
	pos := off
	for i, b := range blocks {
		refs[i] = blockRef{index: start + uint64(i), entry: blockEntry{offset: pos, length: uint32(len(b)), crc: crc32.Checksum(b, crcTable)}}
		pos += uint64(len(b))
	}
	if err := f.writeData(blocks, off, total); err != nil {
		f.failed = err
		return Head{}, fmt.Errorf("feed: write blocks: %w", err)
	}
	nt := f.t // copy of the scalar state; nodes are shared but only added to
	nt.roots = append([]Node(nil), f.t.roots...)
	newNodes := nt.appendLeaves(make([]Node, 0, 2*len(leaves)), leaves)
	th := nt.hash()
	nt.signature = f.s.sign(th, nt.length, nt.fork)
	syncPt := f.syncPt
	if sync {
		syncPt = start + 1
	}
	r := &record{seq: f.seq + 1, synced: f.syncedSeq, upgraded: true, fork: nt.fork, length: nt.length, byteLength: nt.byteLength,
		signature: nt.signature, syncPoint: syncPt, nodes: newNodes, blocks: refs}
	if err := f.writeRecord(r); err != nil {
		f.failed = err
		return Head{}, fmt.Errorf("feed: write log: %w", err)
	}
	f.t.roots = nt.roots
	f.apply(r)
	if f.dur == SyncEveryAppend {
		if err := f.syncFilesLocked(); err != nil {
			f.failed = err
			return Head{}, fmt.Errorf("feed: sync: %w", err)
		}
	}
	if err := f.maybeCheckpoint(); err != nil {
		f.failed = err
		return Head{}, err
	}
	h := f.headLocked()
	f.notify(h)
	if f.dur == ForkOnPowerLoss && f.bgSync == nil {
		// One pending background sync at a time; Close stops it or waits for it.
		f.syncWG.Add(1)
		f.bgSync = time.AfterFunc(BackgroundSync, func() {
			defer f.syncWG.Done()
			f.mu.Lock()
			f.bgSync = nil
			seq := f.seq // everything appended until now: later appends arm a new timer
			f.mu.Unlock()
			if err := f.syncTo(seq); err != nil && !errors.Is(err, ErrClosed) {
				f.log.Error("feed: background sync failed", "dir", f.dir, "err", err)
			}
		})
	}
	if len(f.subs) > 0 && f.dur == SyncBeforeShare {
		// Someone follows the live edge and will ask for a proof of this
		// head at once: start its sync now rather than when they ask. The
		// goroutine is waited for by Close.
		seq := f.seq
		f.syncWG.Add(1)
		go func() {
			defer f.syncWG.Done()
			f.syncTo(seq) // an error here is met again, and reported, by the Proof that needs it
		}()
	}
	return h, nil
}

// Read returns block i's plaintext: Get, decrypted when the feed is encrypted.
func (f *Feed) Read(i uint64) ([]byte, error) {
	b, err := f.Get(i)
	if err != nil || !f.meta.encrypted {
		return b, err
	}
	if f.enc == nil {
		return nil, fmt.Errorf("feed: block %d is encrypted and this feed was opened without its key", i)
	}
	return f.enc.Decrypt(nil, i, 0, b)
}

// Encrypted reports whether the feed's blocks are encrypted.
func (f *Feed) Encrypted() bool { return f.meta.encrypted }

// hashLeaves hashes blocks, spreading big batches over two goroutines.
func hashLeaves(blocks [][]byte, out [][32]byte) {
	total := 0
	for _, b := range blocks {
		total += len(b)
	}
	if len(blocks) < 2 || total < 256<<10 {
		for i, b := range blocks {
			out[i] = LeafHash(b)
		}
		return
	}
	half := len(blocks) / 2
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := half; i < len(blocks); i++ {
			out[i] = LeafHash(blocks[i])
		}
	}()
	for i := 0; i < half; i++ {
		out[i] = LeafHash(blocks[i])
	}
	wg.Wait()
}

func (f *Feed) writeData(blocks [][]byte, off uint64, total int) error {
	if len(blocks) == 1 {
		_, err := f.fs.data.WriteAt(blocks[0], int64(off))
		return err
	}
	return writeBlocks(f.fs.data, blocks, int64(off))
}

func writeBlocksEach(file *os.File, blocks [][]byte, off int64) error {
	for _, b := range blocks {
		if _, err := file.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

func (f *Feed) writeRecord(r *record) error {
	body := r.encode(f.scratch[:0])
	var err error
	f.frame, err = f.fs.appendLog(body, f.frame)
	if cap(body) <= 1<<20 {
		f.scratch = body[:0]
	}
	if cap(f.frame) > 1<<20 {
		f.frame = nil
	}
	return err
}

func (f *Feed) syncFilesLocked() error {
	if err := f.fs.data.Sync(); err != nil {
		return err
	}
	if err := f.fs.log.Sync(); err != nil {
		return err
	}
	f.syncedSeq, f.syncedLog = f.seq, f.fs.logSize
	return nil
}

// Sync makes everything appended so far durable on disk.
func (f *Feed) Sync() error {
	f.mu.Lock()
	seq := f.seq
	f.mu.Unlock()
	return f.syncTo(seq)
}

// syncTo syncs the data and log files unless seq is already synced. Concurrent
// callers share one sync (group commit); appends go on meanwhile.
func (f *Feed) syncTo(seq uint64) error {
	f.mu.Lock()
	done := f.syncedSeq >= seq
	data, log := f.fs.data, f.fs.log
	closed := f.closed
	f.mu.Unlock()
	if done {
		return nil
	}
	if closed {
		return fmt.Errorf("feed: %w", ErrClosed)
	}
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	if f.syncedSeq >= seq {
		f.mu.Unlock()
		return nil
	}
	target, logSize := f.seq, f.fs.logSize
	f.mu.Unlock()
	// Both files at once: the wait is one sync, not two. Their order does not
	// matter: a log record whose block bytes did not reach the disk is rolled
	// back on open, and nothing is shared before both syncs returned.
	dataErr := make(chan error, 1)
	go func() { dataErr <- data.Sync() }()
	lerr := log.Sync()
	if err := <-dataErr; err != nil {
		return fmt.Errorf("feed: sync data: %w", err)
	}
	if lerr != nil {
		return fmt.Errorf("feed: sync log: %w", lerr)
	}
	f.mu.Lock()
	if target > f.syncedSeq {
		f.syncedSeq, f.syncedLog = target, logSize
	}
	f.mu.Unlock()
	return nil
}

// maybeCheckpoint folds the log into the tree and blocks files when it is big.
func (f *Feed) maybeCheckpoint() error {
	if f.fs.logSize < checkpointBytes && f.fs.logRecords < checkpointCount && f.cpData < checkpointData {
		return nil
	}
	return f.checkpointLocked()
}

func (f *Feed) checkpointLocked() error {
	if f.fs.logRecords == 0 && len(f.dirty) == 0 && len(f.dirtyBl) == 0 {
		return nil
	}
	if err := writeRuns(f.fs.tree, f.dirty, nodeRecordSize, func(b []byte, n Node) { putNodeRecord(b, n) }); err != nil {
		return fmt.Errorf("feed: checkpoint tree: %w", err)
	}
	if err := writeRuns(f.fs.blocks, f.dirtyBl, blockRecordSize, putBlockRecord); err != nil {
		return fmt.Errorf("feed: checkpoint blocks: %w", err)
	}
	for _, file := range []*os.File{f.fs.data, f.fs.tree, f.fs.blocks} {
		if err := file.Sync(); err != nil {
			return fmt.Errorf("feed: checkpoint sync: %w", err)
		}
	}
	cp := &checkpoint{seq: f.seq, fork: f.t.fork, length: f.t.length, byteLength: f.t.byteLength, signature: f.t.signature, syncPoint: f.syncPt}
	if err := f.fs.writeHeader(cp); err != nil {
		return fmt.Errorf("feed: checkpoint header: %w", err)
	}
	if err := f.fs.log.Truncate(0); err != nil {
		return fmt.Errorf("feed: checkpoint log: %w", err)
	}
	f.fs.logSize, f.fs.logRecords = 0, 0
	clear(f.dirty)
	clear(f.dirtyBl)
	f.cpData = 0
	f.t.nodes.markClean()
	f.syncedSeq, f.syncedLog = f.seq, 0
	return nil
}

// writeRuns writes fixed-size records at index*size, sorted, one write per
// run of consecutive indexes.
func writeRuns[T any](file *os.File, recs map[uint64]T, size int, put func([]byte, T)) error {
	idx := make([]uint64, 0, len(recs))
	for i := range recs {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var buf []byte
	for k := 0; k < len(idx); {
		j := k
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 && j-k < 4096 {
			j++
		}
		buf = slices.Grow(buf[:0], (j-k+1)*size)[:(j-k+1)*size]
		for m := k; m <= j; m++ {
			put(buf[(m-k)*size:], recs[idx[m]])
		}
		if _, err := file.WriteAt(buf, int64(idx[k])*int64(size)); err != nil {
			return err
		}
		k = j + 1
	}
	return nil
}

// Has reports whether block i is stored here.
func (f *Feed) Has(i uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.present.has(i)
}

// Stored is the number of blocks stored here (a sparse reader holds some).
func (f *Feed) Stored() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.have
}

// Bitfield calls fn with each stored block index in [start, end), in order.
// fn runs without the feed's lock held, so it may call the feed.
func (f *Feed) Bitfield(start, end uint64, fn func(i uint64) bool) {
	const chunk = 4096
	for start < end {
		stop := min(end, start+chunk)
		var have []uint64
		f.mu.Lock()
		for i := start; i < stop && i/64 < uint64(len(f.present)); i++ {
			if f.present.has(i) {
				have = append(have, i)
			}
		}
		f.mu.Unlock()
		for _, i := range have {
			if !fn(i) {
				return
			}
		}
		start = stop
	}
}

// ContiguousLength is the number of blocks stored from block 0 on without a gap.
func (f *Feed) ContiguousLength() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var i uint64
	for i < f.t.length && f.present.has(i) {
		i++
	}
	return i
}

// Get reads block i. It checks the block's checksum, so bytes damaged on disk
// are reported (ErrCorrupt), never returned.
func (f *Feed) Get(i uint64) ([]byte, error) {
	f.mu.Lock()
	if err := f.usable(); err != nil {
		f.mu.Unlock()
		return nil, err
	}
	if !f.present.has(i) {
		f.mu.Unlock()
		return nil, fmt.Errorf("feed: block %d: %w", i, ErrNotStored)
	}
	e, err := f.entry(i)
	data := f.fs.data
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return readBlock(data, i, e)
}

// MissingNodes is what to put in BlockRequest.Nodes when asking a peer for block i.
func (f *Feed) MissingNodes(i uint64) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= f.t.length {
		return 0
	}
	return f.t.missingNodes(i)
}

// Proof answers a request with the block and the nodes and signature that
// prove it. The signature it carries is on disk before Proof returns (see
// Durability).
func (f *Feed) Proof(req Request) (*Proof, error) {
	p, _, err := f.ProofLength(req)
	return p, err
}

// ProofLength is Proof, also returning the signed length the proof's upgrade
// reaches (upgrade nodes and additional nodes run up to the feed's length
// when the proof was made, which appends may have moved since the caller
// last looked).
func (f *Feed) ProofLength(req Request) (*Proof, uint64, error) {
	p, length, seq, err := f.proof(req)
	if err != nil {
		return nil, 0, err
	}
	if p.Upgrade != nil && f.syncBeforeSharing() {
		if err := f.syncTo(seq); err != nil {
			return nil, 0, err
		}
	}
	return p, length, nil
}

// PendingProof is a proof whose upgrade signature waits for the disk. Proof
// holds everything but Upgrade.Signature and may leave the process at once:
// without the signature nobody can take its bytes for signed data. Signature
// returns the signature once the state it signs is durable (see Durability),
// so a peer can receive and hash the block while the disk syncs and needs
// only the signature afterwards.
type PendingProof struct {
	Proof  *Proof
	Length uint64 // the signed length the upgrade reaches
	f      *Feed
	seq    uint64
	sig    []byte
}

// Signature waits until the signed state is on disk and returns its
// signature (nil for a proof without an upgrade). It is safe to call from
// several goroutines: they share one sync.
func (pp *PendingProof) Signature() ([]byte, error) {
	if pp.sig == nil {
		return nil, nil
	}
	if pp.f.syncBeforeSharing() {
		if err := pp.f.syncTo(pp.seq); err != nil {
			return nil, err
		}
	}
	return pp.sig, nil
}

// Durable reports whether Signature would return without waiting.
func (pp *PendingProof) Durable() bool {
	if pp.sig == nil || !pp.f.syncBeforeSharing() {
		return true
	}
	pp.f.mu.Lock()
	defer pp.f.mu.Unlock()
	return pp.f.syncedSeq >= pp.seq
}

// syncBeforeSharing says whether a signature must be on disk before it
// leaves: a writer's, unless it forks after a power loss instead. (A reader
// relays signatures its writer made.)
func (f *Feed) syncBeforeSharing() bool { return f.s != nil && f.dur != ForkOnPowerLoss }

// ProofPending is ProofLength without waiting for the disk: the upgrade's
// signature is held back in the PendingProof until it is durable. A reader's
// feed (which relays signatures it verified) has nothing to wait for.
//
// An encrypted feed's block waits for the disk too under SyncBeforeShare: if
// a power loss took it, the feed could encrypt a different block under the
// same nonce (index and fork), and whoever held both ciphertexts would learn
// something of both plaintexts. (ForkOnPowerLoss moves to a new fork, which
// changes the nonce.)
func (f *Feed) ProofPending(req Request) (*PendingProof, error) {
	p, length, seq, err := f.proof(req)
	if err != nil {
		return nil, err
	}
	if f.meta.encrypted && p.Block != nil && f.syncBeforeSharing() {
		if err := f.syncTo(seq); err != nil {
			return nil, err
		}
	}
	pp := &PendingProof{Proof: p, Length: length, f: f, seq: seq}
	if p.Upgrade != nil {
		pp.sig, p.Upgrade.Signature = p.Upgrade.Signature, nil
	}
	return pp, nil
}

// proof makes the proof for req, without syncing, and returns the length it
// reaches and the log sequence number its signature needs synced.
func (f *Feed) proof(req Request) (*Proof, uint64, uint64, error) {
	f.mu.Lock()
	if err := f.usable(); err != nil {
		f.mu.Unlock()
		return nil, 0, 0, err
	}
	length := f.t.length
	p, err := f.t.proof(req)
	if err != nil {
		f.mu.Unlock()
		return nil, 0, 0, err
	}
	if req.Manifest && f.v != nil && f.v.mode == Manifest {
		p.Manifest = append([]byte(nil), f.v.encoded...)
	}
	if p.Upgrade != nil {
		p.Upgrade.Signature = append([]byte(nil), p.Upgrade.Signature...)
	}
	var e blockEntry
	if p.Block != nil {
		if !f.present.has(p.Block.Index) {
			f.mu.Unlock()
			return nil, 0, 0, fmt.Errorf("feed: block %d: %w", p.Block.Index, ErrNotStored)
		}
		var err error
		if e, err = f.entry(p.Block.Index); err != nil {
			f.mu.Unlock()
			return nil, 0, 0, err
		}
	}
	seq, data := f.seq, f.fs.data
	f.mu.Unlock()
	if p.Block != nil {
		if p.Block.Value, err = readBlock(data, p.Block.Index, e); err != nil {
			return nil, 0, 0, err
		}
	}
	return p, length, seq, nil
}

// Verify checks a proof from a peer against the feed key and stores what it
// proves: the block, the nodes and, for an upgrade, the new signed head.
// Nothing is stored when it fails.
func (f *Feed) Verify(p *Proof) error {
	if p.Block != nil && len(p.Block.Value) > f.maxBlock {
		return fmt.Errorf("feed: block %d has %d bytes: %w (%d)", p.Block.Index, len(p.Block.Value), ErrBlockTooBig, f.maxBlock)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(); err != nil {
		return err
	}
	if f.ro {
		return fmt.Errorf("feed: %w (opened read-only)", ErrReadOnly)
	}
	v := f.v
	learned := false
	if p.Manifest != nil && (v == nil || v.mode == Manifest) {
		mv, err := newManifestVerifier(p.Manifest)
		if err != nil {
			return fmt.Errorf("feed: %w: %w", ErrInvalidProof, err)
		}
		if mv.key != f.meta.key {
			return fmt.Errorf("feed: %w: the manifest does not hash to the feed key", ErrInvalidProof)
		}
		if v == nil {
			v, learned = mv, true
		}
	}
	if v == nil {
		// No manifest: the key is an Ed25519 public key (compat mode).
		v, learned = newCompatVerifier(f.meta.key), true
	}
	res, err := f.t.verify(p, v)
	if err != nil {
		return err
	}
	if learned {
		f.meta.modeKnown, f.meta.mode, f.meta.manifest = true, v.mode, v.encoded
		if err := writeMeta(f.dir, f.meta, false); err != nil {
			return fmt.Errorf("feed: store the signer: %w", err)
		}
		f.v = v
	}
	r := &record{seq: f.seq + 1, synced: f.syncedSeq}
	for _, n := range res.nodes {
		if !f.t.nodes.has(n.Index) {
			r.nodes = append(r.nodes, n)
		}
	}
	if p.Block != nil && !f.present.has(p.Block.Index) {
		b := p.Block.Value
		off := f.dataEnd
		if _, err := f.fs.data.WriteAt(b, int64(off)); err != nil {
			f.failed = err
			return fmt.Errorf("feed: write block: %w", err)
		}
		r.blocks = []blockRef{{index: p.Block.Index, entry: blockEntry{offset: off, length: uint32(len(b)), crc: crc32.Checksum(b, crcTable)}}}
	}
	if res.upgraded {
		r.upgraded, r.fork, r.length, r.byteLength, r.signature = true, res.fork, res.length, res.byteLength, append([]byte(nil), res.signature...)
	}
	if len(r.nodes) == 0 && len(r.blocks) == 0 && !r.upgraded {
		return nil // nothing new
	}
	if err := f.writeRecord(r); err != nil {
		f.failed = err
		return fmt.Errorf("feed: write log: %w", err)
	}
	f.apply(r)
	if res.upgraded {
		f.t.roots = res.roots
	}
	if err := f.maybeCheckpoint(); err != nil {
		f.failed = err
		return err
	}
	if res.upgraded {
		f.notify(f.headLocked())
	}
	return nil
}

// CheckFork verifies, storing nothing, that p (an upgrade from length 0, no
// block) proves a signed state of this feed, and returns its fork and length.
// A reader uses it to confirm that its writer moved to another fork (after a
// power loss, see ForkOnPowerLoss) before it gives up what it holds.
func (f *Feed) CheckFork(p *Proof) (fork, length uint64, err error) {
	if p.Block != nil || p.Upgrade == nil || p.Upgrade.Start != 0 {
		return 0, 0, fmt.Errorf("feed: %w: a fork is proved by an upgrade from length 0 alone", ErrInvalidProof)
	}
	f.mu.Lock()
	v := f.v
	f.mu.Unlock()
	if v == nil {
		if p.Manifest == nil {
			v = newCompatVerifier(f.meta.key)
		} else {
			mv, err := newManifestVerifier(p.Manifest)
			if err != nil {
				return 0, 0, fmt.Errorf("feed: %w: %w", ErrInvalidProof, err)
			}
			if mv.key != f.meta.key {
				return 0, 0, fmt.Errorf("feed: %w: the manifest does not hash to the feed key", ErrInvalidProof)
			}
			v = mv
		}
	}
	var empty tree
	res, err := empty.verify(p, v)
	if err != nil {
		return 0, 0, err
	}
	return res.fork, res.length, nil
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

// VerifyAll re-reads every stored block and checks it against the tree, then
// checks the signed head against the key. It is what `feed verify` runs.
func (f *Feed) VerifyAll() (checked uint64, err error) {
	f.mu.Lock()
	length, v := f.t.length, f.v
	roots := append([]Node(nil), f.t.roots...)
	sig, fork := f.t.signature, f.t.fork
	f.mu.Unlock()
	if length == 0 {
		return 0, nil
	}
	if v == nil {
		return 0, errors.New("feed: the signer is not known yet (no upgrade verified)")
	}
	if err := v.verify(TreeHash(roots), length, fork, sig); err != nil {
		return 0, err
	}
	for i := uint64(0); i < length; i++ {
		if !f.Has(i) {
			continue
		}
		b, err := f.Get(i)
		if err != nil {
			return checked, err
		}
		f.mu.Lock()
		n, ok := f.t.nodes.get(2 * i)
		f.mu.Unlock()
		if !ok || LeafNode(i, b) != n {
			return checked, fmt.Errorf("feed: block %d: %w (does not match its tree node)", i, ErrCorrupt)
		}
		checked++
	}
	// Every stored parent must hash from its children where both are stored.
	for idx := uint64(1); idx < 2*length; idx += 2 {
		f.mu.Lock()
		pn, ok := f.t.nodes.get(idx)
		var ln, rn Node
		var lok, rok bool
		if ok {
			it := newFlatIter(idx)
			l := it.leftChild()
			ln, lok = f.t.nodes.get(l)
			rn, rok = f.t.nodes.get(l + it.factor)
		}
		f.mu.Unlock()
		if lok && rok {
			if p := ParentNode(ln, rn); p.Hash != pn.Hash || p.Size != pn.Size {
				return checked, fmt.Errorf("feed: tree node %d: %w", idx, ErrCorrupt)
			}
		}
	}
	return checked, nil
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
