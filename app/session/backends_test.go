package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/wallet/nodetest"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// deadPort is a loopback address nothing listens at (a port just let go of).
func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// invoiceMacaroon is an LND-style V2 binary macaroon granting what LND's invoice.macaroon grants
// (its signature is zeros: only LND could check it).
func invoiceMacaroon() []byte {
	field := func(b []byte, num uint64, v []byte) []byte {
		b = binary.AppendUvarint(b, num<<3|2)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	id := field(nil, 1, []byte("nonce-nonce-nonce-nonce-"))
	id = field(id, 2, []byte("0"))
	for _, e := range [][]string{{"address", "read", "write"}, {"invoices", "read", "write"}, {"onchain", "read"}} {
		op := field(nil, 1, []byte(e[0]))
		for _, a := range e[1:] {
			op = field(op, 2, []byte(a))
		}
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

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lnd"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestPaidLiveRefusesUnusableBackEnd: a paid stream whose payment back-end cannot be used (the
// bitcoin node refuses the RPC password, nothing listens at the node's or LND's address) does not
// go live: Start fails saying what is wrong, before any card is made, and nothing is left in
// the data directory to list or resume.
func TestPaidLiveRefusesUnusableBackEnd(t *testing.T) {
	btcd := nodetest.StartBtcd(t)
	p, err := price.Parse("600 sats per minute")
	if err != nil {
		t.Fatal(err)
	}
	node := func(host, pass string) onchain.NodeConfig {
		return onchain.NodeConfig{Host: host, User: btcd.User(), Pass: pass, CACert: btcd.Cert()}
	}
	dead := deadPort(t)
	// An LND whose certificate is right but names other hosts than the one dialled (the
	// test server's names 127.0.0.1, ::1 and example.com; it is reached as localhost).
	other := httptest.NewTLSServer(http.NotFoundHandler())
	defer other.Close()
	otherHost := strings.Replace(other.Listener.Addr().String(), "127.0.0.1", "localhost", 1) // the right certificate, a name it does not list
	otherCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate().Raw})
	for _, tc := range []struct {
		name      string
		ln        *LightningSetup
		oc        *OnChainSetup
		want      string
		otherwise string // the same set-up with this fixed goes live (empty: not tried)
	}{
		{name: "btcd refuses the password",
			oc:   &OnChainSetup{AccountKey: nodetest.AccountKey(t), Network: "simnet", Websocket: true, MinConf: 1, Node: node(btcd.RPCAddr, "not-the-password")},
			want: "wrong RPC password (or user name) for the bitcoin node at " + btcd.RPCAddr, otherwise: btcd.Pass()},
		{name: "nothing listens at the node's address",
			oc:   &OnChainSetup{AccountKey: nodetest.AccountKey(t), Network: "simnet", MinConf: 1, Node: onchain.NodeConfig{Host: dead, User: "u", Pass: "p"}},
			want: "nothing is listening at " + dead + ": is the bitcoin node running, and is that its RPC port?"},
		{name: "btcd asked without its certificate",
			oc:   &OnChainSetup{AccountKey: nodetest.AccountKey(t), Network: "simnet", MinConf: 1, Node: onchain.NodeConfig{Host: btcd.RPCAddr, User: btcd.User(), Pass: btcd.Pass()}},
			want: "the bitcoin node at " + btcd.RPCAddr + " answers over TLS only: give its certificate (btcd's rpc.cert"},
		{name: "LND's certificate names other hosts",
			ln:   &LightningSetup{Host: otherHost, Network: "simnet", Macaroon: invoiceMacaroon(), TLSCert: otherCert},
			want: "LND's certificate is not valid for localhost (it names example.com, *.example.com, 127.0.0.1, ::1): reach it by a name or address the certificate lists"},
		{name: "nothing listens at LND's address",
			ln:   &LightningSetup{Host: dead, Network: "simnet", Macaroon: invoiceMacaroon(), TLSCert: selfSignedPEM(t)},
			want: "nothing is listening at " + dead + ": is LND running, and is that its REST port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer checkLeaks(t)()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			video, audio := testDevices(t)
			sd, _ := OpenDataDir(t.TempDir())
			cfg := BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "cannot sell", Preset: broadcast.Low,
				Video: video, Audio: audio, Price: p, Network: loopback, Logger: testLog(t), Lightning: tc.ln, OnChain: tc.oc}
			b, err := NewBroadcaster(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = b.Start(ctx)
			if err == nil {
				b.Stop()
				t.Fatalf("went live with card %s", b.Card().String())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
			if c := b.Card(); c.Seller != "" || c.Name != "" {
				t.Fatalf("a card was made: %+v", c)
			}
			select {
			case <-b.Done():
			default:
				t.Fatal("the failed session is not done")
			}
			if mine, err := sd.MyStreams(); err != nil || len(mine) != 0 {
				t.Fatalf("a stream that never went live is listed: %+v %v", mine, err)
			}
			if tc.otherwise == "" {
				return
			}
			// The same set-up with the right password goes live: the check refuses only what is wrong.
			fixed := *tc.oc
			fixed.Node.Pass = tc.otherwise
			cfg.OnChain = &fixed
			if b, err = NewBroadcaster(cfg); err != nil {
				t.Fatal(err)
			}
			if err := b.Start(ctx); err != nil {
				t.Fatalf("with the right password: %v", err)
			}
			if err := b.Stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Refused and unroutable dials are told apart on every OS: Windows' socket errors are not
// syscall's names there.
func TestDialErrors(t *testing.T) {
	wrap := func(e syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", e)}
	}
	for _, tc := range []struct {
		err              error
		refused, noRoute bool
	}{
		{wrap(syscall.ECONNREFUSED), true, false},
		{wrap(wsaECONNREFUSED), true, false},
		{wrap(syscall.EHOSTUNREACH), false, true},
		{wrap(syscall.ENETUNREACH), false, true},
		{wrap(wsaEHOSTUNREACH), false, true},
		{wrap(wsaENETUNREACH), false, true},
		{wrap(syscall.ETIMEDOUT), false, false},
		{context.DeadlineExceeded, false, false},
	} {
		if got := dialRefused(tc.err); got != tc.refused {
			t.Errorf("dialRefused(%v) = %v", tc.err, got)
		}
		if got := dialNoRoute(tc.err); got != tc.noRoute {
			t.Errorf("dialNoRoute(%v) = %v", tc.err, got)
		}
	}
}
