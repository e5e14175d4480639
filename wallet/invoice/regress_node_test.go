//go:build linux

package invoice

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// fakeNode answers the JSON-RPC calls the poller uses from an in-memory chain.
type fakeNode struct {
	mu      sync.Mutex
	chain   []*wire.MsgBlock
	mempool map[chainhash.Hash]*wire.MsgTx
	rawTxs  int // getrawtransaction calls
	// txouts answers gettxout ("txid:vout" → confirmations); nil answers every output as
	// unspent and unconfirmed.
	txouts map[string]int
}

func newFakeNode(height int) *fakeNode {
	n := &fakeNode{mempool: map[chainhash.Hash]*wire.MsgTx{}}
	n.extend(0, height, 0, nil)
	return n
}

func filler(tag uint32) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: tag}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(int64(tag), []byte{txscript.OP_TRUE}))
	return tx
}

// extend cuts the chain at from (keeps heights < from) and mines up to height, branch making
// hashes distinct; extra txs go into the last block.
func (n *fakeNode) extend(from, height int, branch uint32, extra []*wire.MsgTx) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.chain = n.chain[:from]
	for h := from; h <= height; h++ {
		var prev chainhash.Hash
		if h > 0 {
			prev = n.chain[h-1].BlockHash()
		}
		b := wire.NewMsgBlock(wire.NewBlockHeader(1, &prev, &chainhash.Hash{}, 0, uint32(h)<<8|branch))
		b.AddTransaction(filler(uint32(h)<<8 | branch))
		if h == height {
			for _, tx := range extra {
				b.AddTransaction(tx)
				delete(n.mempool, tx.TxHash())
			}
		}
		n.chain = append(n.chain, b)
	}
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	n.mu.Lock()
	defer n.mu.Unlock()
	var res any
	switch req.Method {
	case "getblockcount":
		res = len(n.chain) - 1
	case "getblockhash":
		var h int
		json.Unmarshal(req.Params[0], &h)
		res = n.chain[h].BlockHash().String()
	case "getbestblockhash":
		res = n.chain[len(n.chain)-1].BlockHash().String()
	case "getblock":
		var s string
		json.Unmarshal(req.Params[0], &s)
		for _, b := range n.chain {
			if b.BlockHash().String() == s {
				var buf bytes.Buffer
				b.Serialize(&buf)
				res = hex.EncodeToString(buf.Bytes())
			}
		}
	case "getrawmempool":
		ids := []string{}
		for id := range n.mempool {
			ids = append(ids, id.String())
		}
		res = ids
	case "getrawtransaction":
		n.rawTxs++
		var s string
		json.Unmarshal(req.Params[0], &s)
		h, _ := chainhash.NewHashFromStr(s)
		tx := n.mempool[*h]
		if tx == nil {
			json.NewEncoder(w).Encode(map[string]any{"result": nil, "error": map[string]any{"code": -5, "message": "No information"}})
			return
		}
		var buf bytes.Buffer
		tx.Serialize(&buf)
		res = hex.EncodeToString(buf.Bytes())
	case "gettxout":
		res = map[string]any{"value": 1}
		if n.txouts != nil {
			var txid string
			var vout int
			json.Unmarshal(req.Params[0], &txid)
			json.Unmarshal(req.Params[1], &vout)
			if c, ok := n.txouts[fmt.Sprintf("%s:%d", txid, vout)]; ok {
				res = map[string]any{"value": 1, "confirmations": c}
			} else {
				res = nil
			}
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"result": res, "error": nil})
}

func payTo(t testing.TB, a btcutil.Address, sats int64, tag uint32) *wire.MsgTx {
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1}, Index: tag}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(sats, s))
	return tx
}

type events struct {
	mu sync.Mutex
	ev []onchain.Event
}

func (e *events) on(ev onchain.Event) { e.mu.Lock(); e.ev = append(e.ev, ev); e.mu.Unlock() }
func (e *events) list() []onchain.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]onchain.Event(nil), e.ev...)
}

func runPoller(t *testing.T, n *fakeNode, start int32, on func(onchain.Event), addrs ...btcutil.Address) (onchain.Watcher, func()) {
	srv := httptest.NewServer(n)
	p, err := onchain.NewPoller(onchain.WatchConfig{Node: onchain.NodeConfig{Host: strings.TrimPrefix(srv.URL, "http://")},
		Net: btcdtest.Net, OnEvent: on, Interval: 20 * time.Millisecond, StartHeight: start})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Watch(addrs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	return p, func() { cancel(); <-done; srv.Close() }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: on a loaded machine (race detector, other builds) the first scan of a 2 000-
	// transaction mempool over HTTP can take seconds; a stalled watcher never gets there at all.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Regression test for a reviewer's finding; the defect was: a reorg deeper than FinalDepth+1 blocks leaves the tracker stuck for good: the walk
// back stops at base without checking base's hash, every later scan fails the PrevBlock check and
// sync returns nil after 5 "unstable" attempts, so no block, mempool payment or Gone is ever
// reported again (and nothing is logged).
func TestDeepReorgDoesNotStallWatcher(t *testing.T) {
	n := newFakeNode(30)
	a, _ := accountKey(t).Address(0)
	ev := &events{}
	w, stop := runPoller(t, n, 0, ev.on, a)
	defer stop()
	waitFor(t, "first scan", func() bool { return w.Height() == 30 })
	n.extend(21, 32, 1, []*wire.MsgTx{payTo(t, a, 5000, 1)}) // 10-block reorg, payment at 32
	// A stalled watcher never gets there; a slow one (loaded machine) gets there late.
	waitFor(t, "the watcher to follow a 10-block reorg and report the payment", func() bool {
		return w.Height() == 32 && len(ev.list()) > 0
	})
}

// Regression test for a reviewer's finding; the defect was: each Watch (one per on-chain invoice) clears seenTx, so the next poll downloads every
// transaction in the node's mempool again (hundreds of thousands on mainnet), all under the
// tracker's lock that Watch (and so Handle) also needs.
func TestWatchDoesNotRefetchMempool(t *testing.T) {
	n := newFakeNode(10)
	for i := 0; i < 2000; i++ {
		tx := filler(1<<30 | uint32(i))
		n.mempool[tx.TxHash()] = tx
	}
	a0, _ := accountKey(t).Address(0)
	a1, _ := accountKey(t).Address(1)
	w, stop := runPoller(t, n, 0, func(onchain.Event) {}, a0)
	defer stop()
	waitFor(t, "first scan", func() bool { n.mu.Lock(); defer n.mu.Unlock(); return n.rawTxs >= 2000 })
	time.Sleep(100 * time.Millisecond)
	n.mu.Lock()
	before := n.rawTxs
	n.mu.Unlock()
	w.Watch(a1) // a fresh invoice address nobody has seen yet
	time.Sleep(300 * time.Millisecond)
	n.mu.Lock()
	after := n.rawTxs
	n.mu.Unlock()
	if after-before > 10 {
		t.Fatalf("one new invoice address cost %d getrawtransaction calls (mempool of 2000)", after-before)
	}
}

// Regression test for a reviewer's finding; the defect was: with MinConf above the watcher's FinalDepth+1 (6+1 by default) a payment is never
// settled: the watcher stops following it after 7 confirmations. The credit stays provisional, and
// after a restart Resume hands it to a watcher that scans only from the saved height minus 6,
// does not find it, and reports it Gone: the confirmed payment is revoked.
func TestHighMinConfSettlesAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := newFakeNode(20)
	key := accountKey(t)
	var stopAll func()
	var l *ledger.Ledger
	var s *Seller
	start := func() {
		var err error
		l, err = ledger.Open(filepath.Join(dir, "ledger"), nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(n)
		p, _ := onchain.NewPoller(onchain.WatchConfig{Node: onchain.NodeConfig{Host: strings.TrimPrefix(srv.URL, "http://")},
			Net: btcdtest.Net, OnEvent: func(e onchain.Event) { s.OnChainEvent(e) }, Interval: 20 * time.Millisecond,
			StartHeight: ResumeHeight(l, btcdtest.Net)})
		s, err = New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
			StorePath: filepath.Join(dir, "invoices"),
			OnChain:   &OnChain{Key: key, Watcher: p, MinConf: 10, ProvisionalCapSats: 100_000}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		stopAll = func() { cancel(); <-done; s.Close(); l.Close(); srv.Close() }
	}
	start()
	a := s.Handle(context.Background(), "viewer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10})
	addr, _ := onchain.ParseAddress(a.Address, btcdtest.Net)
	tx := payTo(t, addr, 1000, 7)
	n.mu.Lock()
	n.mempool[tx.TxHash()] = tx
	n.mu.Unlock()
	k := ledger.Key{Stream: streamID, Viewer: "viewer"}
	waitFor(t, "provisional credit", func() bool { return l.Remaining(k) == 10*time.Minute })
	n.extend(21, 21, 0, []*wire.MsgTx{tx})
	for h := 22; h <= 40; h++ { // 20 confirmations, one block at a time
		time.Sleep(60 * time.Millisecond)
		n.extend(h, h, 0, nil)
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("credits after 20 confirmations: %+v", l.Credits(k))
	stopAll()
	start()
	defer stopAll()
	time.Sleep(500 * time.Millisecond)
	cs := l.Credits(k)
	if len(cs) != 1 || cs[0].State != ledger.Settled {
		t.Fatalf("a payment with 20 confirmations, MinConf 10: %+v", cs)
	}
}

// Regression test for a reviewer's finding; the defect was: a fee bump (RBF replacement paying the same invoice address) leaves the viewer with
// no provisional access when the replacement is judged before the original's Gone: the cap is
// computed with the original still provisional, and the later revocation never tops it up.
func TestFeeBumpKeepsProvisionalAccess(t *testing.T) {
	dir := t.TempDir()
	n := newFakeNode(20)
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var s *Seller
	srv := httptest.NewServer(n)
	defer srv.Close()
	p, _ := onchain.NewPoller(onchain.WatchConfig{Node: onchain.NodeConfig{Host: strings.TrimPrefix(srv.URL, "http://")},
		Net: btcdtest.Net, OnEvent: func(e onchain.Event) { s.OnChainEvent(e) }, Interval: 20 * time.Millisecond})
	s, err = New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "invoices"), Burst: 100, PerViewer: 100,
		OnChain: &OnChain{Key: accountKey(t), Watcher: p, ProvisionalCapSats: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	bad := 0
	for i := 0; i < 8; i++ {
		viewer := "viewer" + string(rune('a'+i))
		a := s.Handle(ctx, viewer, invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10})
		addr, _ := onchain.ParseAddress(a.Address, btcdtest.Net)
		orig := payTo(t, addr, 1000, uint32(100+i))
		n.mu.Lock()
		n.mempool[orig.TxHash()] = orig
		n.mu.Unlock()
		k := ledger.Key{Stream: streamID, Viewer: viewer}
		waitFor(t, "provisional credit", func() bool { return l.Remaining(k) == 10*time.Minute })
		bump := payTo(t, addr, 1000, uint32(100+i))
		bump.TxIn[0].Sequence = 5 // same input, other txid: the viewer's wallet bumped the fee
		n.mu.Lock()
		delete(n.mempool, orig.TxHash())
		n.mempool[bump.TxHash()] = bump
		n.mu.Unlock()
		time.Sleep(200 * time.Millisecond)
		if got := l.Remaining(k); got != 10*time.Minute {
			bad++
			t.Logf("%s: after a fee bump of a 1000-sat payment, provisional access %v", viewer, got)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of 8 fee bumps lost the viewer's provisional access", bad)
	}
}

// A payment the last run saw unconfirmed that confirmed while the app was down, below the blocks
// this run scans (the saved height was older, or never saved): the watcher asks the node about the
// output before calling it gone, and reports it confirmed. One the node does not know is gone.
func TestResumedPaymentConfirmedBelowScanIsNotGone(t *testing.T) {
	n := newFakeNode(10)
	a, _ := accountKey(t).Address(0)
	tx := payTo(t, a, 5000, 3)
	n.extend(11, 12, 0, []*wire.MsgTx{tx}) // confirmed at 12
	n.extend(13, 30, 0, nil)
	op := wire.OutPoint{Hash: tx.TxHash(), Index: 0}
	lost := wire.OutPoint{Hash: chainhash.Hash{7}, Index: 1}
	n.txouts = map[string]int{op.String(): 19}
	ev := &events{}
	srv := httptest.NewServer(n)
	defer srv.Close()
	p, err := onchain.NewPoller(onchain.WatchConfig{Node: onchain.NodeConfig{Host: strings.TrimPrefix(srv.URL, "http://")},
		Net: btcdtest.Net, OnEvent: ev.on, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Watch(a)
	p.Resume(onchain.Event{Kind: onchain.Seen, OutPoint: op, Address: a.EncodeAddress(), Sats: 5000},
		onchain.Event{Kind: onchain.Seen, OutPoint: lost, Address: a.EncodeAddress(), Sats: 5000})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "both judged", func() bool { return len(ev.list()) == 2 })
	for _, e := range ev.list() {
		switch e.OutPoint {
		case op:
			if e.Kind != onchain.Confirmed || e.Confirmations != 19 || e.Height != 12 {
				t.Errorf("confirmed payment reported %+v", e)
			}
		case lost:
			if e.Kind != onchain.Gone {
				t.Errorf("unknown output reported %+v", e)
			}
		}
	}
}
