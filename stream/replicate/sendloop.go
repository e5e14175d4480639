package replicate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// sendLoop is the only writer of the stream.
type sendLoop struct {
	ss      *sellerSession
	w       *wire.Writer
	last    uint64 // bytes written when last counted
	vlen    uint64 // the viewer's verified length as far as this session knows
	lenSet  bool
	rng     *wire.Range // range being streamed
	next    uint64      // its next block
	prev    uint64      // the block the range sent last
	chain   bool        // prev was sent by this range, so the viewer holds its path
	started bool        // the first access decision was sent
	// recent holds the blocks pushed live most recently, so that a range asked for at the
	// same time does not send them twice.
	recent [256]uint64
	nrec   int
	// pending are the data messages in the buffer, reported (stats, Gate.Delivered) once
	// they reach the stream.
	pending  []delivery
	deadline time.Time // the stream's write deadline as last set
	// keep ticks every KeepAlive; a tick that finds nothing written since the one before
	// sends a status (real time, like the stream's deadlines).
	keep     *time.Timer
	keepMark uint64
}

func (l *sendLoop) pushed(i uint64) bool {
	for _, j := range l.recent[:min(l.nrec, len(l.recent))] {
		if j == i+1 {
			return true
		}
	}
	return false
}

func (l *sendLoop) remember(i uint64) {
	l.recent[l.nrec%len(l.recent)] = i + 1
	l.nrec++
}

func (ss *sellerSession) sendLoop() error {
	l := &sendLoop{ss: ss, w: wire.NewWriter(ss.str), keep: time.NewTimer(ss.s.cfg.KeepAlive)}
	defer l.keep.Stop()
	// Tell the viewer the signed length at once: the live flow and a late joiner's first
	// requests start from it.
	if err := l.status(); err != nil {
		return err
	}
	for {
		// Control messages (access, app) go first, then the live edge, then requests.
		select {
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		case it := <-ss.ctrl:
			if err := l.control(it); err != nil {
				return err
			}
			continue
		default:
		}
		if !l.started {
			// Nothing but control messages before the gate has answered once.
			if err := l.flush(); err != nil {
				return err
			}
			select {
			case <-ss.ctx.Done():
				return ss.ctx.Err()
			case it := <-ss.ctrl:
				if err := l.control(it); err != nil {
					return err
				}
			case <-l.keep.C:
				if err := l.keepAlive(); err != nil {
					return err
				}
			}
			continue
		}
		select {
		case <-ss.live:
			if err := l.pushLive(); err != nil {
				return err
			}
			continue
		default:
		}
		if l.rng == nil {
			select {
			case it := <-ss.reqs:
				if err := l.request(it); err != nil {
					return err
				}
				continue
			default:
			}
		}
		if l.rng != nil {
			if err := l.rangeStep(); err != nil {
				return err
			}
			continue
		}
		if err := l.flush(); err != nil {
			return err
		}
		select {
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		case it := <-ss.ctrl:
			if err := l.control(it); err != nil {
				return err
			}
		case <-ss.live:
			if err := l.pushLive(); err != nil {
				return err
			}
		case it := <-ss.reqs:
			if err := l.request(it); err != nil {
				return err
			}
		case <-l.keep.C:
			if err := l.keepAlive(); err != nil {
				return err
			}
		}
	}
}

// DefaultKeepAlive is SellerConfig.KeepAlive's default.
const DefaultKeepAlive = 10 * time.Second

// keepAlive runs on each tick of l.keep: when nothing has been written since the last tick, a
// status goes out, so the viewer hears from the seller at least every 2 × KeepAlive.
func (l *sendLoop) keepAlive() error {
	if l.w.BytesWritten() == l.keepMark {
		if err := l.status(); err != nil {
			return err
		}
	}
	l.keepMark = l.w.BytesWritten()
	l.keep.Reset(l.ss.s.cfg.KeepAlive)
	return nil
}

// frame writes a control frame (status, access, no-data, app): it may go out even after a
// viewer's deadline, but not the data before it in the buffer, which writing it may flush.
func (l *sendLoop) frame(t wire.Type, fill func([]byte) ([]byte, error)) error {
	data := len(l.pending) > 0
	if data && !l.ss.allowed() {
		return errDeadline
	}
	l.arm(data)
	err := l.w.Frame(t, fill)
	l.settle()
	return err
}

// settle counts what has reached the stream since it last looked: bytes, and the data
// messages whose last byte left the buffer. Only then is the gate told of their blocks
// (billing), so a connection that drops with blocks in the buffer is not billed for them.
func (l *sendLoop) settle() {
	out := l.w.BytesWritten() - uint64(l.w.Buffered())
	if out <= l.last {
		return
	}
	c := l.ss.c
	c.sent.Add(out - l.last)
	l.last = out
	n := 0
	for _, d := range l.pending {
		if d.end > out {
			break
		}
		n++
		if d.proof {
			c.proofs.Add(1)
		}
		if d.block {
			l.ss.took.Store(l.ss.s.cfg.Clock.Now().UnixNano())
			c.blocks.Add(1)
			c.blockBytes.Add(uint64(d.size))
			l.ss.s.cfg.Gate.Delivered(l.ss.peer, d.index, d.size)
		}
	}
	l.pending = append(l.pending[:0], l.pending[n:]...)
}

// errDeadline ends a session whose buffer holds data written before the viewer's deadline
// that has passed since: those bytes may not leave, and a frame cannot be taken back.
var errDeadline = errors.New("the viewer's paid time ran out with blocks still in the send buffer")

func (l *sendLoop) flush() error {
	if l.w.Buffered() == 0 {
		return nil
	}
	data := len(l.pending) > 0
	if data && !l.ss.allowed() {
		return errDeadline
	}
	l.arm(data)
	err := l.w.Flush()
	l.settle()
	return err
}

const defaultStallTimeout = 30 * time.Second

// arm sets the stream's write deadline before bytes may reach it: StallTimeout from now, and
// for data under a timed allowance no later than the viewer's deadline (converted from the
// seller's clock to the real one), so that a write blocked on flow control cannot deliver
// blocks after it. The deadline is set again only when it moves earlier or by more than a
// few seconds.
func (l *sendLoop) arm(data bool) {
	str := l.ss.str
	if str == nil {
		return
	}
	now := time.Now()
	d := now.Add(l.ss.s.cfg.StallTimeout)
	if data {
		l.ss.mu.Lock()
		a := l.ss.allow
		l.ss.mu.Unlock()
		if !a.Free && !a.Until.IsZero() {
			if u := now.Add(a.Until.Sub(l.ss.s.cfg.Clock.Now())); u.Before(d) {
				d = u
			}
		}
	}
	if l.deadline.IsZero() || d.Before(l.deadline) || d.Sub(l.deadline) > l.ss.s.cfg.StallTimeout/6 {
		_ = str.SetWriteDeadline(d)
		l.deadline = d
	}
}

func (l *sendLoop) status() error {
	h := l.ss.s.cfg.Feed.Head()
	st := wire.Status{Fork: h.Fork, Length: h.Length, SyncPoint: h.SyncPoint}
	if h.HasSyncPoint {
		st.Flags |= wire.StatusHasSyncPoint
	}
	if err := l.frame(wire.TStatus, st.AppendBinary); err != nil {
		return err
	}
	return l.flush()
}

func (l *sendLoop) control(it item) error {
	var err error
	switch {
	case it.access != nil:
		l.started = true
		err = l.frame(wire.TAccess, it.access.AppendBinary)
		if err == nil && it.access.State == wire.Refused {
			// Whatever was being streamed stops here; the viewer asks again after a top-up.
			if l.rng != nil {
				err = l.noData(l.rng.ID, it.access.Reason)
				l.rng = nil
			}
		}
	case it.app != nil:
		err = l.frame(wire.TApp, func(b []byte) ([]byte, error) { return append(b, it.app...), nil })
	}
	if err != nil {
		return err
	}
	if err := l.flush(); err != nil {
		return err
	}
	if it.last {
		// Nothing more goes out: the viewer reads to the end and hangs up, which ends the
		// session (its read loop); until then this loop waits.
		_ = l.ss.str.CloseWrite()
		<-l.ss.ctx.Done()
		return l.ss.ctx.Err()
	}
	return nil
}

// viewerLength is the viewer's verified length: what this session last upgraded it to, or
// what it said in its status.
func (l *sendLoop) viewerLength() uint64 {
	if !l.lenSet {
		l.ss.mu.Lock()
		if l.ss.hinted {
			l.vlen, l.lenSet = l.ss.vlenHint, true
		}
		l.ss.mu.Unlock()
	}
	return l.vlen
}

func (l *sendLoop) noData(id uint64, reason string) error {
	return l.frame(wire.TNoData, wire.NoData{ID: id, Reason: reason}.AppendBinary)
}

func (l *sendLoop) refusal() string {
	l.ss.mu.Lock()
	defer l.ss.mu.Unlock()
	if !l.ss.allow.Until.IsZero() {
		return reasonExpired
	}
	return reasonNoTime
}

// send makes the proof for req and writes it, if the viewer may have it. After a request
// with an upgrade the viewer's length is the signed length the proof reached (the feed may
// have grown since the caller looked at it). A proof whose upgrade's signature the disk has
// not synced yet waits for it as waitDisk does (control messages go out meanwhile, a refusal
// ends the wait): it returns false when the viewer was refused meanwhile (and told).
func (l *sendLoop) send(id uint64, req feed.Request) (bool, error) {
	if !l.ss.allowed() {
		return false, l.noData(id, l.refusal())
	}
	wasRange := id != 0 && l.rng != nil && l.rng.ID == id
	var (
		e       *cachedProof
		refused bool
		err     error
	)
	if id == 0 {
		e, refused, err = l.shared(req)
	} else {
		e = &cachedProof{}
		refused, err = l.makeProof(e, req)
	}
	if err != nil {
		return false, err
	}
	if refused {
		return false, l.refusedWhileWaiting(id, wasRange)
	}
	if e.err != nil {
		return false, l.fault(id, faultProof, e.err)
	}
	if wasRange && l.rng == nil {
		return false, nil // refused (and answered) while the proof waited for the disk
	}
	return l.sendProof(id, e, wasRange)
}

// sendProof writes e's proof (made for request id) as a data message, with its signature
// once the disk has what it signs.
func (l *sendLoop) sendProof(id uint64, e *cachedProof, wasRange bool) (bool, error) {
	sig, ok, err := l.signatureOf(id, e.pending, wasRange)
	if err != nil || !ok {
		return false, err
	}
	// The deadline may have passed while the proof was made.
	if !l.ss.allowed() {
		return false, l.noData(id, l.refusal())
	}
	if id == 0 {
		enc, err := l.ss.s.cache.signed(e, sig)
		if err != nil {
			return false, l.fault(id, faultProof, err)
		}
		l.arm(true)
		var hdr [binary.MaxVarintLen64]byte
		err = l.w.FrameParts(wire.TData, binary.AppendUvarint(hdr[:0], id), enc)
		if err != nil {
			return false, err
		}
	} else {
		p := withSignature(e.proof, sig)
		l.arm(true)
		err := l.w.Frame(wire.TData, func(b []byte) ([]byte, error) {
			return wire.AppendTagged(b, id, p.AppendBinary)
		})
		if err != nil {
			return false, err
		}
	}
	d := delivery{end: l.w.BytesWritten(), proof: true}
	if e.block != nil {
		d.block, d.index, d.size = true, e.block.Index, len(e.block.Value)
	}
	l.pending = append(l.pending, d)
	l.settle()
	if e.pending != nil { // the request had an upgrade
		l.vlen, l.lenSet = e.length, true
	}
	if id == 0 && e.block != nil {
		l.remember(e.block.Index)
	}
	return true, nil
}

// signatureOf returns pp's signature (nil and ok for a proof that needs no wait), waiting for
// the disk as waitDisk does. It returns !ok when the viewer was refused meanwhile, or when
// the sync failed (the viewer was told of request id's fault), and an error that ends the
// session.
func (l *sendLoop) signatureOf(id uint64, pp *feed.PendingProof, wasRange bool) ([]byte, bool, error) {
	if pp == nil {
		return nil, true, nil
	}
	if pp.Durable() {
		sig, err := pp.SignatureContext(context.Background()) // returns at once
		if err != nil {
			return nil, false, l.fault(id, faultSync, err)
		}
		return sig, true, nil
	}
	var sig []byte
	var serr error
	refused, err := l.waitDisk(func(ctx context.Context) bool {
		sig, serr = pp.SignatureContext(ctx)
		return serr == nil || ctx.Err() == nil
	})
	switch {
	case err != nil:
		return nil, false, err
	case refused:
		return nil, false, l.refusedWhileWaiting(id, wasRange)
	case serr != nil:
		return nil, false, l.fault(id, faultSync, serr)
	case wasRange && l.rng == nil:
		// The range was refused (and answered) while the disk synced, then allowed again:
		// the viewer asks again.
		return nil, false, nil
	}
	return sig, true, nil
}

// refusedWhileWaiting answers request id, which the viewer was refused while the send loop
// waited for the disk: a live push (id 0) needs no answer, a range the refusal ended was
// answered with it.
func (l *sendLoop) refusedWhileWaiting(id uint64, wasRange bool) error {
	if id == 0 || (wasRange && l.rng == nil) {
		return nil
	}
	return l.noData(id, l.refusal())
}

// pendingDeferrer is the part of a SellerFeed whose ProofPending itself may wait for the
// disk: an encrypted *feed.Feed under SyncBeforeShare holds a new block until it is durable.
// The send loop asks such a feed ProofPendingDeferred instead and waits for the block's sync
// itself (BlockDurable), so that the wait is bounded and is for that one sync.
type pendingDeferrer interface {
	Encrypted() bool
	ProofPendingDeferred(feed.Request) (*feed.PendingProof, error)
}

// makeProof makes the proof for req into e (e.err when the feed could not), without waiting
// for the disk's sync of its signature: a request with an upgrade is asked of ProofPending,
// which holds the signature back until the disk has what it signs (e.pending), one without
// of ProofLength, which does not wait. An encrypted feed's ProofPending waits for the disk to
// let a new block out: that wait is waitDisk's (refused, or an error that ends the session).
func (l *sendLoop) makeProof(e *cachedProof, req feed.Request) (refused bool, err error) {
	f := l.ss.s.cfg.Feed
	if req.Upgrade == nil {
		var p *feed.Proof
		if p, e.length, e.err = f.ProofLength(req); e.err == nil {
			e.proof, e.block = p, p.Block
		}
		return false, nil
	}
	var pp *feed.PendingProof
	if pc, ok := f.(pendingDeferrer); ok && pc.Encrypted() {
		// The proof is made once; the polls wait for its own sync (a proof made again at
		// each poll would chase the newest append's sync and, on a disk slower than the
		// appends, never catch one).
		if pp, e.err = pc.ProofPendingDeferred(req); e.err == nil {
			var werr error
			refused, err = l.waitDisk(func(ctx context.Context) bool {
				werr = pp.BlockDurable(ctx)
				return werr == nil || ctx.Err() == nil
			})
			if refused || err != nil {
				return refused, err
			}
			e.err = werr
		}
	} else {
		pp, e.err = f.ProofPending(req)
	}
	if e.err == nil {
		e.proof, e.pending, e.block, e.length = pp.Proof, pp, pp.Proof.Block, pp.Length
	}
	return false, nil
}

// errAbandoned marks a shared proof whose maker stopped waiting for the disk (its session
// ended, or its viewer was refused meanwhile): a session that waited for it makes it again.
var errAbandoned = errors.New("the proof's maker stopped waiting for the disk")

// shared returns the proof cache's entry for req: made by this session when it asks first,
// else made by another session and waited for (as waitDisk waits). The entry's signature may
// still wait for the disk.
func (l *sendLoop) shared(req feed.Request) (*cachedProof, bool, error) {
	c := &l.ss.s.cache
	k := keyOf(req)
	for {
		e, mine := c.lookup(k)
		if mine {
			refused, err := l.makeProof(e, req)
			if refused || err != nil {
				e.err = errAbandoned // whatever the last poll's error: the others make it again
			}
			if e.err == nil && e.pending != nil && !e.pending.Durable() {
				// Early data: the block and proof without the signature.
				e.enc, e.err = e.proof.AppendBinary(nil)
			}
			if e.err != nil {
				c.drop(e)
			} else {
				c.made(e)
			}
			close(e.ready)
			return e, refused, err
		}
		select {
		case <-e.ready:
		default:
			refused, err := l.waitDisk(func(ctx context.Context) bool {
				select {
				case <-e.ready:
					return true
				case <-ctx.Done():
					return false
				}
			})
			if refused || err != nil {
				return nil, refused, err
			}
		}
		if !errors.Is(e.err, errAbandoned) {
			return e, false, nil
		}
	}
}

// sendEarly sends a live push as early data: the block and proof at once, without the
// signature, then the signature as soon as the feed has synced the state it signs. The block
// crosses the network while the seller's disk syncs, and the viewer verifies it on the
// signature's arrival; a signature never leaves before the disk has what it signs. When the
// sync is already done (a viewer served late) it is an ordinary push.
func (l *sendLoop) sendEarly(req feed.Request) (bool, error) {
	ss := l.ss
	if !ss.allowed() {
		return false, l.noData(0, l.refusal())
	}
	e, refused, err := l.shared(req)
	if err != nil || refused {
		return false, err
	}
	if e.err != nil {
		return false, l.fault(0, faultProof, e.err)
	}
	if e.pending == nil || e.block == nil || e.pending.Durable() {
		return l.sendProof(0, e, false)
	}
	if !ss.allowed() {
		return false, l.noData(0, l.refusal())
	}
	l.arm(true)
	if err := l.w.FrameParts(wire.TEarly, nil, e.enc); err != nil {
		return false, err
	}
	// The block's bytes are billed once they reach the stream, whether or not the signature
	// follows (a viewer can keep bytes it could not verify).
	l.pending = append(l.pending, delivery{end: l.w.BytesWritten(), block: true, index: e.block.Index, size: len(e.block.Value)})
	if err := l.flush(); err != nil {
		return false, err
	}
	// The send loop waits for the disk here: a sync of a few milliseconds, bounded (a hung
	// disk holds neither the session's control messages nor Close).
	sig, ok, err := l.signatureOf(0, e.pending, false)
	if err != nil || !ok {
		return false, err // refused: the refusal went out while the disk synced
	}
	// The deadline may have passed during the sync: then the block stays unverifiable.
	if !ss.allowed() {
		return false, l.noData(0, l.refusal())
	}
	l.arm(true)
	if err := l.w.Frame(wire.TSignature, wire.Signature{Fork: e.proof.Fork, Length: e.length, Sig: sig}.AppendBinary); err != nil {
		return false, err
	}
	l.pending = append(l.pending, delivery{end: l.w.BytesWritten(), proof: true})
	l.settle()
	l.vlen, l.lenSet = e.length, true
	l.remember(e.block.Index)
	return true, nil
}

// Faults on the seller's side are told to the viewer as a code and a fixed sentence; the
// error itself (which may name local paths or disk errors) goes only to the seller's log,
// under the same code and number.
const (
	faultProof = "proof" // the feed could not make a proof
	faultSync  = "sync"  // the disk sync an early push's signature waits for failed

	reasonFault = "The seller could not answer this request because of a problem on its side; it has been logged there"
	// reasonNotHere answers a request for what this feed does not have (a block past its
	// length, a tree node past its tree, a block a relay does not hold): the viewer's
	// doing, or a relay's normal gap, not a fault of the seller's. Viewers recognise it by
	// this exact text (NoData has no code field): it is part of the protocol, and a change
	// to it needs a new protocol version.
	reasonNotHere = "This request asks for blocks or tree nodes that are not held here"
)

// fault tells the viewer that request id failed on the seller's side, and logs why. A request
// for what is not here is answered with reasonNotHere and logged at debug level only: any
// admitted viewer can send those at full speed, and each was an error line in the seller's
// log, worded as the seller's own problem.
//
// A writer (the origin, whose feed signs) holds every block and node it signed, so one it
// lacks there is its storage's fault: still answered as not here (nobody else has it either),
// but logged as an error.
func (l *sendLoop) fault(id uint64, code string, err error) error {
	lacking := errors.Is(err, feed.ErrNotStored) || errors.Is(err, feed.ErrNotAvailable)
	if errors.Is(err, feed.ErrInvalidRequest) || lacking {
		if w, ok := l.ss.s.cfg.Feed.(interface{ Writable() bool }); lacking && ok && w.Writable() {
			l.ss.s.log.Error("the stream's own storage lacks part of what it signed; it may be damaged", "viewer", l.ss.peer, "request", id, "err", err)
		} else {
			l.ss.s.log.Debug("a viewer asked for what is not here", "viewer", l.ss.peer, "request", id, "err", err)
		}
		return l.noData(id, reasonNotHere)
	}
	n := l.ss.s.faults.Add(1)
	l.ss.s.log.Error("cannot answer a viewer's request", "viewer", l.ss.peer, "request", id, "code", code, "fault", n, "err", err)
	return l.noData(id, fmt.Sprintf("%s (code %s-%d).", reasonFault, code, n))
}

// defaultSyncTimeout is SellerConfig.SyncTimeout's default; controlPoll is how often a send
// loop waiting for the disk looks for control messages to send meanwhile.
const (
	defaultSyncTimeout = 10 * time.Second
	controlPoll        = 50 * time.Millisecond
)

var errSyncTimeout = errors.New("the seller's disk did not sync in time to share what it signs")

// waitDisk is how the send loop waits for the disk (a signature to share, an encrypted
// block to let out, or another session making the same proof meanwhile): until wait reports
// done, the session ends, or SyncTimeout passes (errSyncTimeout, which ends the session: the
// viewer comes back in a new one). What is buffered goes out first; meanwhile the session's
// control messages go out, and a refusal among them (or the viewer's deadline) ends the wait
// (refused). wait is called in slices of controlPoll: it returns false when its ctx ended
// before it was done.
func (l *sendLoop) waitDisk(wait func(ctx context.Context) (done bool)) (refused bool, err error) {
	ss := l.ss
	if err := l.flush(); err != nil {
		return false, err
	}
	sctx, limit := ss.ctx, ss.s.cfg.SyncTimeout
	if sctx == nil { // a session made by hand (tests)
		sctx = context.Background()
	}
	if limit <= 0 {
		limit = defaultSyncTimeout
	}
	ctx, cancel := context.WithTimeout(sctx, limit)
	defer cancel()
	for {
		wctx, wcancel := context.WithTimeout(ctx, controlPoll)
		done := wait(wctx)
		wcancel()
		switch {
		case done:
			return false, nil
		case sctx.Err() != nil:
			return false, sctx.Err()
		case ctx.Err() != nil:
			return false, fmt.Errorf("%w (%v)", errSyncTimeout, limit)
		}
		for {
			select {
			case it := <-ss.ctrl:
				if err := l.control(it); err != nil {
					return false, err
				}
				continue
			default:
			}
			break
		}
		if !ss.allowed() {
			return true, nil
		}
	}
}

// delivery is a data message written to the buffer and not yet to the stream.
type delivery struct {
	end   uint64 // BytesWritten after its last byte
	block bool   // carries block index's size bytes: billed once they reached the stream
	index uint64
	size  int
	proof bool // completes a proof (a data message, or the signature after early data)
}

// request answers one request or starts streaming a range.
func (l *sendLoop) request(it item) error {
	if it.rng != nil {
		if !l.ss.allowed() {
			return l.noData(it.id, l.refusal())
		}
		l.rng, l.next, l.chain = it.rng, it.rng.Start, false
		if !l.lenSet && it.rng.FromLength > 0 {
			l.vlen, l.lenSet = it.rng.FromLength, true
		}
		return nil
	}
	_, err := l.send(it.id, *it.req)
	return err
}

// rangeStep sends the next block of the range being streamed (first the upgrade that proves
// it, when the viewer's length does not cover it).
func (l *sendLoop) rangeStep() error {
	f := l.ss.s.cfg.Feed
	r := l.rng
	vlen := l.viewerLength()
	if r.End > vlen {
		n := f.Length()
		if n > vlen {
			ok, err := l.send(r.ID, feed.Request{Fork: f.Head().Fork, Upgrade: &feed.UpgradeRequest{Start: vlen, Length: n - vlen},
				Manifest: vlen == 0})
			if err != nil || !ok {
				l.rng = nil
				return err
			}
			vlen = l.vlen
		}
		if r.End > vlen {
			r.End = vlen // the rest does not exist yet
		}
	}
	if l.next >= r.End {
		l.rng = nil
		return l.noData(r.ID, "") // end of range
	}
	i := l.next
	l.next++
	if l.pushed(i) {
		l.chain = false
		return nil // already pushed live in this session
	}
	// The first block of a run carries its path up to its root. Each next block in order
	// needs only the levels below the node that the previous blocks' paths left with the
	// viewer (Hypercore's missingNodes for a sequential download): trailing zeros of i.
	nodes := flattree.LevelsToRoot(i, vlen)
	if l.chain && i > 0 && i == l.prev+1 {
		nodes = min(nodes, uint64(bits.TrailingZeros64(i)))
	}
	ok, err := l.send(r.ID, feed.Request{Block: &feed.BlockRequest{Index: i, Nodes: nodes}})
	l.prev, l.chain = i, ok && err == nil
	if err != nil || !ok {
		l.rng = nil
	}
	return err
}

// pushLive sends a live viewer what appeared since its length: every block when it is at most
// MaxLiveLag behind, else (and to a viewer that holds nothing) the newest block and the newest
// sync point (skip ahead).
func (l *sendLoop) pushLive() error {
	ss := l.ss
	ss.mu.Lock()
	follow := ss.follow
	ss.mu.Unlock()
	if !follow || !ss.allowed() {
		return nil
	}
	head := ss.s.currentHead()
	vlen := l.viewerLength()
	n := head.Length
	if n <= vlen {
		return nil
	}
	// Announce the new signed length with the newest sync point once the proofs below are
	// written (the status goes after them, so the viewer has verified what it announces).
	defer func() {
		if l.vlen > vlen {
			st := wire.Status{Fork: head.Fork, Length: min(head.Length, l.vlen), SyncPoint: head.SyncPoint}
			if head.HasSyncPoint && head.SyncPoint < st.Length {
				st.Flags |= wire.StatusHasSyncPoint
			} else {
				st.SyncPoint = 0
			}
			_ = l.frame(wire.TStatus, st.AppendBinary)
		}
	}()
	// A viewer at length 0 may know only the feed key from the card: in manifest mode the
	// first upgrade carries the manifest (Manifest is ignored by compat-mode feeds).
	// A viewer that holds nothing starts at the newest sync point, however young the feed:
	// the blocks before it are not what a live viewer watches, and a paid viewer would be
	// billed for them (catching up from 0 is only for a viewer continuing what it holds).
	holdsNothing := vlen == 0 && head.HasSyncPoint && head.SyncPoint > 0
	if n-vlen <= ss.s.cfg.MaxLiveLag && !holdsNothing {
		// Block vlen with the upgrade to the newest length (the viewer holds the peaks of
		// vlen, so one block needs no extra hashes), then the rest with their paths.
		req := feed.Request{Fork: head.Fork, Block: &feed.BlockRequest{Index: vlen},
			Upgrade: &feed.UpgradeRequest{Start: vlen, Length: n - vlen}, Manifest: vlen == 0}
		ss.mu.Lock()
		early := ss.early
		ss.mu.Unlock()
		var ok bool
		var err error
		if early {
			ok, err = l.sendEarly(req)
		} else {
			ok, err = l.send(0, req)
		}
		if err != nil || !ok {
			return err
		}
		for i := vlen + 1; i < l.vlen; i++ {
			if ok, err := l.send(0, feed.Request{Block: &feed.BlockRequest{Index: i, Nodes: flattree.LevelsToRoot(i, l.vlen)}}); err != nil || !ok {
				return err
			}
		}
		return nil
	}
	// Skip ahead: the newest block proves the new length; the newest sync point lets the
	// viewer start playing from there. A feed without sync points gives nothing to start
	// from, so the viewer gets only the signed length and asks for what it wants.
	req := feed.Request{Fork: head.Fork, Upgrade: &feed.UpgradeRequest{Start: vlen, Length: n - vlen}, Manifest: vlen == 0}
	if head.HasSyncPoint {
		req.Block = &feed.BlockRequest{Index: n - 1}
	}
	ok, err := l.send(0, req)
	if err != nil || !ok {
		return err
	}
	sent := n - 1 // the newest block sent, if any
	if l.vlen > n {
		// The feed grew while the proof was made: the upgrade reached further than the head
		// looked at. Send the newest block and sync point of that length.
		if fresh := ss.s.cfg.Feed.Head(); fresh.Length == l.vlen {
			head = fresh
		}
		if head.HasSyncPoint && head.Length == l.vlen {
			sent = l.vlen - 1
			if ok, err := l.send(0, feed.Request{Block: &feed.BlockRequest{Index: sent, Nodes: flattree.LevelsToRoot(sent, l.vlen)}}); err != nil || !ok {
				return err
			}
		}
	}
	if head.HasSyncPoint && head.SyncPoint < l.vlen && head.SyncPoint != sent && head.SyncPoint >= vlen {
		_, err = l.send(0, feed.Request{Block: &feed.BlockRequest{Index: head.SyncPoint, Nodes: flattree.LevelsToRoot(head.SyncPoint, l.vlen)}})
	}
	return err
}
