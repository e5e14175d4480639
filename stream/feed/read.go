package feed

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
)

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
	// A damaged length is caught here, before readBlock allocates it: no block this
	// feed stored is longer than its maximum block size.
	if limit := max(uint64(f.maxBlock), f.meta.maxBlockSize); uint64(l-1) > limit {
		return blockEntry{}, fmt.Errorf("feed: block %d: %w (its entry says %d bytes, more than the feed's blocks hold, %d)", i, ErrCorrupt, l-1, limit)
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
		next, ok := f.present.next(start)
		if ok && next >= stop {
			start = next // skip the pages with no block stored at once
			f.mu.Unlock()
			continue
		}
		for i := start; ok && i < stop; i++ {
			if f.present.has(i) {
				have = append(have, i)
			}
		}
		f.mu.Unlock()
		if !ok {
			return
		}
		for _, i := range have {
			if !fn(i) {
				return
			}
		}
		start = stop
	}
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
			it := flattree.NewIterator(idx)
			l := it.LeftChild()
			ln, lok = f.t.nodes.get(l)
			rn, rok = f.t.nodes.get(l + it.Factor)
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
