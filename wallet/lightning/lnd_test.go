package lightning

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLND replays LND REST answers; the real node is exercised in wallet/invoice's tests. This
// covers what is hard to provoke there: malformed and oversized stream messages, stream errors,
// replays at the resume index, and a handler failure.
type fakeLND struct {
	mu       sync.Mutex
	conns    []string // settle_index asked by each subscription
	scripts  [][]string
	invoice  map[string]string
	macaroon string
	lastAdd  map[string]any // the body of the last invoice request
}

func (f *fakeLND) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Grpc-Metadata-macaroon") != f.macaroon {
		http.Error(w, `{"code":2,"message":"verification failed"}`, http.StatusForbidden)
		return
	}
	switch r.URL.Path {
	case "/v1/invoices/subscribe":
		f.mu.Lock()
		f.conns = append(f.conns, r.URL.Query().Get("settle_index"))
		var lines []string
		if len(f.scripts) > 0 {
			lines, f.scripts = f.scripts[0], f.scripts[1:]
		}
		f.mu.Unlock()
		for _, l := range lines {
			fmt.Fprintln(w, l)
			w.(http.Flusher).Flush()
		}
		if lines == nil {
			<-r.Context().Done() // hold the stream open
		}
	case "/v1/invoices":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.lastAdd = body
		f.mu.Unlock()
		w.Write([]byte(`{"r_hash":"` + f.invoice["hash"] + `","payment_request":"` + f.invoice["pr"] + `"}`))
	default:
		http.NotFound(w, r)
	}
}

func settledLine(idx int, hash byte, msat int) string {
	h := make([]byte, 32)
	h[0] = hash
	return fmt.Sprintf(`{"result":{"memo":"m","r_hash":"%s","state":"SETTLED","amt_paid_msat":"%d","settle_index":"%d"}}`,
		base64.StdEncoding.EncodeToString(h), msat, idx)
}

func newFake(t *testing.T, f *fakeLND, network string) *Client {
	return newFakeWith(t, f, network, testMacaroon(invoiceOps), nil)
}

// newFakeWith is newFake with the macaroon given to New as given (sent is what LND must
// receive, in hex; nil: mac's own bytes).
func newFakeWith(t *testing.T, f *fakeLND, network string, mac, sent []byte) *Client {
	if sent == nil {
		sent = mac
	}
	f.macaroon = hex.EncodeToString(sent)
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := New(Config{Host: strings.TrimPrefix(srv.URL, "https://"), Network: network, Macaroon: mac, TLSCert: certPEM,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSubscriptionResumesAndSurvivesBadMessages(t *testing.T) {
	f := &fakeLND{scripts: [][]string{
		{`{"result":{"state":"OPEN","settle_index":"0"}}`, settledLine(5, 1, 1000)}, // then EOF
		{settledLine(5, 1, 1000), settledLine(6, 2, 2000), `{"error":{"code":14,"message":"shutting down"}}`},
		{settledLine(7, 3, 3000)}, // the handler fails the first time
		{`not json`},
		{strings.Repeat("x", maxStreamLine+10)},
		{settledLine(7, 3, 3000), settledLine(8, 4, 4000)},
	}}
	c := newFake(t, f, "simnet")
	var got []uint64
	failed := false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- c.Run(ctx, 4, func(s Settled) error {
			if s.SettleIndex == 7 && !failed {
				failed = true
				return errors.New("disk full")
			}
			got = append(got, s.SettleIndex)
			if s.SettleIndex == 8 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("stuck; got %v, connections %v", got, f.conns)
	}
	if fmt.Sprint(got) != "[5 6 7 8]" {
		t.Fatalf("settles %v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := "[4 5 6 6 6 6]"; fmt.Sprint(f.conns[:6]) != want {
		t.Fatalf("resume indexes %v, want %v", f.conns, want)
	}
}

func TestAddInvoiceChecksLNDsAnswer(t *testing.T) {
	hash, _ := hex.DecodeString(specHash)
	f := &fakeLND{invoice: map[string]string{"hash": base64.StdEncoding.EncodeToString(hash), "pr": vecCoffee}}
	c := newFake(t, f, "mainnet")
	h, pr, err := c.AddInvoice(context.Background(), 250_000_000, "1 cup coffee", time.Minute)
	if err != nil || h != specHash || pr != vecCoffee {
		t.Fatalf("%s %s %v", h, pr, err)
	}
	// Route hints to private channels: without them a node whose channels are all private
	// (one channel to an LSP) hands out invoices no payer can route to.
	f.mu.Lock()
	if f.lastAdd["private"] != true {
		t.Errorf("the invoice request asks for no route hints to private channels: %v", f.lastAdd)
	}
	f.mu.Unlock()
	if _, _, err := c.AddInvoice(context.Background(), 1000, "1 cup coffee", time.Minute); err == nil {
		t.Error("amount mismatch accepted")
	}
	if _, _, err := c.AddInvoice(context.Background(), 250_000_000, "other", time.Minute); err == nil {
		t.Error("memo mismatch accepted")
	}
	c2 := newFake(t, &fakeLND{invoice: f.invoice}, "simnet")
	if _, _, err := c2.AddInvoice(context.Background(), 250_000_000, "1 cup coffee", time.Minute); err == nil || !strings.Contains(err.Error(), "mainnet") {
		t.Errorf("network mismatch: %v", err)
	}
	f.macaroon = "00"
	if _, _, err := c.AddInvoice(context.Background(), 250_000_000, "1 cup coffee", time.Minute); err == nil || !strings.Contains(err.Error(), "refused the macaroon") {
		t.Errorf("refused macaroon: %v", err)
	}
}

// The macaroon reaches LND whole: a binary one whose signature ends in bytes that look like
// white space is not trimmed (it was, cutting about 1 macaroon in 40), and one given as hex text
// with a newline is read as hex.
func TestMacaroonSentWhole(t *testing.T) {
	hash, _ := hex.DecodeString(specHash)
	inv := map[string]string{"hash": base64.StdEncoding.EncodeToString(hash), "pr": vecCoffee}
	spaced := testMacaroon(invoiceOps)
	copy(spaced[len(spaced)-3:], " \t\n")
	plain := testMacaroon(invoiceOps)
	tests := []struct {
		name      string
		mac, sent []byte
	}{
		{"binary, signature ending in white-space bytes", spaced, spaced},
		{"binary", plain, plain},
		{"hex text with a newline", []byte(hex.EncodeToString(plain) + "\n"), plain},
		{"hex text in spaces", []byte("  " + hex.EncodeToString(spaced) + "\r\n"), spaced},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeWith(t, &fakeLND{invoice: inv}, "mainnet", tc.mac, tc.sent)
			if _, _, err := c.AddInvoice(context.Background(), 250_000_000, "1 cup coffee", time.Minute); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type secrets map[string][]byte

func (s secrets) Get(name string) ([]byte, error) {
	if b, ok := s[name]; ok {
		return b, nil
	}
	return nil, errors.New("not in the keyring")
}

func TestConfigFromSecrets(t *testing.T) {
	mac := testMacaroon(invoiceOps)
	cfg, err := ConfigFromSecrets(secrets{SecretMacaroon: mac, SecretTLSCert: []byte("cert")}, "127.0.0.1:8080", "mainnet")
	if err != nil || string(cfg.Macaroon) != string(mac) || cfg.Host != "127.0.0.1:8080" {
		t.Fatalf("%v %v", cfg, err)
	}
	if _, err := ConfigFromSecrets(secrets{SecretTLSCert: []byte("cert")}, "h", "mainnet"); err == nil || !strings.Contains(err.Error(), "keyring") {
		t.Fatalf("missing macaroon: %v", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(s, hex.EncodeToString(mac)) || strings.Contains(s, string(mac[:20])) {
		t.Fatalf("secret printed: %s", s)
	}
}
