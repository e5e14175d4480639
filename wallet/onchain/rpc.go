package onchain

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// NodeConfig says how to reach a bitcoin node's JSON-RPC interface (btcd or Bitcoin Core).
type NodeConfig struct {
	Host string // host:port
	User string
	Pass string
	// CookieFile is Bitcoin Core's .cookie file; when set it is read for each call (Core
	// rewrites it on every start) and User and Pass are ignored.
	CookieFile string
	// CACert is the node's PEM TLS certificate (btcd's rpc.cert). Empty means plain HTTP, which
	// is only sensible on loopback (Bitcoin Core serves RPC without TLS).
	CACert []byte
}

// auth returns the RPC credentials: the cookie file's if set, else User and Pass.
func (c NodeConfig) auth() (user, pass string, err error) {
	if c.CookieFile == "" {
		return c.User, c.Pass, nil
	}
	b, err := os.ReadFile(c.CookieFile)
	if err != nil {
		return "", "", fmt.Errorf("onchain: reading the node's cookie file: %w", err)
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		return "", "", errors.New("onchain: the node's cookie file is not user:password")
	}
	return user, pass, nil
}

// String redacts the password.
func (c NodeConfig) String() string {
	tls := "TLS"
	if len(c.CACert) == 0 {
		tls = "plain HTTP"
	}
	return fmt.Sprintf("bitcoin node at %s (%s, user %q, password redacted)", c.Host, tls, c.User)
}

// GoString redacts the password from %#v.
func (c NodeConfig) GoString() string { return c.String() }

// LogValue redacts the password from slog.
func (c NodeConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host), slog.String("user", c.User), slog.String("pass", "[redacted]"),
		slog.Bool("tls", len(c.CACert) > 0))
}

// checkTransport refuses sending the RPC password in the clear to another machine: without
// CACert the node must be on loopback.
func (c NodeConfig) checkTransport() error {
	if len(c.CACert) > 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Host)
	if err != nil {
		host = c.Host
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("onchain: the node at %s is not on this machine, and without its TLS certificate the RPC "+
		"password would cross the network unencrypted; give the node's certificate (btcd: rpc.cert), or reach it "+
		"through an SSH tunnel or VPN on a loopback address", c.Host)
}

func (c NodeConfig) httpClient() (*http.Client, string, error) {
	if err := c.checkTransport(); err != nil {
		return nil, "", err
	}
	scheme := "http"
	tr := &http.Transport{MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second}
	if len(c.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CACert) {
			return nil, "", errors.New("onchain: the node's TLS certificate is not a PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	return &http.Client{Transport: tr}, scheme + "://" + c.Host + "/", nil
}

// ErrNodeAuth is the node refusing the RPC credentials (HTTP 401 or 403): errors.Is tells it
// from a node that cannot be reached.
var ErrNodeAuth = errors.New("the node refused the RPC user name or password")

// ErrNodeUnreachable wraps every failure to get an HTTP answer from the node (nothing
// listening, no route, a timeout, a TLS handshake that failed); the network error is wrapped too.
var ErrNodeUnreachable = errors.New("the node cannot be reached")

// CheckNode asks the node for its block count, to learn before anything depends on it that
// the node answers at cfg.Host and takes the credentials: errors.Is(err, ErrNodeAuth) for
// refused credentials, ErrNodeUnreachable for no answer.
func CheckNode(ctx context.Context, cfg NodeConfig) error {
	c, err := newRPCClient(cfg)
	if err != nil {
		return err
	}
	defer c.hc.CloseIdleConnections()
	_, err = c.blockCount(ctx)
	return err
}

// ErrNodeWantsTLS is a node that answers RPC over TLS only (btcd's default) asked over plain
// HTTP: it needs its certificate (btcd's rpc.cert).
var ErrNodeWantsTLS = errors.New("the bitcoin node answers over TLS only: give its certificate (btcd's rpc.cert)")

// rpcClient is a minimal JSON-RPC 1.0 client for the calls both btcd and Bitcoin Core answer.
type rpcClient struct {
	cfg  NodeConfig
	hc   *http.Client
	url  string
	next atomic.Uint64
}

func newRPCClient(cfg NodeConfig) (*rpcClient, error) {
	hc, url, err := cfg.httpClient()
	if err != nil {
		return nil, err
	}
	return &rpcClient{cfg: cfg, hc: hc, url: url}, nil
}

// maxRPCResponse caps a response body; a 4 MB block is 8 MB of hex.
const maxRPCResponse = 32 << 20

// RPCError is an error answered by the node.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("node: %s (code %d)", e.Message, e.Code) }

func (c *rpcClient) call(ctx context.Context, method string, result any, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": c.next.Add(1), "method": method, "params": params})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	user, pass, err := c.cfg.auth()
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("onchain: %w at %s: %w", ErrNodeUnreachable, c.cfg.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("onchain: %w (HTTP %d)", ErrNodeAuth, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCResponse+1))
	if err != nil {
		return fmt.Errorf("onchain: reading node answer: %w", err)
	}
	if len(raw) > maxRPCResponse {
		return errors.New("onchain: node answer too large")
	}
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(raw, []byte("HTTP request to an HTTPS server")) {
		// btcd serves RPC over TLS by default; Go's server answers plain HTTP so.
		return fmt.Errorf("onchain: %w", ErrNodeWantsTLS)
	}
	return decodeAnswer(raw, resp.Status, method, result)
}

// decodeAnswer reads the body of the node's answer (status and method are for the error) into
// result: the node's own error as an *RPCError, a body that is not JSON-RPC as an error saying so.
func decodeAnswer(raw []byte, status, method string, result any) error {
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("onchain: node answered %s to %s with something that is not JSON-RPC", status, method)
	}
	if env.Error != nil {
		return env.Error
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(env.Result, result)
}

func (c *rpcClient) blockCount(ctx context.Context) (int32, error) {
	var n int32
	return n, c.call(ctx, "getblockcount", &n)
}

func (c *rpcClient) blockHash(ctx context.Context, h int32) (chainhash.Hash, error) {
	var s string
	if err := c.call(ctx, "getblockhash", &s, h); err != nil {
		return chainhash.Hash{}, err
	}
	hh, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, err
	}
	return *hh, nil
}

func (c *rpcClient) bestBlockHash(ctx context.Context) (chainhash.Hash, error) {
	var s string
	if err := c.call(ctx, "getbestblockhash", &s); err != nil {
		return chainhash.Hash{}, err
	}
	hh, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, err
	}
	return *hh, nil
}

// block fetches a block raw (verbosity 0) and decodes it locally: the most portable form.
func (c *rpcClient) block(ctx context.Context, h chainhash.Hash) (*wire.MsgBlock, error) {
	var s string
	if err := c.call(ctx, "getblock", &s, h.String(), 0); err != nil {
		return nil, err
	}
	blk, err := decodeBlock(s)
	if err != nil {
		return nil, fmt.Errorf("onchain: block %s: %w", h, err)
	}
	return blk, nil
}

// decodeBlock decodes a raw block as getblock (verbosity 0) answers it: hex.
func decodeBlock(s string) (*wire.MsgBlock, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, err
	}
	return &blk, nil
}

func (c *rpcClient) rawMempool(ctx context.Context) ([]chainhash.Hash, error) {
	var ss []string
	if err := c.call(ctx, "getrawmempool", &ss, false); err != nil {
		return nil, err
	}
	out := make([]chainhash.Hash, 0, len(ss))
	for _, s := range ss {
		h, err := chainhash.NewHashFromStr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, *h)
	}
	return out, nil
}

var errTxNotFound = errors.New("onchain: transaction not found")

func (c *rpcClient) rawTx(ctx context.Context, h chainhash.Hash) (*wire.MsgTx, error) {
	var s string
	if err := c.call(ctx, "getrawtransaction", &s, h.String(), 0); err != nil {
		var re *RPCError
		if errors.As(err, &re) && (re.Code == -5 || strings.Contains(re.Message, "No information")) {
			return nil, errTxNotFound
		}
		return nil, err
	}
	return decodeTx(s)
}

// decodeTx decodes a raw transaction as getrawtransaction (verbose false) answers it: hex.
func decodeTx(s string) (*wire.MsgTx, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, err
	}
	return &tx, nil
}
