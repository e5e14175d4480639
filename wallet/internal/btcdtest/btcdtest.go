//go:build linux

// Package btcdtest runs a real btcd full node in simnet for tests: started in a temporary
// directory on loopback, mined to segwit activation, with a miner key whose mature coinbase
// outputs the tests spend to pay invoices. The binary is built by scripts/tools.d/btcd.sh.
package btcdtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Version is the btcd release the tests run; scripts/tools.d/btcd.sh builds it.
const Version = "v0.24.2"

// Net is the network the test nodes run.
var Net = &chaincfg.SimNetParams

const (
	user = "dvtest"
	pass = "dvtestpass"
)

// Binary finds the btcd binary: $DV_BTCD, else $DV_TOOLS_CACHE/btcd-<Version>/btcd, else the
// default tools cache. A missing binary fails the test: it is never skipped.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DV_BTCD"); p != "" {
		return p
	}
	cache := os.Getenv("DV_TOOLS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "dazaar-vision", "tools")
	}
	p := filepath.Join(cache, "btcd-"+Version, "btcd")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("btcd %s not found at %s: build it with `make tools` (scripts/tools.d/btcd.sh) or set DV_BTCD", Version, p)
	}
	return p
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// MinerKey is the test-only key the nodes mine to.
func MinerKey() *btcec.PrivateKey {
	seed := sha256.Sum256([]byte("dazaar-vision btcdtest miner; never use with real coins"))
	k, _ := btcec.PrivKeyFromBytes(seed[:])
	return k
}

// MinerAddress is MinerKey's P2WPKH address.
func MinerAddress() *btcutil.AddressWitnessPubKeyHash {
	a, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(MinerKey().PubKey().SerializeCompressed()), Net)
	return a
}

// Options for Start.
type Options struct {
	TLS    bool // serve RPC over TLS (lnd needs it)
	Listen bool // accept P2P connections on loopback (for a second node)
}

// Node is a running btcd.
type Node struct {
	t       testing.TB
	bin     string
	Dir     string
	RPCAddr string
	P2PAddr string
	opts    Options
	cmd     *exec.Cmd
	exited  chan error
	hc      *http.Client

	mu    sync.Mutex
	spent map[wire.OutPoint]bool
	next  int32 // lowest block height whose coinbase may be unspent
}

// Start runs a btcd in a temporary directory and stops it when the test ends. It does not mine.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	n := &Node{t: t, bin: Binary(t), Dir: t.TempDir(), RPCAddr: "127.0.0.1:" + FreePort(t), opts: opts,
		spent: map[wire.OutPoint]bool{}}
	if opts.Listen {
		n.P2PAddr = "127.0.0.1:" + FreePort(t)
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "btcd.conf"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

// Setup starts a node and mines past segwit activation and coinbase maturity.
func Setup(t testing.TB, opts Options) *Node {
	n := Start(t, opts)
	n.Generate(300)
	return n
}

func (n *Node) start() {
	t := n.t
	t.Helper()
	args := []string{"--simnet", "--datadir=" + filepath.Join(n.Dir, "data"), "--logdir=" + filepath.Join(n.Dir, "logs"),
		"--configfile=" + filepath.Join(n.Dir, "btcd.conf"), "--rpcuser=" + user, "--rpcpass=" + pass,
		"--rpclisten=" + n.RPCAddr, "--miningaddr=" + MinerAddress().EncodeAddress(),
		"--txindex", "--utxocachemaxsize=1", "--nocfilters", "--debuglevel=info"}
	if n.opts.Listen {
		args = append(args, "--listen="+n.P2PAddr)
	} else {
		args = append(args, "--nolisten")
	}
	if n.opts.TLS {
		args = append(args, "--rpccert="+n.CertPath(), "--rpckey="+filepath.Join(n.Dir, "rpc.key"))
	} else {
		args = append(args, "--notls") // loopback only
	}
	out, err := os.OpenFile(filepath.Join(n.Dir, "btcd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(n.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+n.Dir) // btcd creates ~/.btcd regardless
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting btcd: %v", err)
	}
	out.Close()
	n.cmd, n.exited = cmd, make(chan error, 1)
	go func() { n.exited <- cmd.Wait() }()
	n.hc = &http.Client{Timeout: 30 * time.Second}
	scheme := "http"
	if n.opts.TLS {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(n.CertPath()); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("btcd wrote no TLS certificate")
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // the file is written whole before listening
		n.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: n.tlsConfig()}}
		scheme = "https"
	}
	_ = scheme
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-n.exited:
			n.exited <- err
			b, _ := os.ReadFile(filepath.Join(n.Dir, "btcd.out"))
			t.Fatalf("btcd exited early: %v\n%s", err, b)
		default:
		}
		if c, err := net.DialTimeout("tcp", n.RPCAddr, 100*time.Millisecond); err == nil {
			c.Close()
			if _, err := n.call("getblockcount"); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("btcd RPC not ready after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CertPath is the RPC TLS certificate (with Options.TLS).
func (n *Node) CertPath() string { return filepath.Join(n.Dir, "rpc.cert") }

// Cert is the PEM RPC certificate, or nil without TLS.
func (n *Node) Cert() []byte {
	if !n.opts.TLS {
		return nil
	}
	b, err := os.ReadFile(n.CertPath())
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// User and Pass are the RPC credentials.
func (n *Node) User() string { return user }

// Pass is the RPC password.
func (n *Node) Pass() string { return pass }

// Stop stops btcd by its own PID (SIGTERM, then SIGKILL after 10 s). Idempotent.
func (n *Node) Stop() {
	if n.hc != nil {
		n.hc.CloseIdleConnections()
	}
	if n.cmd == nil {
		return
	}
	StopProcess(n.cmd, n.exited, 10*time.Second)
	n.cmd = nil
}

// StopProcess sends a node SIGTERM and waits for exited (fed by cmd.Wait),
// killing it if it has not exited within grace.
func StopProcess(cmd *exec.Cmd, exited <-chan error, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart stops btcd and starts it again on the same data directory and ports.
func (n *Node) Restart() {
	n.Stop()
	n.start()
}

type rpcErr struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcErr) Error() string { return fmt.Sprintf("btcd: %s (%d)", e.Message, e.Code) }

func (n *Node) call(method string, params ...any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	scheme := "http"
	if n.opts.TLS {
		scheme = "https"
	}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", scheme+"://"+n.RPCAddr+"/", bytes.NewReader(body))
	req.SetBasicAuth(user, pass)
	resp, err := n.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcErr         `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return nil, fmt.Errorf("btcd %s: HTTP %s: %w", method, resp.Status, err)
	}
	if env.Error != nil {
		return nil, env.Error
	}
	return env.Result, nil
}

// Call runs an RPC and fails the test on error.
func (n *Node) Call(method string, params ...any) json.RawMessage {
	n.t.Helper()
	r, err := n.call(method, params...)
	if err != nil {
		n.t.Fatalf("btcd %s: %v", method, err)
	}
	return r
}

// Generate mines blocks and returns their hashes.
func (n *Node) Generate(blocks int) []string {
	n.t.Helper()
	var hs []string
	if err := json.Unmarshal(n.Call("generate", blocks), &hs); err != nil {
		n.t.Fatal(err)
	}
	return hs
}

// Height is the node's block count.
func (n *Node) Height() int32 {
	n.t.Helper()
	var h int32
	json.Unmarshal(n.Call("getblockcount"), &h)
	return h
}

// Connect makes n connect to other's P2P listener (other needs Options.Listen).
func (n *Node) Connect(other *Node) {
	n.t.Helper()
	n.Call("addnode", other.P2PAddr, "onetry")
}

// WaitHeight waits until the node's chain reaches h.
func (n *Node) WaitHeight(h int32) {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n.Height() < h {
		if time.Now().After(deadline) {
			n.t.Fatalf("node stuck at height %d, want %d", n.Height(), h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Coin is a spendable output of the miner key.
type Coin struct {
	OutPoint wire.OutPoint
	Value    int64
	PkScript []byte
}

// NextCoin returns a mature coinbase output of the miner not yet used by this Node.
func (n *Node) NextCoin() Coin {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	tip := n.Height()
	for h := max(n.next, 1); h <= tip-100; h++ {
		n.next = h
		var hash string
		json.Unmarshal(n.Call("getblockhash", h), &hash)
		var raw string
		json.Unmarshal(n.Call("getblock", hash, 0), &raw)
		b, _ := hex.DecodeString(raw)
		var blk wire.MsgBlock
		if err := blk.Deserialize(bytes.NewReader(b)); err != nil {
			n.t.Fatal(err)
		}
		cb := blk.Transactions[0]
		op := wire.OutPoint{Hash: cb.TxHash(), Index: 0}
		if n.spent[op] {
			continue
		}
		n.spent[op] = true
		return Coin{OutPoint: op, Value: cb.TxOut[0].Value, PkScript: cb.TxOut[0].PkScript}
	}
	n.t.Fatal("no mature coinbase left")
	return Coin{}
}

// Output is one payment output.
type Output struct {
	Address btcutil.Address
	Sats    int64
}

// BuildTx spends coin to outs (plus change back to the miner), paying fee, signalling RBF.
func BuildTx(t testing.TB, coin Coin, fee int64, outs ...Output) *wire.MsgTx {
	t.Helper()
	tx := wire.NewMsgTx(2)
	in := wire.NewTxIn(&coin.OutPoint, nil, nil)
	in.Sequence = wire.MaxTxInSequenceNum - 2 // BIP125 replaceable
	tx.AddTxIn(in)
	left := coin.Value - fee
	for _, o := range outs {
		s, err := txscript.PayToAddrScript(o.Address)
		if err != nil {
			t.Fatal(err)
		}
		tx.AddTxOut(wire.NewTxOut(o.Sats, s))
		left -= o.Sats
	}
	if left < 0 {
		t.Fatalf("coin of %d sats cannot pay %+v", coin.Value, outs)
	}
	if left > 1000 {
		tx.AddTxOut(wire.NewTxOut(left, coin.PkScript))
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(coin.PkScript, coin.Value)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, coin.Value, coin.PkScript,
		txscript.SigHashAll, MinerKey(), true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = wit
	return tx
}

// Send submits tx to the node's mempool.
func (n *Node) Send(tx *wire.MsgTx) (chainhash.Hash, error) {
	var buf bytes.Buffer
	tx.Serialize(&buf)
	if _, err := n.call("sendrawtransaction", hex.EncodeToString(buf.Bytes())); err != nil {
		return chainhash.Hash{}, err
	}
	return tx.TxHash(), nil
}

// Pay sends sats to addr from a fresh coin and returns the transaction.
func (n *Node) Pay(addr btcutil.Address, sats int64) *wire.MsgTx {
	n.t.Helper()
	tx := BuildTx(n.t, n.NextCoin(), 1000, Output{addr, sats})
	if _, err := n.Send(tx); err != nil {
		n.t.Fatalf("sending payment: %v", err)
	}
	return tx
}

// InMempool reports whether txid is in the node's mempool.
func (n *Node) InMempool(txid chainhash.Hash) bool {
	var ids []string
	json.Unmarshal(n.Call("getrawmempool"), &ids)
	for _, id := range ids {
		if id == txid.String() {
			return true
		}
	}
	return false
}

func (n *Node) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(n.Cert())
	return &tls.Config{RootCAs: pool}
}
