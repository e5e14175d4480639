package cli

import (
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/wallet/nodetest"
)

var listedBlocks = regexp.MustCompile(`"([^"]*)"  (\d+) blocks`)

// TestLiveStopsWithFinalFigures runs `live` for a few seconds: the figures it prints when it
// stops are the feed's final length and size, and `streams` then lists the stream with the
// same count and its title without trailing space. Its running figures on stderr, no
// terminal here, are one whole line in those seconds, not one a second.
func TestLiveStopsWithFinalFigures(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	global := []string{"-data-dir", data, "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	r := run(t, "", append(global, "live", "-video", "test", "-audio", "test", "-preset", "low", "-lan",
		"-listen", "/ip4/127.0.0.1/tcp/0", "-duration", "8s", "-name", "  stop figures  ")...)
	if r.code != 0 {
		t.Fatalf("live: %d\n%s\n%s", r.code, r.out, r.err)
	}
	m := regexp.MustCompile(`stopped after \S+ live: (\d+) blocks \(([^)]*)\) in the stream; resume it with -resume ([0-9a-f]{64})`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no stop line:\n%s", r.out)
	}
	// stderr is no terminal: the figures come as whole lines, a line a second (a log that
	// scripts read), never rewritten in place.
	if n := strings.Count(r.err, "viewers "); n < 3 || n > 10 || strings.Contains(r.err, "\r") {
		t.Fatalf("%d status lines in 8 s on a non-terminal stderr (want about 8, no carriage returns):\n%s", n, r.err)
	}
	h, err := feed.ReadHead(filepath.Join(data, "streams", m[3], "feed"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.ParseUint(m[1], 10, 64); n != h.Length || n == 0 {
		t.Fatalf("live said %s blocks at the stop; the feed holds %d", m[1], h.Length)
	}
	r = run(t, "", append(global, "streams")...)
	l := listedBlocks.FindStringSubmatch(r.out)
	if r.code != 0 || l == nil || l[1] != "stop figures" || l[2] != m[1] {
		t.Fatalf("streams (want %q with %s blocks):\n%s\n%s", "stop figures", m[1], r.out, r.err)
	}
}

// TestStreamsWhileLive lists my streams while one is live: the count is what its feed holds
// now, not the 0 its record had when it went live.
func TestStreamsWhileLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := testBroadcastConfig(t, dir, broadcast.Low)
	cfg.Name, cfg.Audio = "on now", nil
	b, err := session.NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	fd := filepath.Join(dir, "streams", b.ID(), "feed")
	for {
		h, err := feed.ReadHead(fd)
		if err != nil {
			t.Fatal(err)
		}
		if h.Length >= 5 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the feed holds %d blocks", h.Length)
		case <-time.After(20 * time.Millisecond):
		}
	}
	r := run(t, "", "-data-dir", dir, "streams")
	l := listedBlocks.FindStringSubmatch(r.out)
	if r.code != 0 || l == nil || l[1] != "on now" {
		t.Fatalf("streams:\n%s\n%s", r.out, r.err)
	}
	if n, _ := strconv.Atoi(l[2]); n < 5 {
		t.Fatalf("a live stream of at least 5 blocks listed with %d:\n%s", n, r.out)
	}
	if !strings.Contains(r.out, "resume: dazaar-vision live -resume "+b.ID()) {
		t.Fatalf("streams:\n%s", r.out)
	}
}

// TestLiveRefusesUnreachableBackEnd: `live` of a paid stream whose bitcoin node has nothing
// listening at its address fails saying so, and prints no card.
func TestLiveRefusesUnreachableBackEnd(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	tmp := t.TempDir()
	r := run(t, "", "-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc"),
		"live", "-video", "test", "-audio", "test", "-preset", "low", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0", "-duration", "30s",
		"-price", "600 sats per minute", "-network", "simnet", "-xpub", nodetest.AccountKey(t), "-btc-node", dead, "-btc-user", "u", "-btc-pass", "p")
	want := "cannot go live: nothing is listening at " + dead + ": is the bitcoin node running, and is that its RPC port?"
	if r.code != 1 || !strings.Contains(r.err, want) || strings.Contains(r.out, "dzv1") {
		t.Fatalf("live with nothing at the node's address: code %d (want 1, saying %q)\nstdout: %s\nstderr: %s", r.code, want, r.out, r.err)
	}
}

// TestPaymentFlagsNotIgnored: payment flags that would be ignored are refused with a usage
// error saying what goes with what (before, -lnd-macaroon without -lnd-host, the files beside
// -lnd-dir, and -btc-node without -xpub were dropped silently, and the saved set-up was used).
func TestPaymentFlagsNotIgnored(t *testing.T) {
	tests := []struct {
		set  []string
		free bool
		want string // "" accepted
	}{
		{set: []string{"lnd-dir"}},
		{set: []string{"lnd-host", "lnd-macaroon", "lnd-cert"}},
		{set: []string{"lnd-macaroon", "lnd-cert"}}, // the default host
		{set: []string{"xpub", "btc-node", "btc-cookie", "min-conf"}},
		{set: nil, free: true},
		{set: []string{"lnd-dir", "lnd-macaroon"}, want: "not both"},
		{set: []string{"btc-node", "btc-user"}, want: "-btc-node -btc-user set the on-chain payments, which need -xpub"},
		{set: []string{"provisional-cap"}, want: "need -xpub"},
		{set: []string{"xpub"}, free: true, want: "a free stream takes no payment settings (-xpub)"},
		{set: []string{"network"}, free: true, want: "a free stream takes no payment settings (-network)"},
		{set: []string{"network", "lnd-dir"}},
	}
	for _, tc := range tests {
		set := map[string]bool{}
		for _, f := range tc.set {
			set[f] = true
		}
		err := checkPaymentFlags(set, tc.free)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v free=%v: %v", tc.set, tc.free, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v free=%v: %v, want %q", tc.set, tc.free, err, tc.want)
		}
	}
}

// `live -price free -network testnet` is refused before anything opens: a free stream has no
// payments, so the network would be ignored (before, it was, silently).
func TestLiveFreeRefusesNetwork(t *testing.T) {
	tmp := t.TempDir()
	r := run(t, "", "-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc"),
		"live", "-video", "test", "-audio", "test", "-price", "free", "-network", "testnet")
	want := "a free stream takes no payment settings (-network); give -price to sell"
	if r.code != 2 || !strings.Contains(r.err, want) || strings.Contains(r.out, "dzv1") {
		t.Fatalf("live -price free -network testnet: code %d (want 2, saying %q)\nstdout: %s\nstderr: %s", r.code, want, r.out, r.err)
	}
}
