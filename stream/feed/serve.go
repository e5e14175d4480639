package feed

import (
	"context"
	"fmt"
)

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
	// blockWait: the block may not leave before the log up to seq is synced (an encrypted
	// feed's new block under SyncBeforeShare, from ProofPendingDeferred); BlockDurable waits.
	blockWait bool
}

// BlockDurable waits, until ctx ends, for the disk to have what a proof from
// ProofPendingDeferred carries, when its block may not leave before (an encrypted feed's new
// block under SyncBeforeShare); it returns nil at once otherwise. It may be called again after
// ctx ended: the sync goes on, on a goroutine the feed owns and Close waits for, and a later
// call waits for the same sync.
func (pp *PendingProof) BlockDurable(ctx context.Context) error {
	if !pp.blockWait {
		return nil
	}
	return pp.f.syncToContext(ctx, pp.seq)
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

// SignatureContext is Signature that stops waiting when ctx ends (a disk whose sync hangs
// must not hold the caller): the sync itself goes on, on a goroutine the feed owns and Close
// waits for, and a later call waits for the same sync.
func (pp *PendingProof) SignatureContext(ctx context.Context) ([]byte, error) {
	if pp.Durable() {
		return pp.sig, nil
	}
	if err := pp.f.syncToContext(ctx, pp.seq); err != nil {
		return nil, err
	}
	return pp.sig, nil
}

// syncToContext is syncTo that stops waiting when ctx ends: the sync itself goes on, on a
// goroutine the feed owns and Close waits for (syncWaiter), and a later call waits for the
// same sync.
func (f *Feed) syncToContext(ctx context.Context, seq uint64) error {
	f.mu.Lock()
	done := f.syncedSeq >= seq
	f.mu.Unlock()
	if done {
		return nil
	}
	w, err := f.syncWaiter(seq)
	if err != nil {
		return err
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("feed: waiting for the disk to sync: %w", ctx.Err())
	}
	return w.err
}

// syncWait is a sync started for SignatureContext's callers; done is closed when it ended
// (err tells how).
type syncWait struct {
	seq  uint64
	done chan struct{}
	err  error
}

// syncWaiter returns a sync that covers seq: the one already started for waiters when it
// does, else a new one on its own goroutine (waited for by Close).
func (f *Feed) syncWaiter(seq uint64) (*syncWait, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.waiting; w != nil && w.seq >= seq {
		return w, nil
	}
	if f.closed {
		return nil, fmt.Errorf("feed: %w", ErrClosed)
	}
	w := &syncWait{seq: max(seq, f.seq), done: make(chan struct{})}
	f.waiting = w
	f.syncWG.Add(1)
	go func() {
		defer f.syncWG.Done()
		w.err = f.syncTo(w.seq)
		f.mu.Lock()
		if f.waiting == w {
			f.waiting = nil
		}
		f.mu.Unlock()
		close(w.done)
	}()
	return w, nil
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
	return f.proofPending(req, false)
}

// ProofPendingDeferred is ProofPending that returns at once: an encrypted feed's new block
// under SyncBeforeShare, which ProofPending holds until the disk has it, must wait for
// BlockDurable before it leaves. The caller bounds that wait with a context (a disk whose
// sync hangs must not hold it) and waits for the proof's one sync, not a newer one.
func (f *Feed) ProofPendingDeferred(req Request) (*PendingProof, error) {
	return f.proofPending(req, true)
}

// proofPending is ProofPending; deferBlock leaves the wait for an encrypted block to
// BlockDurable.
func (f *Feed) proofPending(req Request, deferBlock bool) (*PendingProof, error) {
	p, length, seq, err := f.proof(req)
	if err != nil {
		return nil, err
	}
	wait := false
	if f.meta.encrypted && p.Block != nil && f.syncBeforeSharing() {
		if deferBlock {
			wait = true
		} else if err := f.syncTo(seq); err != nil {
			return nil, err
		}
	}
	pp := &PendingProof{Proof: p, Length: length, f: f, seq: seq, blockWait: wait}
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
