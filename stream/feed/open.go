package feed

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

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
	switch {
	case f.lostShared:
		if err := f.bumpFork("the log was damaged where Open cut it, and what was cut may have been shared"); err != nil {
			return err
		}
	case prev.mayHaveLostShared(boot):
		if err := f.bumpFork("the last writer died with appends that a power loss may have taken"); err != nil {
			return err
		}
	case prev.held && prev.mode == ForkOnPowerLoss:
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
	// New blocks go where the data file ends: an entry that says it reaches past it
	// (damaged, or its block lost to a power loss) cannot move that end out into a
	// hole, and its block reads as damaged.
	if st, err := f.fs.data.Stat(); err != nil {
		return fmt.Errorf("feed: %w: %w", ErrStorage, err)
	} else if size := uint64(st.Size()); f.dataEnd > size {
		f.log.Warn("feed: the blocks file names data past the end of the data file; those blocks read as damaged",
			"dir", f.dir, "data end", f.dataEnd, "file size", size)
		f.dataEnd = size
	}
	// The log: records after the checkpoint, up to the first torn one.
	recs, offs, end, damaged, err := f.fs.readLog()
	if err != nil {
		return fmt.Errorf("feed: read log: %w", err)
	}
	if damaged {
		// Not a torn write: a record in the middle of the log is damaged. What follows
		// it is cut, and a writer may have shared signatures over it: it moves to a new
		// fork (takeOwnership) rather than sign other blocks at the same lengths.
		f.log.Warn("feed: a log record is damaged, not torn; cutting the log there", "dir", f.dir, "offset", end)
		f.lostShared = true
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
			if errors.Is(bad, ErrStorage) {
				// The disk failed to answer: nothing is known to be missing, so the
				// log is kept as it is and opening fails (a later Open reads again).
				return bad
			}
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
		if err != nil && f.t.nodes.err != nil {
			// A failed read of the tree file shows as a missing node: say what it is.
			return fmt.Errorf("feed: read tree: %w: %w", ErrStorage, f.t.nodes.err)
		}
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
		return fmt.Errorf("feed: read tree: %w: %w", ErrStorage, f.t.nodes.err)
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
		found := false
		for j := 0; j+blockRecordSize <= n; j += blockRecordSize {
			rec := buf[j : j+blockRecordSize]
			if l := leU32(rec[8:]); l != 0 {
				if i := uint64(off+int64(j)) / blockRecordSize; i >= maxLength {
					return fmt.Errorf("feed: %w: the blocks file holds block %d, past the longest feed", ErrCorrupt, i)
				}
				f.setBlock(uint64(off+int64(j))/blockRecordSize, blockEntry{offset: leU64(rec), length: l - 1, crc: leU32(rec[12:])})
				found = true
			}
		}
		off += int64(n - n%blockRecordSize)
		if err == io.EOF || n < len(buf) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("feed: read blocks: %w", err)
		}
		if !found {
			// A sparse reader's file has holes (up to 64 GiB of them): skip to the next data.
			next, ok := nextData(f.fs.blocks, off)
			if !ok {
				return nil
			}
			off = max(off, next-next%blockRecordSize)
		}
	}
}

// checkBlocks reads back the blocks a log record references and checks their
// checksums (used when replaying a log after a crash).
func (f *Feed) checkBlocks(r *record) error {
	for _, b := range r.blocks {
		buf := make([]byte, b.entry.length)
		if n, err := f.fs.data.ReadAt(buf, int64(b.entry.offset)); n != len(buf) {
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("feed: read block %d: %w: %w", b.index, ErrStorage, err)
			}
			return fmt.Errorf("block %d: %d of %d bytes on disk", b.index, n, len(buf))
		}
		if crc32.Checksum(buf, crcTable) != b.entry.crc {
			return fmt.Errorf("block %d: checksum mismatch", b.index)
		}
	}
	return nil
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
