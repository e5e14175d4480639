package feed

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/internal/faults"
)

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
	if uint64(len(blocks)) > maxLength-start {
		return Head{}, fmt.Errorf("feed: %d blocks after %d: %w (%d)", len(blocks), start, ErrFull, uint64(maxLength))
	}
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
		return Head{}, fmt.Errorf("feed: write blocks: %w: %w", ErrStorage, err)
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
		return Head{}, fmt.Errorf("feed: write log: %w: %w", ErrStorage, err)
	}
	f.t.roots = nt.roots
	f.apply(r)
	if f.dur == SyncEveryAppend {
		if err := f.syncFilesLocked(); err != nil {
			return Head{}, err
		}
	}
	if err := f.maybeCheckpoint(); err != nil {
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

// syncFilesLocked syncs the data and log files with f.mu held (SyncEveryAppend, and a
// takeover). A failure fails the feed (see syncFile).
func (f *Feed) syncFilesLocked() error {
	if err := f.syncFile(&f.dataSyncMu, f.fs.data); err != nil {
		f.fail(err)
		return fmt.Errorf("feed: sync data: %w: %w", ErrStorage, err)
	}
	if err := f.syncFile(&f.logSyncMu, f.fs.log); err != nil {
		f.fail(err)
		return fmt.Errorf("feed: sync log: %w: %w", ErrStorage, err)
	}
	f.syncedSeq, f.syncedLog = f.seq, f.fs.logSize
	return nil
}

// syncFile syncs file, one sync of it at a time (gate), and fails every sync of the feed
// after one failed. A failed sync is final: Linux reports a writeback error to one fsync
// only and marks the lost pages clean, so the next sync of the file returns nil over
// bytes the disk does not have. Two syncs of one file at once could share the error
// between them (one reports it, the other, a checkpoint's, succeeds), so they never
// run together, and the failure is recorded before the gate opens again.
func (f *Feed) syncFile(gate *sync.Mutex, file *os.File) error {
	gate.Lock()
	defer gate.Unlock()
	if p := f.syncErr.Load(); p != nil {
		return fmt.Errorf("an earlier sync failed: %w", *p)
	}
	if err := file.Sync(); err != nil {
		f.syncErr.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// fail marks the feed failed (f.mu held): memory and disk may differ, and every later call
// returns ErrStorage until it is reopened.
func (f *Feed) fail(err error) {
	if f.failed == nil {
		f.failed = err
	}
}

// Sync makes everything appended so far durable on disk.
func (f *Feed) Sync() error {
	f.mu.Lock()
	seq := f.seq
	f.mu.Unlock()
	return f.syncTo(seq)
}

// syncTo syncs the data and log files unless seq is already synced. Concurrent
// callers share one sync (group commit); appends go on meanwhile. A failed sync
// fails the feed: nothing it should have made durable is signed for a peer
// afterwards (see syncFile).
func (f *Feed) syncTo(seq uint64) error {
	f.mu.Lock()
	done := f.syncedSeq >= seq
	err := f.usable()
	f.mu.Unlock()
	if done {
		return nil
	}
	if err != nil {
		return err
	}
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	if f.syncedSeq >= seq {
		f.mu.Unlock()
		return nil
	}
	if err := f.usable(); err != nil {
		f.mu.Unlock()
		return err
	}
	target, logSize := f.seq, f.fs.logSize
	data, log := f.fs.data, f.fs.log
	f.mu.Unlock()
	faults.BeforeSync(f.dir)
	// Both files at once: the wait is one sync, not two. Their order does not
	// matter: a log record whose block bytes did not reach the disk is rolled
	// back on open, and nothing is shared before both syncs returned.
	dataErr := make(chan error, 1)
	go func() { dataErr <- f.syncFile(&f.dataSyncMu, data) }()
	lerr := f.syncFile(&f.logSyncMu, log)
	derr := <-dataErr
	f.mu.Lock()
	defer f.mu.Unlock()
	if derr != nil || lerr != nil {
		if f.closed && (errors.Is(derr, os.ErrClosed) || errors.Is(lerr, os.ErrClosed)) {
			// Close closed the files under the sync; its checkpoint synced them first.
			if f.syncedSeq >= seq {
				return nil
			}
			return fmt.Errorf("feed: %w", ErrClosed)
		}
		if derr != nil {
			f.fail(derr)
			return fmt.Errorf("feed: sync data: %w: %w", ErrStorage, derr)
		}
		f.fail(lerr)
		return fmt.Errorf("feed: sync log: %w: %w", ErrStorage, lerr)
	}
	if target > f.syncedSeq {
		f.syncedSeq, f.syncedLog = target, logSize
	}
	return nil
}

// maybeCheckpoint folds the log into the tree and blocks files when it is big.
func (f *Feed) maybeCheckpoint() error {
	if f.fs.logSize < checkpointBytes && f.fs.logRecords < checkpointCount && f.cpData < checkpointData {
		return nil
	}
	return f.checkpointLocked()
}

// checkpointLocked folds the log into the tree and blocks files. Any failure fails the
// feed (the files may be half written, and a failed sync is final, see syncFile).
func (f *Feed) checkpointLocked() error {
	if f.fs.logRecords == 0 && len(f.dirty) == 0 && len(f.dirtyBl) == 0 {
		return nil
	}
	if err := f.writeCheckpoint(); err != nil {
		f.fail(err)
		return err
	}
	f.fs.logSize, f.fs.logRecords = 0, 0
	clear(f.dirty)
	clear(f.dirtyBl)
	f.cpData = 0
	f.t.nodes.markClean()
	f.syncedSeq, f.syncedLog = f.seq, 0
	return nil
}

// writeCheckpoint writes a checkpoint, in an order that survives power loss at any point:
//
//  1. data is synced before any block entry is written: open trusts every entry in the
//     blocks file (only log records are checked against data on replay), so an entry must
//     never reach the disk before the bytes it points at, or a block would be reported
//     stored while every read of it fails, and a reader would never fetch it again;
//  2. the tree nodes and block entries are written and synced;
//  3. only then does the header slot not in use get the new checkpoint (synced);
//  4. and only then is the log truncated.
//
// Entries and nodes that reached the disk without the header name bytes that are on disk
// (step 1), and the log still holds what the old header lacks.
func (f *Feed) writeCheckpoint() error {
	if err := f.syncFile(&f.dataSyncMu, f.fs.data); err != nil {
		return fmt.Errorf("feed: checkpoint sync data: %w: %w", ErrStorage, err)
	}
	if err := writeRuns(f.fs.tree, f.dirty, nodeRecordSize, func(b []byte, n Node) { putNodeRecord(b, n) }); err != nil {
		return fmt.Errorf("feed: checkpoint tree: %w: %w", ErrStorage, err)
	}
	if err := writeRuns(f.fs.blocks, f.dirtyBl, blockRecordSize, putBlockRecord); err != nil {
		return fmt.Errorf("feed: checkpoint blocks: %w: %w", ErrStorage, err)
	}
	for _, file := range []*os.File{f.fs.tree, f.fs.blocks} {
		if err := file.Sync(); err != nil {
			return fmt.Errorf("feed: checkpoint sync %s: %w: %w", filepath.Base(file.Name()), ErrStorage, err)
		}
	}
	cp := &checkpoint{seq: f.seq, fork: f.t.fork, length: f.t.length, byteLength: f.t.byteLength, signature: f.t.signature, syncPoint: f.syncPt}
	if err := f.fs.writeHeader(cp); err != nil {
		return fmt.Errorf("feed: checkpoint header: %w: %w", ErrStorage, err)
	}
	if err := f.fs.log.Truncate(0); err != nil {
		return fmt.Errorf("feed: checkpoint log: %w: %w", ErrStorage, err)
	}
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
