package p2p

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A listen address another program holds is told in one sentence that names it; go-libp2p's
// own error ("failed to listen on any addresses: [listen tcp4 …: bind: address already in
// use]") loses the errno, so only its text says so. go-libp2p leaves goroutines behind when its
// start fails, so the check runs in a child process, away from the package's leak check.
func TestListenAddressInUse(t *testing.T) {
	if os.Getenv("DV_P2P_LEAKY") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestListenAddressInUse$", "-test.count=1")
		cmd.Env = append(os.Environ(), "DV_P2P_LEAKY=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("%v\n%s", err, out)
		}
		// The error says it once: nothing else on the process's output (fx logged the failed
		// start as three error lines with module paths).
		if strings.Contains(string(out), "OnStart hook failed") || strings.Contains(string(out), "start failed") {
			t.Fatalf("the failed start was also logged:\n%s", out)
		}
		return
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := "/ip4/127.0.0.1/tcp/" + strings.Split(l.Addr().String(), ":")[1]
	n, err := New(context.Background(), Config{Identity: testIdentity(t), ListenAddrs: []string{addr}})
	if err == nil {
		n.Close()
		t.Fatal("listening at a taken address succeeded")
	}
	var inUse *AddrInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("not an AddrInUseError: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, addr) || strings.Contains(msg, "bind:") || strings.Contains(msg, "[") {
		t.Fatalf("message %q: want one sentence naming %s", msg, addr)
	}
}
