package feed

import (
	"fmt"
	"hash/crc32"
)

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
			return fmt.Errorf("feed: store the signer: %w: %w", ErrStorage, err)
		}
		f.v = v
	}
	return f.storeLocked([]*verified{res}, res.signature)
}

// maxBatch caps the proofs VerifyBatch takes at once.
const maxBatch = 256

// VerifyBatch verifies proofs that arrived back to back, in order, against the
// head and nodes the ones before them proved, and stores them with one data write
// and one log record. Only the signature of the batch's last upgrade is checked:
// every upgrade's roots are hashed from the roots before it, so the last signed
// tree commits to every node and block the batch proves, and nothing is stored
// before that check. What it stores is what Verify on each would store, with one
// difference: a bad signature on an earlier upgrade is not noticed when a later
// one is good (everything stored is still vouched for by that later signature,
// and only its signature is stored). When any check fails, the batch is verified
// again one proof at a time, so what is stored and the error returned are
// Verify's own. It returns how many proofs were stored.
func (f *Feed) VerifyBatch(ps []*Proof) (int, error) {
	if len(ps) > maxBatch {
		return 0, fmt.Errorf("feed: a batch of %d proofs: at most %d", len(ps), maxBatch)
	}
	if len(ps) > 1 {
		if done, err := f.verifyBatch(ps); done {
			if err != nil {
				return 0, err
			}
			return len(ps), nil
		}
	}
	for i, p := range ps {
		if err := f.Verify(p); err != nil {
			return i, err
		}
	}
	return len(ps), nil
}

// verifyBatch stores ps when all verify; done is false when the batch has to be
// verified one proof at a time (a proof fails, or one carries a manifest, or the
// signer is not known yet).
func (f *Feed) verifyBatch(ps []*Proof) (done bool, err error) {
	last := -1
	for i, p := range ps {
		if p.Manifest != nil || (p.Block != nil && len(p.Block.Value) > f.maxBlock) {
			return false, nil
		}
		if p.Upgrade != nil {
			last = i
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.usable() != nil || f.ro || f.v == nil {
		return false, nil
	}
	view := &treeView{fork: f.t.fork, length: f.t.length, byteLength: f.t.byteLength, roots: f.t.roots, pending: map[uint64]Node{}}
	results := make([]*verified, len(ps))
	for i, p := range ps {
		res, err := f.t.verifyAt(view, p, f.v, i == last)
		if err != nil {
			return false, nil
		}
		results[i] = res
		for _, n := range res.nodes {
			view.pending[n.Index] = n
		}
		if res.upgraded {
			view.fork, view.length, view.byteLength, view.roots = res.fork, res.length, res.byteLength, res.roots
		}
	}
	var sig []byte
	if last >= 0 {
		// The checked signature is for the batch's final tree, whether the last
		// upgrade grew it or repeated the length an earlier one reached.
		sig = ps[last].Upgrade.Signature
	}
	return true, f.storeLocked(results, sig)
}

// storeLocked stores what verified proofs proved, in order, with one data write and
// one log record; signature signs the tree the last upgrade reached.
func (f *Feed) storeLocked(results []*verified, signature []byte) error {
	r := &record{seq: f.seq + 1, synced: f.syncedSeq}
	var seen map[uint64]bool
	if len(results) > 1 {
		seen = map[uint64]bool{}
	}
	var blocks [][]byte
	off := f.dataEnd
	var head *verified
	for _, res := range results {
		for _, n := range res.nodes {
			if !f.t.nodes.has(n.Index) && !seen[n.Index] {
				r.nodes = append(r.nodes, n)
				if seen != nil {
					seen[n.Index] = true
				}
			}
		}
		if b := res.block; b != nil && !f.present.has(b.Index) && !batchHas(r.blocks, b.Index) {
			blocks = append(blocks, b.Value)
			r.blocks = append(r.blocks, blockRef{index: b.Index, entry: blockEntry{offset: off, length: uint32(len(b.Value)), crc: crc32.Checksum(b.Value, crcTable)}})
			off += uint64(len(b.Value))
		}
		if res.upgraded {
			head = res
		}
	}
	if len(blocks) > 0 {
		if err := f.writeData(blocks, f.dataEnd, int(off-f.dataEnd)); err != nil {
			f.failed = err
			return fmt.Errorf("feed: write block: %w: %w", ErrStorage, err)
		}
	}
	if head != nil {
		r.upgraded, r.fork, r.length, r.byteLength, r.signature = true, head.fork, head.length, head.byteLength, append([]byte(nil), signature...)
	}
	if len(r.nodes) == 0 && len(r.blocks) == 0 && !r.upgraded {
		return nil // nothing new
	}
	if err := f.writeRecord(r); err != nil {
		f.failed = err
		return fmt.Errorf("feed: write log: %w: %w", ErrStorage, err)
	}
	f.apply(r)
	if head != nil {
		f.t.roots = head.roots
	}
	if err := f.maybeCheckpoint(); err != nil {
		return err // the checkpoint failed the feed
	}
	if head != nil {
		f.notify(f.headLocked())
	}
	return nil
}

// batchHas reports whether block i is among refs (a batch's, so a short list).
func batchHas(refs []blockRef, i uint64) bool {
	for _, r := range refs {
		if r.index == i {
			return true
		}
	}
	return false
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
