package onchain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/filecoin-project/go-clock"
)

// EventKind says what happened to a payment.
type EventKind uint8

// Event kinds.
const (
	// Seen: the payment is in the node's mempool (unconfirmed; it can still be replaced or
	// dropped), or came back there after a reorg disconnected its block.
	Seen EventKind = iota + 1
	// Confirmed: the payment is in the best chain with Confirmations ≥ 1.
	Confirmed
	// Gone: the payment is neither in the best chain nor in the mempool any more: it was
	// replaced (RBF), dropped, or its block was reorganised away and it did not come back.
	Gone
)

func (k EventKind) String() string {
	switch k {
	case Seen:
		return "seen"
	case Confirmed:
		return "confirmed"
	case Gone:
		return "gone"
	}
	return "?"
}

// Event reports a change in one output paying a watched address.
type Event struct {
	Kind          EventKind
	OutPoint      wire.OutPoint
	Address       string
	Sats          int64
	Confirmations int32
	Height        int32  // the block holding the payment, when Confirmed
	RBF           bool   // the transaction signals replaceability (BIP125)
	Reason        string // for Gone, and for Seen after a reorg
	At            time.Time
}

// Watcher watches a node for payments to addresses. Backends: NewPoller (JSON-RPC calls that
// Bitcoin Core and btcd both answer) and NewWebsocket (btcd notifications).
type Watcher interface {
	// Watch adds addresses. Call it before handing an address out; payments to it in blocks
	// not yet scanned are reported, and at start-up also those already in the mempool.
	Watch(addrs ...btcutil.Address) error
	// Run watches until ctx ends. Events go to the OnEvent callback, one at a time.
	Run(ctx context.Context) error
	// Height is the highest block whose payments have all been reported: every event for it
	// and the blocks below it has been passed to OnEvent. It moves up only when a scan has
	// completed (a scan that fails part-way, or finds the chain moving, exposes nothing), drops
	// to the fork when a reorganisation disconnects blocks above it, and is -1 before the first
	// scan completes. Persist it and start a later run at most one block above it (StartHeight):
	// no payment in the blocks up to it goes unreported.
	Height() int32
	// Resume hands over payments a previous run reported (OutPoint and Address set; Kind Seen,
	// or Confirmed with its Height): on its first scan the watcher reports each as Confirmed
	// if it is in the chain, Seen if it is back in the mempool, or Gone if it is in neither
	// (replaced, dropped or reorganised away while the app was down). A confirmed payment below
	// the first block scanned is not judged, and one found in neither place is reported Gone
	// only if the node does not know its output either (gettxout). Call it before Run.
	Resume(payments ...Event)
	// FollowDepth makes the watcher follow payments (and look for reorgs) until at least
	// confs+6 confirmations, so that every payment reaches confs confirmations (a seller's
	// MinConf) before it is let go. Call it before Run.
	FollowDepth(confs int32)
}

// WatchConfig configures a Watcher.
type WatchConfig struct {
	Node NodeConfig
	Net  *chaincfg.Params
	// OnEvent receives events in order, one at a time; it is called with the watcher's lock
	// held, so it should return quickly and must not call the watcher.
	OnEvent func(Event)
	// Interval between polls (poller, default 2 s) or between safety resyncs (websocket,
	// default 30 s).
	Interval time.Duration
	// StartHeight is the first block to scan; 0 means the tip minus FinalDepth.
	StartHeight int32
	// FinalDepth is the confirmation count after which a payment is no longer followed and
	// reorgs are no longer looked for below it (default 6).
	FinalDepth int32
	Log        *slog.Logger
	// Clock times the polls and resyncs and stamps events; nil means the real one.
	Clock clock.Clock
}

type tracked struct {
	ev       Event // last emitted
	height   int32 // 0 while unconfirmed
	emitted  bool
	reorgMsg string
	inputs   []wire.OutPoint // set once, never changed after
	resumed  int32           // block height a previous run reported it confirmed at
	pushed   uint64          // tracker.poolGen when the websocket last pushed its transaction
}

// tracker is the chain-following core both backends share.
//
// A sync talks to the node for as long as it takes (on the first scan, one getrawtransaction per
// mempool transaction: minutes on mainnet), so it holds syncMu, which serialises syncs and owns
// the chain view (hashes, base, tip, start). mu guards what Watch, Resume, the websocket's pushes
// and Height share with a sync, and is never held across an RPC: a sync takes it only to scan a
// fetched block or transaction against the scripts watched at that moment, and to judge and
// report payments.
type tracker struct {
	cfg WatchConfig
	rpc *rpcClient
	log *slog.Logger

	syncMu sync.Mutex
	hashes map[int32]chainhash.Hash
	base   int32 // lowest height in hashes
	tip    int32 // highest scanned height; -1 before the first sync
	start  int32 // first height scanned

	mu       sync.Mutex
	scripts  map[string]string // pkScript → address
	payments map[wire.OutPoint]*tracked
	seenTx   map[chainhash.Hash]bool
	reported int32 // Height: every event up to this block emitted; -1 before the first sync
	// poolGen counts the syncs' mempool listings, bumped just before each is asked for: a
	// payment pushed at the current generation may be missing from the listing only because it
	// arrived after it.
	poolGen uint64
}

func newTracker(cfg WatchConfig) (*tracker, error) {
	if cfg.Net == nil || cfg.OnEvent == nil {
		return nil, errors.New("onchain: watcher needs a network and an event handler")
	}
	if cfg.FinalDepth <= 0 {
		cfg.FinalDepth = 6
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	rpc, err := newRPCClient(cfg.Node)
	if err != nil {
		return nil, err
	}
	return &tracker{cfg: cfg, rpc: rpc, log: cfg.Log, scripts: map[string]string{},
		payments: map[wire.OutPoint]*tracked{}, hashes: map[int32]chainhash.Hash{}, tip: -1,
		reported: -1, seenTx: map[chainhash.Hash]bool{}}, nil
}

// Resume implements Watcher.
func (t *tracker) Resume(payments ...Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range payments {
		if t.payments[e.OutPoint] != nil {
			continue
		}
		// Known only by outpoint until the mempool or a block shows the transaction; emitted,
		// so that disappearing is reported as Gone. Its old block height is not trusted: only
		// the blocks scanned now say whether it is still confirmed.
		p := &tracked{ev: e, emitted: true}
		if e.Kind == Confirmed && e.Height > 0 {
			p.resumed = e.Height
			p.reorgMsg = fmt.Sprintf("its block %d was replaced by a reorganisation of the chain while the app was not running", e.Height)
		} else {
			p.ev.Kind, p.ev.Confirmations, p.ev.Height = Seen, 0, 0
		}
		t.payments[e.OutPoint] = p
	}
}

// FollowDepth implements Watcher.
func (t *tracker) FollowDepth(confs int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg.FinalDepth = max(t.cfg.FinalDepth, confs+6)
}

// Height implements Watcher.
func (t *tracker) Height() int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reported
}

func (t *tracker) watch(addrs []btcutil.Address) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range addrs {
		if !a.IsForNet(t.cfg.Net) {
			return fmt.Errorf("%w: %s", ErrWrongNetwork, a)
		}
		s, err := txscript.PayToAddrScript(a)
		if err != nil {
			return err
		}
		t.scripts[string(s)] = a.EncodeAddress()
	}
	// Mempool transactions already looked at are not fetched again: an address is watched
	// before it is handed out, so none of them can pay it. (Addresses watched at start-up, before
	// the first scan, meet the whole mempool anyway.) On mainnet this saves refetching a mempool
	// of 100 000 transactions per invoice. A scan under way does not hold this up: it reads the
	// scripts under t.mu as it looks at each transaction, so one it looks at from now on is
	// checked against these addresses too, and one it fetched earlier existed before they were
	// handed out.
	return nil
}

func rbf(tx *wire.MsgTx) bool {
	for _, in := range tx.TxIn {
		if in.Sequence < wire.MaxTxInSequenceNum-1 {
			return true
		}
	}
	return false
}

// scanTx records outputs of tx paying watched scripts at height (0: mempool). t.mu held: the
// scripts are those watched at this moment.
func (t *tracker) scanTx(tx *wire.MsgTx, height int32) {
	var txid chainhash.Hash
	hashed := false
	for i, out := range tx.TxOut {
		addr, ok := t.scripts[string(out.PkScript)]
		if !ok {
			continue
		}
		if !hashed {
			txid, hashed = tx.TxHash(), true
		}
		op := wire.OutPoint{Hash: txid, Index: uint32(i)}
		p := t.payments[op]
		if p == nil {
			p = &tracked{}
			t.payments[op] = p
		}
		if p.inputs == nil { // new, or handed over by Resume without its transaction
			p.ev.OutPoint, p.ev.Address, p.ev.Sats, p.ev.RBF = op, addr, out.Value, rbf(tx)
			for _, in := range tx.TxIn {
				p.inputs = append(p.inputs, in.PreviousOutPoint)
			}
		}
		if height > 0 {
			p.height = height
		}
	}
}

func (t *tracker) emit(p *tracked, kind EventKind, confs int32, reason string) {
	if p.emitted && p.ev.Kind == kind && p.ev.Confirmations == confs {
		return
	}
	p.emitted = true
	p.ev.Kind, p.ev.Confirmations, p.ev.Reason, p.ev.At = kind, confs, reason, t.cfg.Clock.Now()
	p.ev.Height = 0
	if kind == Confirmed {
		p.ev.Height = p.height
	}
	t.cfg.OnEvent(p.ev)
}

// acceptMempoolTx is the websocket fast path: report a relevant transaction at once. It
// reports whether tx spends what another unconfirmed payment spends (a replacement or a
// double spend), which a resync then judges.
func (t *tracker) acceptMempoolTx(tx *wire.MsgTx) (conflict bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	txid := tx.TxHash()
	t.seenTx[txid] = true
	t.scanTx(tx, 0)
	for i := range tx.TxOut {
		if p := t.payments[wire.OutPoint{Hash: txid, Index: uint32(i)}]; p != nil && p.height == 0 {
			p.pushed = t.poolGen
			t.emit(p, Seen, 0, "")
		}
	}
	spends := make(map[wire.OutPoint]bool, len(tx.TxIn))
	for _, in := range tx.TxIn {
		spends[in.PreviousOutPoint] = true
	}
	for op, p := range t.payments {
		if op.Hash == txid || p.height != 0 {
			continue
		}
		for _, in := range p.inputs {
			if spends[in] {
				return true
			}
		}
	}
	return false
}

// pendingInputs lists what the unconfirmed payments spend: a transaction that spends any of
// it too replaces or double-spends a payment.
func (t *tracker) pendingInputs() []wire.OutPoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ops []wire.OutPoint
	for _, p := range t.payments {
		if p.height == 0 {
			ops = append(ops, p.inputs...)
		}
	}
	return ops
}

// sync brings the tracker up to the node's best chain and mempool and emits what changed.
func (t *tracker) sync(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		stable, err := t.syncOnce(ctx)
		if err != nil || stable {
			return err
		}
		if attempt == 4 {
			return errors.New("onchain: the node's chain kept changing during five scans in a row")
		}
	}
}

// syncOnce scans the node once. It holds t.syncMu throughout and t.mu only briefly, never
// across an RPC.
func (t *tracker) syncOnce(ctx context.Context) (stable bool, err error) {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	t.mu.Lock()
	final := t.cfg.FinalDepth
	t.mu.Unlock()
	best, err := t.rpc.blockCount(ctx)
	if err != nil {
		return false, err
	}
	if t.tip < 0 {
		start := t.cfg.StartHeight
		if start <= 0 {
			start = best - final
		}
		start = max(1, min(start, best+1))
		t.start = start
		h, err := t.rpc.blockHash(ctx, start-1)
		if err != nil {
			return false, err
		}
		t.base, t.tip = start-1, start-1
		t.hashes[start-1] = h
	}
	// Walk back until our view agrees with the node: everything above is disconnected.
	for t.tip > t.base {
		var h chainhash.Hash
		if t.tip <= best {
			if h, err = t.rpc.blockHash(ctx, t.tip); err != nil {
				return false, err
			}
			if h == t.hashes[t.tip] {
				break
			}
		}
		t.log.Warn("onchain: block disconnected (reorg)", "height", t.tip, "hash", t.hashes[t.tip])
		t.mu.Lock()
		for _, p := range t.payments {
			if p.height == t.tip {
				p.height = 0
				p.reorgMsg = fmt.Sprintf("its block %d was replaced by a reorganisation of the chain", t.tip)
			}
		}
		// What the replaced block held is not reported yet: Height stays below it.
		t.reported = min(t.reported, t.tip-1)
		t.mu.Unlock()
		delete(t.hashes, t.tip)
		t.tip--
	}
	// The walk stopped at base, whose hash was never checked: a reorg deeper than the depth
	// kept (FinalDepth+1) replaced it too. Go further back until the node agrees, and rescan.
	for depth := final + 1; t.tip == t.base && t.base > 0; depth *= 2 {
		h, err := t.rpc.blockHash(ctx, t.base)
		if err != nil {
			return false, err
		}
		if h == t.hashes[t.base] {
			break
		}
		newBase := max(0, t.base-depth)
		nh, err := t.rpc.blockHash(ctx, newBase)
		if err != nil {
			return false, err
		}
		t.log.Error("onchain: the chain was reorganised deeper than the watcher follows payments; rescanning. "+
			"Payments settled in the replaced blocks are not revoked", "from_height", t.base, "rescan_from", newBase+1,
			"final_depth", final)
		t.mu.Lock()
		for _, p := range t.payments {
			if p.height > newBase {
				p.reorgMsg = fmt.Sprintf("its block %d was replaced by a deep reorganisation of the chain", p.height)
				p.height = 0
			}
		}
		t.reported = min(t.reported, newBase)
		t.mu.Unlock()
		clear(t.hashes)
		t.hashes[newBase] = nh
		t.base, t.tip = newBase, newBase
		t.start = min(t.start, newBase+1)
	}
	for h := t.tip + 1; h <= best; h++ {
		hash, err := t.rpc.blockHash(ctx, h)
		if err != nil {
			return false, err
		}
		blk, err := t.rpc.block(ctx, hash)
		if err != nil {
			return false, err
		}
		if blk.Header.PrevBlock != t.hashes[h-1] {
			return false, nil // the chain moved under us; start over
		}
		t.mu.Lock()
		for _, tx := range blk.Transactions {
			t.scanTx(tx, h)
		}
		t.mu.Unlock()
		t.hashes[h] = hash
		t.tip = h
	}
	t.mu.Lock()
	t.poolGen++
	gen := t.poolGen
	t.mu.Unlock()
	pool, err := t.rpc.rawMempool(ctx)
	if err != nil {
		return false, err
	}
	inPool := make(map[chainhash.Hash]bool, len(pool))
	var fetch []chainhash.Hash
	t.mu.Lock()
	for _, id := range pool {
		inPool[id] = true
		if !t.seenTx[id] {
			fetch = append(fetch, id)
		}
	}
	t.mu.Unlock()
	for _, id := range fetch {
		tx, err := t.rpc.rawTx(ctx, id)
		if errors.Is(err, errTxNotFound) {
			continue // left the mempool since getrawmempool
		}
		if err != nil {
			return false, err
		}
		t.mu.Lock()
		t.scanTx(tx, 0)
		t.mu.Unlock()
	}
	// seenTx gets its own copy: the websocket's pushes add to it while this sync reads inPool.
	// (A transaction pushed since the listing is dropped from it and fetched once more next time.)
	seen := maps.Clone(inPool)
	t.mu.Lock()
	t.seenTx = seen
	t.mu.Unlock()
	// Judge missing transactions only against a chain that did not move meanwhile.
	bestHash, err := t.rpc.bestBlockHash(ctx)
	if err != nil {
		return false, err
	}
	if bestHash != t.hashes[t.tip] {
		return false, nil
	}
	// Judge the payments known now, one at a time: t.mu is let go for the RPCs some need, and
	// each is looked up again after them.
	t.mu.Lock()
	ops := make([]wire.OutPoint, 0, len(t.payments))
	for op := range t.payments {
		ops = append(ops, op)
	}
	t.mu.Unlock()
	for _, op := range ops {
		if err := t.judge(ctx, op, inPool, gen, final); err != nil {
			return false, err
		}
	}
	for h := range t.hashes {
		if h < t.tip-final-1 {
			delete(t.hashes, h)
		}
	}
	t.base = max(t.base, t.tip-final-1)
	// Every payment in the blocks up to the tip has been reported.
	t.mu.Lock()
	t.reported = t.tip
	t.mu.Unlock()
	return true, nil
}

// judge emits what changed for one payment, against the blocks scanned up to t.tip and the
// mempool listing inPool, asked for at generation gen. Called by syncOnce without t.mu.
func (t *tracker) judge(ctx context.Context, op wire.OutPoint, inPool map[chainhash.Hash]bool, gen uint64, final int32) error {
	t.mu.Lock()
	p := t.payments[op]
	switch {
	case p == nil:
	case p.height > 0:
		confs := t.tip - p.height + 1
		t.emit(p, Confirmed, confs, "")
		if confs > final {
			delete(t.payments, op)
		}
	case inPool[op.Hash]:
		inputs := p.inputs
		t.mu.Unlock()
		spent, err := t.inputSpentInChain(ctx, inputs, inPool)
		if err != nil {
			return err
		}
		t.mu.Lock()
		if t.payments[op] != p || p.height > 0 {
			break // only this sync confirms or deletes: cannot happen, but never judge a stale view
		}
		if spent {
			// A node may keep a transaction in its mempool after a reorg confirmed a
			// conflicting one (btcd does); it can never confirm.
			if p.emitted {
				t.emit(p, Gone, 0, "the payment was double-spent: a transaction in the chain spends the same coins")
			}
			delete(t.payments, op)
			break
		}
		t.emit(p, Seen, 0, p.reorgMsg)
		p.reorgMsg = ""
	case p.pushed >= gen:
		// Pushed by the websocket after the listing was asked for: its absence from it says
		// nothing. The next sync judges it.
	case p.resumed > 0 && p.resumed < t.start:
		delete(t.payments, op) // confirmed below what this run scanned: nothing to judge by
	case p.inputs == nil:
		// Handed over by Resume and found neither in the blocks scanned nor in the
		// mempool: it may have confirmed below them while the app was down. Ask the node
		// about the output before calling it gone.
		t.mu.Unlock()
		confs, found, err := t.txOut(ctx, op)
		if err != nil {
			return err
		}
		t.mu.Lock()
		if t.payments[op] != p || p.inputs != nil || p.height > 0 {
			break // pushed by the websocket meanwhile: the next sync judges it
		}
		if !found {
			reason := "the transaction left the mempool unconfirmed while the app was not running: it was replaced by another (RBF), dropped, or its output already spent"
			if p.reorgMsg != "" {
				reason = "the transaction is no longer valid: " + p.reorgMsg + " and the node does not know its output"
			}
			t.emit(p, Gone, 0, reason)
			delete(t.payments, op)
			break
		}
		if confs > 0 {
			p.height = t.tip - confs + 1
			t.emit(p, Confirmed, confs, "")
			if confs > final {
				delete(t.payments, op)
			}
		}
	default:
		reason := "the transaction left the mempool unconfirmed: it was replaced by another (RBF) or dropped"
		if p.reorgMsg != "" {
			reason = "the transaction is no longer valid: " + p.reorgMsg + " and it did not return to the mempool"
		}
		if p.emitted {
			t.emit(p, Gone, 0, reason)
		}
		delete(t.payments, op)
	}
	t.mu.Unlock()
	return nil
}

// txOut asks the node about an unspent output (mempool included): found is false when the
// node knows no such unspent output.
func (t *tracker) txOut(ctx context.Context, op wire.OutPoint) (confs int32, found bool, err error) {
	var out *struct {
		Confirmations int32 `json:"confirmations"`
	}
	if err := t.rpc.call(ctx, "gettxout", &out, op.Hash.String(), op.Index, true); err != nil {
		return 0, false, err
	}
	if out == nil {
		return 0, false, nil
	}
	return out.Confirmations, true, nil
}

// inputSpentInChain reports whether an input of an unconfirmed payment (its inputs) is already
// spent (or gone) in the best chain. Inputs from unconfirmed parents are not checked.
func (t *tracker) inputSpentInChain(ctx context.Context, inputs []wire.OutPoint, inPool map[chainhash.Hash]bool) (bool, error) {
	for _, in := range inputs {
		if inPool[in.Hash] {
			continue
		}
		var out json.RawMessage
		if err := t.rpc.call(ctx, "gettxout", &out, in.Hash.String(), in.Index, false); err != nil {
			return false, err
		}
		if len(out) == 0 || string(out) == "null" {
			return true, nil
		}
	}
	return false, nil
}

// Poller is the Watcher that polls JSON-RPC calls Bitcoin Core and btcd both answer:
// getblockcount, getblockhash, getblock (raw), getbestblockhash, getrawmempool and
// getrawtransaction (mempool transactions only; no transaction index needed).
type Poller struct{ *tracker }

// NewPoller returns a polling watcher.
func NewPoller(cfg WatchConfig) (*Poller, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	t, err := newTracker(cfg)
	if err != nil {
		return nil, err
	}
	return &Poller{t}, nil
}

// Watch implements Watcher.
func (p *Poller) Watch(addrs ...btcutil.Address) error { return p.watch(addrs) }

// Run implements Watcher.
func (p *Poller) Run(ctx context.Context) error {
	defer p.rpc.hc.CloseIdleConnections()
	tick := p.cfg.Clock.Ticker(p.cfg.Interval)
	defer tick.Stop()
	failing := false
	for {
		if err := p.sync(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !failing {
				p.log.Error("onchain: cannot reach the bitcoin node; retrying", "err", err)
			}
			failing = true
		} else if failing {
			p.log.Info("onchain: bitcoin node reachable again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
