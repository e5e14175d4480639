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
			return fmt.Errorf("feed: write block: %w: %w", ErrStorage, err)
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
		return fmt.Errorf("feed: write log: %w: %w", ErrStorage, err)
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
