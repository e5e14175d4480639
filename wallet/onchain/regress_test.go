//go:build linux

package onchain

import (
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Regression test for a reviewer's finding; the defect was: parameter names are matched case-insensitively but duplicates are only detected per
// exact spelling, so amount=…&AMOUNT=… is accepted and which one wins depends on map order.
func TestURIDuplicateParamsInOtherCase(t *testing.T) {
	net := mustNet(t, "simnet")
	k := testKey(t)
	a, _ := k.Address(0)
	uri := "bitcoin:" + a.EncodeAddress() + "?amount=0.00001&AMOUNT=1"
	seen := map[uint64]bool{}
	for i := 0; i < 50; i++ {
		u, err := ParseURI(uri, net)
		if err != nil {
			return // refused: fine
		}
		seen[u.Sats] = true
	}
	t.Fatalf("URI with two amounts accepted; amounts read: %v", seen)
}

// Regression test for a reviewer's finding; the defect was: the websocket handshake has no timeout and does not see ctx: a node that accepts
// the TCP connection but does not answer (hung, overloaded) blocks Run forever, so the poll
// fallback never runs and cancelling ctx does not stop the watcher.
func TestWebsocketRunHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // never answers
		}
	}()
	w, err := NewWebsocket(WatchConfig{Node: NodeConfig{Host: ln.Addr().String(), User: "u", Pass: "p"},
		Net: mustNet(t, "simnet"), OnEvent: func(Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
		<-done
		t.Fatal("Run did not return within 3 s of ctx being cancelled (stuck in the websocket handshake)")
	}
}

func TestNodeConfigRedactsPassword(t *testing.T) {
	c := NodeConfig{Host: "127.0.0.1:8334", User: "u", Pass: "s3cret-pass"}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("node", "cfg", c)
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c) + buf.String()
	if strings.Contains(out, "s3cret-pass") {
		t.Fatalf("password printable: %s", out)
	}
}

func TestPlainHTTPToRemoteNodeRefused(t *testing.T) {
	for host, ok := range map[string]bool{"127.0.0.1:8332": true, "[::1]:8332": true, "localhost:8332": true,
		"192.168.1.20:8332": false, "node.example:8332": false} {
		_, err := NewPoller(WatchConfig{Node: NodeConfig{Host: host, User: "u", Pass: "p"}, Net: mustNet(t, "simnet"),
			OnEvent: func(Event) {}})
		if (err == nil) != ok {
			t.Errorf("%s: %v", host, err)
		}
		_, err = NewPoller(WatchConfig{Node: NodeConfig{Host: host, User: "u", Pass: "p", CACert: testCertPEM(t)},
			Net: mustNet(t, "simnet"), OnEvent: func(Event) {}})
		if err != nil {
			t.Errorf("%s with TLS: %v", host, err)
		}
	}
}

func testCertPEM(t *testing.T) []byte {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}
