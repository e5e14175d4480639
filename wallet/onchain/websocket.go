package onchain

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// Websocket is the Watcher for btcd: the node pushes each mempool transaction that pays a watched
// address (loadtxfilter → relevanttxaccepted), reported within milliseconds, and each connected
// or disconnected block, which starts a resync. The resync is the poller's, so replacement,
// drops and reorgs are judged the same way; it also runs every Interval as a safety net, and
// keeps running while the websocket is down.
type Websocket struct {
	*tracker

	kick chan struct{} // capacity 1: a pending kick already means "resync"; more are dropped
	// inputs, capacity 1: a new payment's inputs are to join btcd's filter (no resync); a
	// pending one already covers every payment, so more are dropped.
	inputs chan struct{}
	reload atomic.Bool   // the filter must be loaded again (after a (re)connect)
	pokes  atomic.Uint64 // wake-ups asked for, for tests

	filterMu sync.Mutex // held while btcd's filter is changed
	mu       sync.Mutex
	client   *rpcclient.Client
	addrs    []btcutil.Address
}

// probeTimeout bounds the websocket handshake before each connection.
const probeTimeout = 10 * time.Second

// NewWebsocket returns a btcd websocket watcher.
func NewWebsocket(cfg WatchConfig) (*Websocket, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	t, err := newTracker(cfg)
	if err != nil {
		return nil, err
	}
	return &Websocket{tracker: t, kick: make(chan struct{}, 1), inputs: make(chan struct{}, 1)}, nil
}

func (w *Websocket) poke() {
	w.pokes.Add(1)
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Watch implements Watcher.
func (w *Websocket) Watch(addrs ...btcutil.Address) error {
	if err := w.watch(addrs); err != nil {
		return err
	}
	// Add to btcd's filter before returning, so that a payment made after Watch returns is
	// pushed to us. filterMu orders this against a reload in Run, which would otherwise replace
	// the filter with a list copied before these addresses were added. Without a connection, Run
	// loads the filter and resyncs the mempool on connecting.
	w.filterMu.Lock()
	defer w.filterMu.Unlock()
	w.mu.Lock()
	w.addrs = append(w.addrs, addrs...)
	c := w.client
	w.mu.Unlock()
	if c != nil {
		if err := c.LoadTxFilter(false, addrs, nil); err != nil {
			w.reload.Store(true)
		}
	}
	w.poke()
	return nil
}

func (w *Websocket) handlers() *rpcclient.NotificationHandlers {
	return &rpcclient.NotificationHandlers{
		OnClientConnected: func() {
			w.reload.Store(true)
			w.poke()
		},
		OnRelevantTxAccepted: func(raw []byte) {
			var tx wire.MsgTx
			if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
				w.log.Warn("onchain: undecodable transaction from btcd", "err", err)
				return
			}
			if w.acceptMempoolTx(&tx) {
				w.poke() // spends what a payment spends: judge that payment now
				return
			}
			select { // a payment: its inputs join the filter (Run)
			case w.inputs <- struct{}{}:
			default:
			}
		},
		// btcd sends each block as both filteredblockconnected and the deprecated
		// blockconnected: only the first is handled, so a block wakes the watcher once.
		OnFilteredBlockConnected:    func(int32, *wire.BlockHeader, []*btcutil.Tx) { w.poke() },
		OnFilteredBlockDisconnected: func(int32, *wire.BlockHeader) { w.poke() },
	}
}

// probe performs a websocket handshake with the node under ctx and closes it. rpcclient's own
// dial has neither a timeout nor a context, so a node that accepts connections but does not
// answer (hung, overloaded) would block Run for good; connect is only tried after a probe.
func (w *Websocket) probe(ctx context.Context) error {
	hc, base, err := w.cfg.Node.httpClient()
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	hc.Transport.(*http.Transport).DisableKeepAlives = true
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"ws", nil)
	if err != nil {
		return err
	}
	key := make([]byte, 16)
	rand.Read(key)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	user, pass, err := w.cfg.Node.auth()
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, pass)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("onchain: btcd's websocket: %w", err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusSwitchingProtocols:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return errors.New("onchain: btcd refused the RPC user name or password")
	}
	return fmt.Errorf("onchain: btcd's websocket answered %s", resp.Status)
}

func (w *Websocket) connect() (*rpcclient.Client, error) {
	cfg := &rpcclient.ConnConfig{
		Host: w.cfg.Node.Host, Endpoint: "ws", User: w.cfg.Node.User, Pass: w.cfg.Node.Pass,
		DisableTLS: len(w.cfg.Node.CACert) == 0, Certificates: w.cfg.Node.CACert,
		DisableConnectOnNew: true,
	}
	c, err := rpcclient.New(cfg, w.handlers())
	if err != nil {
		return nil, err
	}
	if err := c.Connect(1); err != nil {
		c.Shutdown()
		c.WaitForShutdown()
		return nil, err
	}
	return c, nil
}

// loadFilter loads btcd's filter afresh: the watched addresses and what unconfirmed payments
// spend, which it returns.
func (w *Websocket) loadFilter(c *rpcclient.Client) ([]wire.OutPoint, error) {
	w.filterMu.Lock()
	defer w.filterMu.Unlock()
	w.mu.Lock()
	addrs := append([]btcutil.Address(nil), w.addrs...)
	w.mu.Unlock()
	if err := c.NotifyBlocks(); err != nil {
		return nil, err
	}
	ops := w.pendingInputs()
	return ops, c.LoadTxFilter(true, addrs, ops)
}

// filterInputs adds to btcd's filter what unconfirmed payments spend and filtered does not
// hold yet, so that a transaction spending the same coins (a replacement) is pushed to us
// like a payment and judged at once, not at the next block or safety resync; once they are in,
// one resync judges a replacement sent before they were. A failure loads the whole filter
// again.
func (w *Websocket) filterInputs(c *rpcclient.Client, filtered map[wire.OutPoint]bool) {
	if c == nil || w.reload.Load() {
		return // the reload loads them
	}
	var add []wire.OutPoint
	for _, op := range w.pendingInputs() {
		if !filtered[op] {
			add = append(add, op)
		}
	}
	if len(add) == 0 {
		return
	}
	w.filterMu.Lock()
	err := c.LoadTxFilter(false, nil, add)
	w.filterMu.Unlock()
	if err != nil {
		w.reload.Store(true)
		return
	}
	for _, op := range add {
		filtered[op] = true
	}
	// A replacement broadcast between the payment being seen and its inputs joining the
	// filter was not pushed to us: one more resync judges it now, not at the safety resync.
	select {
	case w.kick <- struct{}{}:
	default: // a resync is already due
	}
}

// Run implements Watcher.
func (w *Websocket) Run(ctx context.Context) error {
	defer w.rpc.hc.CloseIdleConnections()
	tick := w.cfg.Clock.Ticker(w.cfg.Interval)
	defer tick.Stop()
	retry := w.cfg.Clock.Ticker(time.Second)
	defer retry.Stop()
	defer func() {
		w.mu.Lock()
		c := w.client
		w.client = nil
		w.mu.Unlock()
		if c != nil {
			c.Shutdown()
			c.WaitForShutdown()
		}
	}()
	failing := false
	filtered := map[wire.OutPoint]bool{} // payments' inputs in btcd's filter (filterInputs)
	for {
		w.mu.Lock()
		c := w.client
		w.mu.Unlock()
		if c == nil {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := w.probe(pctx)
			cancel()
			var nc *rpcclient.Client
			if err == nil {
				nc, err = w.connect()
			}
			if err == nil {
				w.mu.Lock()
				w.client, c = nc, nc
				w.mu.Unlock()
				w.reload.Store(true)
			} else if !failing {
				w.log.Error("onchain: cannot open btcd's websocket; polling meanwhile", "err", err)
			}
		}
		if c != nil && w.reload.Swap(false) {
			clear(filtered)
			ops, err := w.loadFilter(c)
			if err != nil {
				w.reload.Store(true)
				w.log.Warn("onchain: loading btcd's transaction filter failed; will retry", "err", err)
			}
			for _, op := range ops {
				filtered[op] = err == nil
			}
		}
		err := w.sync(ctx)
		if err == nil {
			w.filterInputs(c, filtered)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !failing {
				w.log.Error("onchain: cannot reach the bitcoin node; retrying", "err", err)
			}
			failing = true
		} else if failing {
			w.log.Info("onchain: bitcoin node reachable again")
			failing = false
		}
		wait := tick.C
		if failing || c == nil || w.reload.Load() {
			wait = retry.C
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-w.inputs:
				w.filterInputs(c, filtered)
			case <-w.kick:
				waiting = false
			case <-wait:
				waiting = false
			}
		}
	}
}
