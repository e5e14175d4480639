package lightning

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/filecoin-project/go-clock"
)

// SecretStore hands out secrets by name; the app backs it with the OS keyring (or its encrypted
// file). The wallet only reads LND's credentials through it and never writes them anywhere.
type SecretStore interface {
	Get(name string) ([]byte, error)
}

// Names of LND's secrets in a SecretStore.
const (
	SecretMacaroon = "lnd.invoice.macaroon"
	SecretTLSCert  = "lnd.tls.cert"
)

// Config says how to reach LND's REST API. Macaroon and TLSCert are secrets: Config never prints
// them (String, GoString and LogValue redact them).
type Config struct {
	Host     string // REST host:port, e.g. 127.0.0.1:8080
	Network  string // mainnet, testnet, signet, regtest or simnet
	Macaroon []byte // invoice macaroon, binary or hex
	TLSCert  []byte // LND's tls.cert (PEM)
	// MinBackoff and MaxBackoff bound the wait between reconnections (default 250 ms, 30 s).
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
	// Clock times reconnections and stamps settles; nil means the real one.
	Clock clock.Clock
}

// ConfigFromSecrets reads the macaroon and certificate from store.
func ConfigFromSecrets(store SecretStore, host, network string) (Config, error) {
	mac, err := store.Get(SecretMacaroon)
	if err != nil {
		return Config{}, fmt.Errorf("lightning: reading LND's macaroon from the keyring: %w", err)
	}
	cert, err := store.Get(SecretTLSCert)
	if err != nil {
		return Config{}, fmt.Errorf("lightning: reading LND's TLS certificate from the keyring: %w", err)
	}
	return Config{Host: host, Network: network, Macaroon: mac, TLSCert: cert}, nil
}

func (c Config) String() string {
	return fmt.Sprintf("LND at %s (%s), macaroon and certificate redacted", c.Host, c.Network)
}

// GoString redacts secrets from %#v.
func (c Config) GoString() string { return c.String() }

// LogValue redacts secrets from slog.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host), slog.String("network", c.Network), slog.String("macaroon", "[redacted]"))
}

// Client is an LND REST client limited to invoices.
type Client struct {
	cfg    Config
	macHex string
	hc     *http.Client // requests with a timeout
	stream *http.Client // the subscription: no overall timeout
	base   string
	log    *slog.Logger
}

// New checks the macaroon (refusing admin and other broad ones) and the certificate.
func New(cfg Config) (*Client, error) {
	if cfg.Host == "" || NetworkPrefix(cfg.Network) == "" {
		return nil, errors.New("lightning: LND needs a REST address and a network")
	}
	if err := CheckInvoiceMacaroon(cfg.Macaroon); err != nil {
		return nil, err
	}
	// A macaroon given as hex text (pasted, or a file of it) may end in a newline; a binary
	// one (LND's invoice.macaroon) is used as it is: its last bytes are a signature, and
	// trimming "white space" there would cut it (about 1 macaroon in 40 ends in such a byte).
	macHex := string(bytes.TrimSpace(cfg.Macaroon))
	if !isHex(macHex) {
		macHex = hex.EncodeToString(cfg.Macaroon)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.TLSCert) {
		return nil, errors.New("lightning: LND's TLS certificate is not a PEM certificate (use the tls.cert file from LND's directory)")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConns: 4,
		IdleConnTimeout: 30 * time.Second}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.New()
	}
	return &Client{cfg: cfg, macHex: macHex, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		stream: &http.Client{Transport: tr}, base: "https://" + cfg.Host, log: cfg.Log}, nil
}

// Network implements invoice.Lightning.
func (c *Client) Network() string { return c.cfg.Network }

// ErrRefused is LND refusing the macaroon (HTTP 401 or 403); ErrUnreachable is no HTTP answer
// from LND at all (nothing listening, no route, a timeout, a TLS handshake that failed), with
// the network error wrapped too.
var (
	ErrRefused     = errors.New("LND refused the macaroon")
	ErrUnreachable = errors.New("LND unreachable")
)

// apiError is LND's REST error body.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// APIError is an answer of LND's other than success, refusal of the macaroon (ErrRefused)
// or none at all (ErrUnreachable): LND was reached and said no.
type APIError struct {
	Status  int    // HTTP status
	Message string // LND's words
}

func (e *APIError) Error() string { return "LND: " + e.Message }

// Check proves that LND answers at the configured address, with this certificate, to this
// macaroon, and creates nothing: it looks up an invoice nobody made, which LND answers (not
// found: "unable to locate invoice", or "there are no existing invoices" on a node that has
// made none) only to a caller whose macaroon it accepted. A refused macaroon wraps
// ErrRefused, no answer ErrUnreachable.
func (c *Client) Check(ctx context.Context) error {
	var zero [32]byte
	_, _, err := c.LookupInvoice(ctx, hex.EncodeToString(zero[:]))
	var api *APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &api) && invoiceNotFound(api):
		return nil
	}
	return err
}

// invoiceNotFound reports whether LND's answer to a lookup says there is no such invoice.
func invoiceNotFound(e *APIError) bool {
	m := strings.ToLower(e.Message)
	return e.Status == http.StatusNotFound || strings.Contains(m, "unable to locate invoice") ||
		strings.Contains(m, "no existing invoices") || strings.Contains(m, "not found")
}

// macaroonRefusal reports whether LND's words refuse the macaroon (LND answers a macaroon it
// cannot verify with HTTP 500 and these words, not 401 or 403).
func macaroonRefusal(m string) bool {
	m = strings.ToLower(m)
	return strings.Contains(m, "verification failed") || strings.Contains(m, "permission denied") ||
		strings.Contains(m, "macaroon")
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Grpc-Metadata-macaroon", c.macHex)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("lightning: %w at %s: %w", ErrUnreachable, c.cfg.Host, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("lightning: reading LND's answer: %w", err)
	}
	return decodeAnswer(resp.StatusCode, resp.Status, raw, out)
}

// decodeAnswer reads LND's answer (HTTP status code and status line, body): a success's JSON
// into out; otherwise a refused macaroon wraps ErrRefused, and anything else is an *APIError with
// LND's words (the status line when it gave none).
func decodeAnswer(code int, status string, raw []byte, out any) error {
	if code != http.StatusOK {
		var e apiError
		_ = json.Unmarshal(raw, &e)
		if e.Message == "" {
			e.Message = status
		}
		if code == http.StatusForbidden || code == http.StatusUnauthorized || macaroonRefusal(e.Message) {
			return fmt.Errorf("lightning: %w: %s", ErrRefused, e.Message)
		}
		return fmt.Errorf("lightning: %w", &APIError{Status: code, Message: e.Message})
	}
	return json.Unmarshal(raw, out)
}

// u64 reads LND's uint64-as-string JSON fields.
type u64 uint64

func (v *u64) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "" || s == "null" {
		*v = 0
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	*v = u64(n)
	return err
}

// AddInvoice implements invoice.Lightning. It checks the invoice LND returns (network, amount,
// memo, hash) before handing it out.
func (c *Client) AddInvoice(ctx context.Context, msat uint64, memo string, expiry time.Duration) (string, string, error) {
	if msat == 0 || len(memo) > 639 {
		return "", "", errors.New("lightning: invoice needs an amount and a memo of at most 639 bytes")
	}
	var out struct {
		RHash          string `json:"r_hash"`
		PaymentRequest string `json:"payment_request"`
	}
	// private: LND adds route hints to the node's private channels only when asked. A small
	// node whose channels are all private (one channel to an LSP) would otherwise hand out
	// invoices no payer can find a route for; a node with public channels only gets none.
	req := map[string]any{"value_msat": strconv.FormatUint(msat, 10), "memo": memo,
		"expiry": strconv.FormatInt(int64(expiry/time.Second), 10), "private": true}
	if err := c.do(ctx, http.MethodPost, "/v1/invoices", req, &out); err != nil {
		return "", "", err
	}
	h, err := base64.StdEncoding.DecodeString(out.RHash)
	if err != nil || len(h) != 32 {
		return "", "", errors.New("lightning: LND returned an invoice without a valid payment hash")
	}
	inv, err := DecodeBolt11(out.PaymentRequest)
	if err != nil {
		return "", "", fmt.Errorf("lightning: LND returned an undecodable invoice: %w", err)
	}
	if inv.Network != c.cfg.Network {
		return "", "", fmt.Errorf("lightning: LND is on %s, but the wallet is set to %s", inv.Network, c.cfg.Network)
	}
	if inv.AmountMsat != msat || inv.Description != memo || inv.PaymentHashHex() != hex.EncodeToString(h) {
		return "", "", errors.New("lightning: LND returned an invoice that does not match the request")
	}
	return hex.EncodeToString(h), out.PaymentRequest, nil
}

// Settled is a paid invoice reported by LND.
type Settled struct {
	Hash        string // payment hash, hex
	AmtPaidMsat uint64
	SettleIndex uint64
	Memo        string
	SeenAt      time.Time // when the report arrived
}

type lndInvoice struct {
	Memo        string `json:"memo"`
	RHash       string `json:"r_hash"`
	State       string `json:"state"`
	AmtPaidMsat u64    `json:"amt_paid_msat"`
	SettleIndex u64    `json:"settle_index"`
}

// LookupInvoice asks LND about one invoice by payment hash (hex); settled reports whether it
// has been paid.
func (c *Client) LookupInvoice(ctx context.Context, hash string) (s Settled, settled bool, err error) {
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
		return Settled{}, false, errors.New("lightning: bad payment hash")
	}
	var inv lndInvoice
	if err := c.do(ctx, http.MethodGet, "/v1/invoice/"+hash, nil, &inv); err != nil {
		return Settled{}, false, err
	}
	if inv.State != "SETTLED" {
		return Settled{}, false, nil
	}
	return Settled{Hash: hash, AmtPaidMsat: uint64(inv.AmtPaidMsat), SettleIndex: uint64(inv.SettleIndex),
		Memo: inv.Memo, SeenAt: c.cfg.Clock.Now()}, true, nil
}

// connectGrace is how long a subscription must stay open before it counts as connected.
const connectGrace = 250 * time.Millisecond

// maxStreamLine caps one message of the subscription.
const maxStreamLine = 1 << 20

// Run follows settled invoices after settleIndex, reconnecting with backoff (after LND restarts,
// network errors or errors from onSettled), until ctx ends. onSettled runs in order, one at a
// time; a settle is passed on again after a reconnection unless onSettled returned nil for it.
func (c *Client) Run(ctx context.Context, settleIndex uint64, onSettled func(Settled) error) error {
	return c.RunNotify(ctx, settleIndex, onSettled, nil)
}

// RunNotify is Run that also calls onConnected (if not nil) once each connection has been
// open for connectGrace (LND's REST gateway sends no answer before the first event, so being
// open that long is the sign that LND took the subscription). It runs alongside onSettled and
// ends before RunNotify returns. LND replays nothing for a subscription from settle index 0, so
// a caller without a stored index looks up its open invoices there: one may have settled while
// the subscription was down.
func (c *Client) RunNotify(ctx context.Context, settleIndex uint64, onSettled func(Settled) error, onConnected func(context.Context)) error {
	defer c.Close()
	backoff := c.cfg.MinBackoff
	for {
		progressed, err := c.subscribe(ctx, &settleIndex, onSettled, onConnected)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if progressed {
			backoff = c.cfg.MinBackoff
		}
		c.log.Warn("lightning: invoice subscription interrupted; reconnecting", "err", err, "in", backoff,
			"settle_index", settleIndex)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.cfg.Clock.After(backoff):
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

func (c *Client) subscribe(ctx context.Context, idx *uint64, onSettled func(Settled) error, onConnected func(context.Context)) (progressed bool, err error) {
	if onConnected != nil {
		conn, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		defer func() { cancel(); <-done }()
		go func() {
			defer close(done)
			select {
			case <-conn.Done():
			case <-c.cfg.Clock.After(connectGrace):
				onConnected(conn)
			}
		}()
	}
	q := url.Values{"settle_index": {strconv.FormatUint(*idx, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/invoices/subscribe?"+q.Encode(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Grpc-Metadata-macaroon", c.macHex)
	resp, err := c.stream.Do(req)
	if err != nil {
		return false, fmt.Errorf("LND unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("LND answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		inv, err := decodeStreamLine(line)
		if err != nil {
			return progressed, err
		}
		progressed = true
		s, ok, err := settledAfter(inv, *idx)
		if err != nil {
			return progressed, err
		}
		if !ok {
			continue
		}
		s.SeenAt = c.cfg.Clock.Now()
		if err := onSettled(s); err != nil {
			return progressed, fmt.Errorf("crediting invoice %s: %w", s.Hash, err)
		}
		*idx = s.SettleIndex
	}
	if err := sc.Err(); err != nil {
		return progressed, err
	}
	return progressed, io.ErrUnexpectedEOF
}

// decodeStreamLine reads one message of the invoice subscription: the invoice it carries (nil
// for none), or LND's error, or an error saying the line is not a message.
func decodeStreamLine(line []byte) (*lndInvoice, error) {
	var msg struct {
		Result *lndInvoice `json:"result"`
		Error  *apiError   `json:"error"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		return nil, fmt.Errorf("undecodable message from LND: %w", err)
	}
	if msg.Error != nil {
		return nil, fmt.Errorf("LND: %s", msg.Error.Message)
	}
	return msg.Result, nil
}

// settledAfter reports inv as a Settled (SeenAt left zero) when it is settled after settle index
// idx; a settled invoice without a valid payment hash is an error.
func settledAfter(inv *lndInvoice, idx uint64) (Settled, bool, error) {
	if inv == nil || inv.State != "SETTLED" || uint64(inv.SettleIndex) <= idx {
		return Settled{}, false, nil
	}
	h, err := base64.StdEncoding.DecodeString(inv.RHash)
	if err != nil || len(h) != 32 {
		return Settled{}, false, errors.New("LND sent a settled invoice without a payment hash")
	}
	return Settled{Hash: hex.EncodeToString(h), AmtPaidMsat: uint64(inv.AmtPaidMsat),
		SettleIndex: uint64(inv.SettleIndex), Memo: inv.Memo}, true, nil
}

// Close releases idle connections to LND. The client stays usable.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// String redacts the client's secrets.
func (c *Client) String() string { return "lightning client for " + c.cfg.String() }

// GoString redacts the client's secrets from %#v.
func (c *Client) GoString() string { return c.String() }

// LogValue redacts the client's secrets from slog.
func (c *Client) LogValue() slog.Value { return c.cfg.LogValue() }
