//go:build linux

package invoice

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

func invoiceMacaroon() []byte {
	field := func(b []byte, num uint64, v []byte) []byte {
		b = binary.AppendUvarint(b, num<<3|2)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	id := field(nil, 1, []byte("nonce-nonce-nonce-nonce-"))
	id = field(id, 2, []byte("0"))
	for _, e := range []string{"invoices", "address"} {
		op := field(nil, 1, []byte(e))
		op = field(op, 2, []byte("read"))
		op = field(op, 2, []byte("write"))
		id = field(id, 3, op)
	}
	id = append([]byte{3}, id...)
	m := []byte{2, 1}
	m = binary.AppendUvarint(m, 3)
	m = append(m, "lnd"...)
	m = append(m, 2)
	m = binary.AppendUvarint(m, uint64(len(id)))
	m = append(m, id...)
	m = append(m, 0, 0, 6, 32)
	return append(m, make([]byte, 32)...)
}

// restLND models LND's REST subscription: settle_index=0 means no backlog, n>0 replays settles
// after n; "down" drops the stream and answers 503 (LND restarting).
type restLND struct {
	mu      sync.Mutex
	down    bool
	live    chan string
	settled []string // by settle index - 1
	hashes  map[string]int
	conns   []string
}

func (f *restLND) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		http.Error(w, `{"code":14,"message":"restarting"}`, http.StatusServiceUnavailable)
		return
	}
	switch {
	case r.URL.Path == "/v1/invoices/subscribe":
		n, _ := strconv.Atoi(r.URL.Query().Get("settle_index"))
		f.mu.Lock()
		f.conns = append(f.conns, r.URL.Query().Get("settle_index"))
		var backlog []string
		if n > 0 && n < len(f.settled) {
			backlog = append(backlog, f.settled[n:]...)
		}
		live := f.live
		f.mu.Unlock()
		w.WriteHeader(200)
		for _, l := range backlog {
			fmt.Fprintln(w, l)
		}
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case l, ok := <-live:
				if !ok {
					return // LND went away
				}
				fmt.Fprintln(w, l)
				w.(http.Flusher).Flush()
			}
		}
	case strings.HasPrefix(r.URL.Path, "/v1/invoice/"):
		h := strings.TrimPrefix(r.URL.Path, "/v1/invoice/")
		f.mu.Lock()
		i, ok := f.hashes[h]
		f.mu.Unlock()
		if !ok {
			fmt.Fprint(w, `{"state":"OPEN"}`)
			return
		}
		fmt.Fprint(w, f.settled[i-1][len(`{"result":`):len(f.settled[i-1])-1])
	default:
		http.NotFound(w, r)
	}
}

func (f *restLND) settle(hash string, msat int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, _ := hex.DecodeString(hash)
	idx := len(f.settled) + 1
	line := fmt.Sprintf(`{"result":{"memo":"m","r_hash":"%s","state":"SETTLED","amt_paid_msat":"%d","settle_index":"%d"}}`,
		base64.StdEncoding.EncodeToString(raw), msat, idx)
	f.settled = append(f.settled, line)
	f.hashes[hash] = idx
	if !f.down {
		f.live <- line
	}
}

// withFakeAdd uses the real REST client for the subscription and lookups, and skips BOLT11
// signing for AddInvoice.
type withFakeAdd struct {
	*lightning.Client
	*fakeLN
}

func (w withFakeAdd) AddInvoice(ctx context.Context, msat uint64, memo string, expiry time.Duration) (string, string, error) {
	return w.fakeLN.AddInvoice(ctx, msat, memo, expiry)
}
func (w withFakeAdd) Network() string { return "simnet" }
func (w withFakeAdd) Run(ctx context.Context, idx uint64, on func(Settled) error) error {
	return w.Client.Run(ctx, idx, on)
}
func (w withFakeAdd) LookupInvoice(ctx context.Context, h string) (Settled, bool, error) {
	return w.Client.LookupInvoice(ctx, h)
}

// Regression test for a reviewer's finding; the defect was: before the first settle index is stored, a subscription that reconnects (LND
// restarted) asks for settle_index=0, which LND answers without backlog: a payment settled while
// the stream was down is never credited in this run.
func TestSettleDuringFirstReconnectIsCredited(t *testing.T) {
	f := &restLND{live: make(chan string, 10), hashes: map[string]int{}}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := lightning.New(lightning.Config{Host: strings.TrimPrefix(srv.URL, "https://"), Network: "simnet",
		Macaroon: invoiceMacaroon(), TLSCert: certPEM, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "invoices"), Lightning: withFakeAdd{Client: c, fakeLN: &fakeLN{}}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(200 * time.Millisecond) // subscribed from 0
	a := s.Handle(ctx, "viewer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.Lightning, Minutes: 1})
	inv, _ := s.Invoice(a.ID)
	// LND restarts; the viewer's payment settles meanwhile.
	f.mu.Lock()
	f.down = true
	close(f.live)
	f.mu.Unlock()
	f.settle(inv.Hash, 100_000)
	time.Sleep(150 * time.Millisecond)
	f.mu.Lock()
	f.down, f.live = false, make(chan string, 10)
	f.mu.Unlock()
	k := ledger.Key{Stream: streamID, Viewer: "viewer"}
	for deadline := time.Now().Add(5 * time.Second); l.Remaining(k) != time.Minute && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	f.mu.Lock()
	t.Logf("subscriptions asked for settle_index %v", f.conns)
	f.mu.Unlock()
	if got := l.Remaining(k); got != time.Minute {
		t.Fatalf("viewer paid 100 sats (1 minute) while LND restarted; credited %v", got)
	}
}

// Regression test for a reviewer's finding; the defect was: the stored settle index is keyed by network only. After the seller points the app at
// another LND node (migration, restore from backup) whose settle indexes start again at 1, every
// settle is skipped (settle_index <= stored) until that node passes the old index.
func TestSettleIndexIsPerNode(t *testing.T) {
	f := &restLND{live: make(chan string, 10), hashes: map[string]int{}}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := lightning.New(lightning.Config{Host: strings.TrimPrefix(srv.URL, "https://"), Network: "simnet",
		Macaroon: invoiceMacaroon(), TLSCert: certPEM, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetMeta("lnd.settle_index.simnet", "500") // left by the seller's previous node
	s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l,
		StorePath: filepath.Join(dir, "invoices"), Lightning: withFakeAdd{Client: c, fakeLN: &fakeLN{}}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(200 * time.Millisecond)
	a := s.Handle(ctx, "viewer", invoicemsg.Request{Stream: streamID, Method: invoicemsg.Lightning, Minutes: 1})
	inv, _ := s.Invoice(a.ID)
	f.settle(inv.Hash, 100_000) // settle index 1 on the new node
	k := ledger.Key{Stream: streamID, Viewer: "viewer"}
	for deadline := time.Now().Add(5 * time.Second); l.Remaining(k) != time.Minute && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := l.Remaining(k); got != time.Minute {
		t.Fatalf("viewer paid 100 sats on the new node; credited %v", got)
	}
}
