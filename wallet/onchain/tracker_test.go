package onchain

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// fakeNode answers the JSON-RPC calls the poller makes from an in-memory chain and mempool.
// hook, when set, is called before each answer without the node's lock and may block.
type fakeNode struct {
	srv *httptest.Server

	mu      sync.Mutex
	hashes  []chainhash.Hash // by height; 0 is the genesis block, which has no body here
	blocks  map[chainhash.Hash]*wire.MsgBlock
	pool    []*wire.MsgTx
	poolErr bool
	nonce   uint32
	hook    func(method string)
}

func newFakeNode(t *testing.T) *fakeNode {
	n := &fakeNode{hashes: []chainhash.Hash{*chaincfg.RegressionNetParams.GenesisHash},
		blocks: map[chainhash.Hash]*wire.MsgBlock{}}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) setHook(h func(method string)) {
	n.mu.Lock()
	n.hook = h
	n.mu.Unlock()
}

func (n *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
		Params []any  `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	hook := n.hook
	n.mu.Unlock()
	if hook != nil {
		hook(req.Method)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var res, rerr any
	switch req.Method {
	case "getblockcount":
		res = len(n.hashes) - 1
	case "getblockhash":
		h := int(req.Params[0].(float64))
		if h < 0 || h >= len(n.hashes) {
			rerr = map[string]any{"code": -8, "message": "Block height out of range"}
		} else {
			res = n.hashes[h].String()
		}
	case "getbestblockhash":
		res = n.hashes[len(n.hashes)-1].String()
	case "getblock":
		h, _ := chainhash.NewHashFromStr(req.Params[0].(string))
		if b := n.blocks[*h]; b != nil {
			var buf bytes.Buffer
			b.Serialize(&buf)
			res = hex.EncodeToString(buf.Bytes())
		} else {
			rerr = map[string]any{"code": -5, "message": "Block not found"}
		}
	case "getrawmempool":
		if n.poolErr {
			rerr = map[string]any{"code": -1, "message": "busy"}
			break
		}
		ids := []string{}
		for _, tx := range n.pool {
			ids = append(ids, tx.TxHash().String())
		}
		res = ids
	case "getrawtransaction":
		rerr = map[string]any{"code": -5, "message": "No information available about transaction"}
		for _, tx := range n.pool {
			if tx.TxHash().String() == req.Params[0].(string) {
				var buf bytes.Buffer
				tx.Serialize(&buf)
				res, rerr = hex.EncodeToString(buf.Bytes()), nil
			}
		}
	case "gettxout":
		res = map[string]any{"confirmations": 1} // every coin the payments spend is unspent
	default:
		rerr = map[string]any{"code": -32601, "message": "Method not found"}
	}
	json.NewEncoder(w).Encode(map[string]any{"result": res, "error": rerr, "id": req.ID})
}

// mine appends a block holding txs on top of the chain's first `on`+1 blocks (a reorg when
// on is below the tip) and takes txs out of the mempool.
func (n *fakeNode) mine(on int, txs ...*wire.MsgTx) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hashes = n.hashes[:on+1]
	n.nonce++
	prev := n.hashes[on]
	blk := wire.NewMsgBlock(wire.NewBlockHeader(1, &prev, &chainhash.Hash{}, 0, n.nonce))
	for _, tx := range txs {
		blk.AddTransaction(tx)
	}
	h := blk.BlockHash()
	n.blocks[h] = blk
	n.hashes = append(n.hashes, h)
	in := map[chainhash.Hash]bool{}
	for _, tx := range txs {
		in[tx.TxHash()] = true
	}
	pool := n.pool[:0]
	for _, tx := range n.pool {
		if !in[tx.TxHash()] {
			pool = append(pool, tx)
		}
	}
	n.pool = pool
}

func (n *fakeNode) addToPool(txs ...*wire.MsgTx) {
	n.mu.Lock()
	n.pool = append(n.pool, txs...)
	n.mu.Unlock()
}

func (n *fakeNode) setPoolErr(fail bool) {
	n.mu.Lock()
	n.poolErr = fail
	n.mu.Unlock()
}

// fakeTx pays sats to script, spending a coin no other fakeTx spends.
func fakeTx(seq uint32, script []byte, sats int64) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	prev := chainhash.Hash{0xfe, byte(seq), byte(seq >> 8), byte(seq >> 16)}
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: prev, Index: seq}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(sats, script))
	return tx
}

func fakeAddr(t *testing.T, b byte) (btcutil.Address, []byte) {
	a, err := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{b}, 20), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	return a, s
}

// eventLog collects events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) on(e Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

func (l *eventLog) find(txid chainhash.Hash, kind EventKind) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.evs {
		if e.OutPoint.Hash == txid && e.Kind == kind {
			return e, true
		}
	}
	return Event{}, false
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

func newFakePoller(t *testing.T, n *fakeNode, start int32, log *eventLog) *Poller {
	p, err := NewPoller(WatchConfig{Node: NodeConfig{Host: strings.TrimPrefix(n.srv.URL, "http://")},
		Net: &chaincfg.RegressionNetParams, StartHeight: start, OnEvent: log.on,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.rpc.hc.CloseIdleConnections)
	return p
}

// gate makes the node block the first call to method until release is closed; entered is
// closed when that call arrives. Later calls to it block too until release.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func newGate(n *fakeNode, method string) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	n.setHook(func(m string) {
		if m != method {
			return
		}
		g.once.Do(func() { close(g.entered) })
		<-g.release
	})
	return g
}

// watchSoon calls Watch and fails the test if it does not return while the node holds a scan
// up (the bound is generous: Watch takes no RPC, so on a working tracker it returns at once).
func watchSoon(t *testing.T, w Watcher, g *gate, addrs ...btcutil.Address) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.Watch(addrs...) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(g.release) // let the scan finish so that the test can end
		<-done
		t.Fatal("Watch waited for the node scan to finish")
	}
}

// runSync runs one sync in a goroutine the caller waits for with the returned channel.
func runSync(p *Poller) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.sync(context.Background()) }()
	return done
}

// Watch is not held up by a scan: the first scan fetches every mempool transaction (minutes
// on mainnet), and the invoice desk calls Watch for every on-chain invoice.
func TestWatchDuringMempoolScanDoesNotWait(t *testing.T) {
	n := newFakeNode(t)
	for i := range 200 {
		n.addToPool(fakeTx(uint32(i), []byte{txscript.OP_TRUE}, 1000))
	}
	var log eventLog
	p := newFakePoller(t, n, 0, &log)
	g := newGate(n, "getrawtransaction")
	done := runSync(p)
	<-g.entered // the first scan is fetching the mempool, and cannot finish until released
	a, script := fakeAddr(t, 1)
	watchSoon(t, p, g, a)
	select {
	case <-done:
		t.Fatal("the scan finished before it was released")
	default:
	}
	if h := p.Height(); h != -1 {
		t.Fatalf("Height() = %d during the first scan", h)
	}
	// The address is handed out now and paid: the payment is reported.
	pay := fakeTx(1000, script, 5000)
	n.addToPool(pay)
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := log.find(pay.TxHash(), Seen); !ok {
		if err := <-runSync(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := log.find(pay.TxHash(), Seen); !ok {
		t.Fatalf("payment to an address watched during the scan not reported: %+v", log.all())
	}
	if h := p.Height(); h != 0 {
		t.Fatalf("Height() = %d after the scan, want 0", h)
	}
}

// An address watched while a scan is fetching a block, and paid at once, is found by the
// mempool step of that same scan: the scan reads the watched scripts when it looks at each
// transaction, not a copy taken when it started (a copy would mark the payment's transaction
// as looked at without seeing it pay anything, and it would never be reported unconfirmed).
func TestAddressWatchedDuringBlockScanIsReported(t *testing.T) {
	n := newFakeNode(t)
	var log eventLog
	p := newFakePoller(t, n, 0, &log)
	if err := p.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.mine(0, fakeTx(1, []byte{txscript.OP_TRUE}, 1000))
	g := newGate(n, "getblock")
	done := runSync(p)
	<-g.entered
	a, script := fakeAddr(t, 2)
	watchSoon(t, p, g, a)
	pay := fakeTx(2, script, 7000)
	n.addToPool(pay)
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-runSync(p); err != nil { // "by the next scan at the latest"
		t.Fatal(err)
	}
	if _, ok := log.find(pay.TxHash(), Seen); !ok {
		t.Fatalf("payment to an address watched during the scan not reported: %+v", log.all())
	}
	// And when it confirms.
	n.mine(1, pay)
	if err := <-runSync(p); err != nil {
		t.Fatal(err)
	}
	if e, ok := log.find(pay.TxHash(), Confirmed); !ok || e.Height != 2 {
		t.Fatalf("confirmation not reported: %+v", log.all())
	}
}

// A payment the websocket pushes while a scan is judging the mempool it listed before the
// payment arrived is not judged against that listing (it is not in it): not reported Gone.
func TestPushedPaymentDuringScanNotJudgedGone(t *testing.T) {
	n := newFakeNode(t)
	var log eventLog
	p := newFakePoller(t, n, 0, &log)
	a, script := fakeAddr(t, 3)
	if err := p.Watch(a); err != nil {
		t.Fatal(err)
	}
	g := newGate(n, "getbestblockhash") // after the mempool listing
	done := runSync(p)
	<-g.entered
	pay := fakeTx(3, script, 9000)
	n.addToPool(pay)
	pushed := make(chan struct{})
	go func() { defer close(pushed); p.acceptMempoolTx(pay) }()
	select {
	case <-pushed:
	case <-time.After(10 * time.Second):
		close(g.release)
		<-pushed
		t.Fatal("a pushed transaction waited for the node scan to finish")
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-runSync(p); err != nil {
		t.Fatal(err)
	}
	if _, ok := log.find(pay.TxHash(), Seen); !ok {
		t.Fatalf("pushed payment not reported: %+v", log.all())
	}
	if e, ok := log.find(pay.TxHash(), Gone); ok {
		t.Fatalf("pushed payment reported gone: %+v", e)
	}
}

// Height() says how far every payment has been reported, which the seller saves and the next
// run rescans from: a scan that fails after scanning a block must not expose it.
func TestHeightOnlyCoversReportedBlocks(t *testing.T) {
	n := newFakeNode(t)
	var log eventLog
	p := newFakePoller(t, n, 0, &log)
	a, script := fakeAddr(t, 4)
	if err := p.Watch(a); err != nil {
		t.Fatal(err)
	}
	if err := p.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := p.Height(); h != 0 {
		t.Fatalf("Height() = %d, want 0", h)
	}
	pay := fakeTx(4, script, 5000)
	n.mine(0, pay)
	n.setPoolErr(true)
	if err := p.sync(context.Background()); err == nil {
		t.Fatal("want the mempool error")
	}
	if h := p.Height(); h != 0 {
		t.Fatalf("Height() = %d after a failed scan of block 1, whose payment was not reported: %+v", h, log.all())
	}
	n.setPoolErr(false)
	if err := p.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := log.find(pay.TxHash(), Confirmed); !ok {
		t.Fatalf("payment in block 1 not reported: %+v", log.all())
	}
	if h := p.Height(); h != 1 {
		t.Fatalf("Height() = %d after a successful scan, want 1", h)
	}

	// A reorg replaces block 1 (and the payment does not come back): Height() drops to the
	// fork while the payment's Gone is not reported yet, and moves on once it is.
	n.mine(1)
	if err := p.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := p.Height(); h != 2 {
		t.Fatalf("Height() = %d, want 2", h)
	}
	n.mine(0)
	n.mine(1)
	n.mine(2)
	n.setPoolErr(true)
	if err := p.sync(context.Background()); err == nil {
		t.Fatal("want the mempool error")
	}
	if h := p.Height(); h != 0 {
		t.Fatalf("Height() = %d after a reorg back to block 0 whose consequences were not reported", h)
	}
	n.setPoolErr(false)
	if err := p.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := log.find(pay.TxHash(), Gone); !ok {
		t.Fatalf("reorganised payment not reported gone: %+v", log.all())
	}
	if h := p.Height(); h != 3 {
		t.Fatalf("Height() = %d, want 3", h)
	}
}

// Watch, Resume, pushed transactions and new blocks beside a loop of syncs: no data race, and
// every payment is reported, none of them Gone.
func TestTrackerConcurrentUse(t *testing.T) {
	n := newFakeNode(t)
	for i := range 50 { // something for the first scan to fetch
		n.addToPool(fakeTx(uint32(5000+i), []byte{txscript.OP_TRUE}, 1000))
	}
	var log eventLog
	p := newFakePoller(t, n, 0, &log)
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.sync(context.Background())
			p.Height()
		}
	}()
	var pays []*wire.MsgTx
	for i := range 60 {
		a, script := fakeAddr(t, byte(10+i))
		if err := p.Watch(a); err != nil {
			t.Fatal(err)
		}
		tx := fakeTx(uint32(100+i), script, int64(1000+i))
		pays = append(pays, tx)
		n.addToPool(tx)
		p.acceptMempoolTx(tx)
		p.Resume(Event{Kind: Seen, OutPoint: wire.OutPoint{Hash: chainhash.Hash{0xee, byte(i)}}, Address: a.EncodeAddress()})
		if i%10 == 9 {
			n.mine(len(n.hashesCopy())-1, pays[i-9:i+1]...)
		}
	}
	close(stop)
	<-stopped
	if err := p.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h, want := p.Height(), int32(len(n.hashesCopy())-1); h != want {
		t.Fatalf("Height() = %d, want %d", h, want)
	}
	for _, tx := range pays {
		if e, ok := log.find(tx.TxHash(), Gone); ok {
			t.Fatalf("payment reported gone: %+v", e)
		}
		if _, ok := log.find(tx.TxHash(), Confirmed); !ok {
			t.Fatalf("payment %s not reported confirmed: %+v", tx.TxHash(), log.all())
		}
	}
}

func (n *fakeNode) hashesCopy() []chainhash.Hash {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]chainhash.Hash(nil), n.hashes...)
}
