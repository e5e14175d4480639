//go:build linux

// Package lndtest runs real LND nodes for tests, on a btcdtest simnet node (which must serve RPC
// over TLS). The binary is built by scripts/tools.d/lnd.sh. Test-only operations (funding,
// channels, payments) use the admin macaroon over REST; the code under test gets the
// invoice macaroon.
package lndtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
)

// Version is the LND release the tests run.
const Version = "v0.20.0-beta"

// build names the build of Version that scripts/tools.d/lnd.sh makes (without the compiler's
// optimisations), and so its directory in the tools cache.
const build = Version + "-noopt"

// Binary finds lnd: $DV_LND, else $DV_TOOLS_CACHE/lnd-<build>/lnd, else the default cache. A
// missing binary fails the test.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DV_LND"); p != "" {
		return p
	}
	cache := os.Getenv("DV_TOOLS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "dazaar-vision", "tools")
	}
	p := filepath.Join(cache, "lnd-"+build, "lnd")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("lnd %s not found at %s: build it with `make tools` (scripts/tools.d/lnd.sh) or set DV_LND", Version, p)
	}
	return p
}

// Node is a running LND.
type Node struct {
	t       testing.TB
	Name    string
	Dir     string
	P2P     string
	RPC     string
	REST    string
	btcd    *btcdtest.Node
	cmd     *exec.Cmd
	exited  chan error
	hc      *http.Client
	PubKey  string
	started time.Time
}

// Start runs an LND in a temporary directory on btcd and waits until it is synced.
func Start(t testing.TB, name string, btcd *btcdtest.Node) *Node {
	t.Helper()
	n := &Node{t: t, Name: name, Dir: t.TempDir(), P2P: "127.0.0.1:" + btcdtest.FreePort(t),
		RPC: "127.0.0.1:" + btcdtest.FreePort(t), REST: "127.0.0.1:" + btcdtest.FreePort(t), btcd: btcd}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

func (n *Node) start() {
	t := n.t
	t.Helper()
	args := []string{"--lnddir=" + n.Dir, "--noseedbackup", "--bitcoin.simnet", "--bitcoin.node=btcd",
		"--btcd.rpchost=" + n.btcd.RPCAddr, "--btcd.rpcuser=" + n.btcd.User(), "--btcd.rpcpass=" + n.btcd.Pass(),
		"--btcd.rpccert=" + n.btcd.CertPath(), "--listen=" + n.P2P, "--rpclisten=" + n.RPC, "--restlisten=" + n.REST,
		"--nobootstrap", "--bitcoin.defaultchanconfs=1", "--trickledelay=50", "--debuglevel=info",
		"--alias=" + n.Name}
	out, err := os.OpenFile(filepath.Join(n.Dir, "lnd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), "HOME="+n.Dir)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	n.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting lnd: %v", err)
	}
	out.Close()
	n.cmd, n.exited = cmd, make(chan error, 1)
	go func() { n.exited <- cmd.Wait() }()
}

// WaitReady waits until LND answers and is synced to the chain.
func (n *Node) WaitReady() {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		select {
		case err := <-n.exited:
			n.exited <- err
			t.Fatalf("lnd %s exited: %v\n%s", n.Name, err, n.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lnd %s not synced after 120 s\n%s", n.Name, n.LogTail())
		}
		if _, err := os.Stat(n.MacaroonPath("admin")); err == nil {
			if n.hc == nil {
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(n.TLSCert())
				n.hc = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			}
			var info struct {
				PubKey string `json:"identity_pubkey"`
				Synced bool   `json:"synced_to_chain"`
			}
			if err := n.try("GET", "/v1/getinfo", nil, &info); err == nil && info.Synced {
				n.PubKey = info.PubKey
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// LogTail is the end of LND's output, for failure messages.
func (n *Node) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "lnd.out"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// MacaroonPath is the path of one of LND's macaroons: admin, invoice or readonly.
func (n *Node) MacaroonPath(kind string) string {
	return filepath.Join(n.Dir, "data", "chain", "bitcoin", "simnet", kind+".macaroon")
}

// Macaroon reads a macaroon file.
func (n *Node) Macaroon(kind string) []byte {
	b, err := os.ReadFile(n.MacaroonPath(kind))
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// TLSCert is LND's certificate.
func (n *Node) TLSCert() []byte {
	b, err := os.ReadFile(filepath.Join(n.Dir, "tls.cert"))
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// Stop stops LND by its PID (SIGTERM, SIGKILL after 20 s). Idempotent.
func (n *Node) Stop() {
	if n.hc != nil {
		n.hc.CloseIdleConnections()
	}
	if n.cmd == nil {
		return
	}
	btcdtest.StopProcess(n.cmd, n.exited, 20*time.Second)
	n.cmd = nil
}

// Restart stops and starts LND on the same directory and ports and waits until it is synced.
func (n *Node) Restart() {
	n.Stop()
	n.start()
	n.WaitReady()
}

func (n *Node) try(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, "https://"+n.REST+path, rd)
	req.Header.Set("Grpc-Metadata-macaroon", hex.EncodeToString(n.Macaroon("admin")))
	resp, err := n.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// Do calls LND's REST API with the admin macaroon and fails the test on error.
func (n *Node) Do(method, path string, body, out any) {
	n.t.Helper()
	if err := n.try(method, path, body, out); err != nil {
		n.t.Fatalf("lnd %s: %v", n.Name, err)
	}
}

// Fund sends sats from the btcd miner to a new address of n's wallet and waits until LND sees
// them confirmed.
func (n *Node) Fund(sats int64) {
	t := n.t
	t.Helper()
	var a struct {
		Address string `json:"address"`
	}
	n.Do("GET", "/v1/newaddress?type=WITNESS_PUBKEY_HASH", nil, &a)
	addr, err := btcutil.DecodeAddress(a.Address, btcdtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	n.btcd.Pay(addr, sats)
	n.btcd.Generate(1)
	n.waitFor("confirmed wallet balance", func() bool {
		var b struct {
			Confirmed string `json:"confirmed_balance"`
		}
		return n.try("GET", "/v1/balance/blockchain", nil, &b) == nil && b.Confirmed != "" && b.Confirmed != "0"
	})
}

func (n *Node) waitFor(what string, ok func() bool) {
	n.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			n.t.Fatalf("lnd %s: no %s after 60 s\n%s", n.Name, what, n.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// OpenChannel connects n to peer and opens a channel of sats, mines it and waits until both see
// it active.
func (n *Node) OpenChannel(peer *Node, sats int64) {
	t := n.t
	t.Helper()
	n.waitFor("peer connection", func() bool {
		err := n.try("POST", "/v1/peers", map[string]any{"addr": map[string]string{"pubkey": peer.PubKey, "host": peer.P2P}}, nil)
		return err == nil || strings.Contains(err.Error(), "already connected")
	})
	pk, _ := hex.DecodeString(peer.PubKey)
	body := map[string]any{"node_pubkey": base64.StdEncoding.EncodeToString(pk), "local_funding_amount": fmt.Sprint(sats)}
	n.waitFor("channel open accepted", func() bool { return n.try("POST", "/v1/channels", body, nil) == nil })
	n.btcd.Generate(3)
	for _, x := range []*Node{n, peer} {
		x.waitFor("active channel", func() bool {
			var cs struct {
				Channels []struct {
					Active bool `json:"active"`
				} `json:"channels"`
			}
			return x.try("GET", "/v1/channels", nil, &cs) == nil && len(cs.Channels) > 0 && cs.Channels[0].Active
		})
	}
}

// Pay pays a BOLT11 invoice, retrying while the channel's link comes up: a new channel, or one
// that a restarted peer is re-establishing ("insufficient_balance" meanwhile), which on a
// loaded 2-core machine with the unoptimised test lnd took over the 10 s this used to allow.
func (n *Node) Pay(bolt11 string) error {
	n.t.Helper()
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		var r struct {
			PaymentError string `json:"payment_error"`
		}
		err := n.try("POST", "/v1/channels/transactions", map[string]string{"payment_request": bolt11}, &r)
		if err == nil && r.PaymentError == "" {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = r.PaymentError
		}
		if strings.Contains(last, "expired") || strings.Contains(last, "already paid") || strings.Contains(last, "invoice is already paid") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("payment failed: %s", last)
}
