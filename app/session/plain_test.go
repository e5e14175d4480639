package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// The causes a person can act on are said in one sentence, without the internal chain (a
// package's prefix, the data directory's inner paths); the cause stays reachable.
func TestPlainErrors(t *testing.T) {
	inner := "/home/u/.config/dazaar-vision/watched/ab12/feed"
	tests := []struct {
		name  string
		cause error
		want  string // the whole text; "" for a cause said as "what: cause"
	}{
		{"the stream open elsewhere", fmt.Errorf("feed: %s: %w", inner, feed.ErrLocked),
			"cannot keep a copy of this stream: this stream is open in another window or program that uses the same data directory; close it there first"},
		{"the wallet open elsewhere", fmt.Errorf("ledger: %s: %w", inner, ledger.ErrInUse),
			"another paid stream of this data directory is live: one data directory sells one paid stream at a time; stop the other one, or give this one a data directory of its own"},
		{"a full disk", &fs.PathError{Op: "write", Path: inner, Err: syscall.ENOSPC}, "cannot keep a copy of this stream: the disk is full"},
		{"no permission", &fs.PathError{Op: "open", Path: inner, Err: syscall.EACCES},
			"cannot keep a copy of this stream: Dazaar Vision may not write to its data directory (check its owner and permissions)"},
		{"a failing disk", fmt.Errorf("feed: read block 3: %w: %w", feed.ErrStorage, &fs.PathError{Op: "read", Path: inner, Err: syscall.EIO}),
			"cannot keep a copy of this stream: the disk failed to read or write the stream's files; check the disk and try again"},
		{"anything else", errors.New("feed: meta: bad magic"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := plain(testLog(t), "cannot keep a copy of this stream", tt.cause)
			if !errors.Is(err, tt.cause) {
				t.Fatalf("the cause is not reachable from %v", err)
			}
			want := tt.want
			if want == "" {
				want = "cannot keep a copy of this stream: " + tt.cause.Error()
			} else if strings.Contains(err.Error(), inner) {
				t.Fatalf("the sentence names an inner path: %s", err)
			}
			if err.Error() != want {
				t.Fatalf("got  %q\nwant %q", err, want)
			}
		})
	}
}

// Watching a stream that this data directory already watches (a second window, a second
// `watch`) fails at once, in a sentence, and the first keeps its copy.
func TestSecondViewerOfOneCopyIsTold(t *testing.T) {
	defer checkLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startFreeBroadcaster(ctx, t)
	defer b.Stop()
	var data DataDir
	first := startViewerWith(ctx, t, b.Card(), func(c *ViewerConfig) { data = c.Data })
	defer first.Stop()
	second, err := NewViewer(ViewerConfig{Data: data, Secrets: first.cfg.Secrets, Card: b.Card(), Network: loopback, Logger: testLog(t), Audio: silentAudio})
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(ctx)
	second.Stop()
	if !errors.Is(err, feed.ErrLocked) || strings.Contains(err.Error(), data.Root) || strings.Contains(err.Error(), "feed:") {
		t.Fatalf("a second viewer of one copy: %v", err)
	}
	waitFor(t, "blocks at the first viewer", 30*time.Second, func() bool { return first.Snapshot().Stored > 3 })
}

// A live broadcast that ends on its own says why in a sentence when the cause is one a person
// can act on, and keeps the cause reachable; other causes name the part that stopped.
func TestStoppedSentences(t *testing.T) {
	inner := "/home/u/.config/dazaar-vision/streams/ab12/feed/data"
	tests := []struct {
		name, part string
		cause      error
		want       string // the sentence's start; "" for "part stopped: cause"
	}{
		{"a full disk", "capture", fmt.Errorf("broadcast: storing block: %w", &fs.PathError{Op: "write", Path: inner, Err: syscall.ENOSPC}),
			"the disk is full: recording stopped, and everything recorded so far is kept."},
		{"a full disk under the feed's storage error", "capture", fmt.Errorf("broadcast: storing block: feed: write blocks: %w: %w", feed.ErrStorage, syscall.ENOSPC),
			"the disk is full:"},
		{"the camera gone", "capture", fmt.Errorf("broadcast: video: %w: %w", broadcast.ErrVideoStopped, errors.New("v4l2: read /dev/video0: no such device")),
			"the camera (or screen) stopped giving pictures:"},
		{"the microphone gone", "capture", fmt.Errorf("broadcast: audio: %w: %w", broadcast.ErrAudioStopped, errors.New("alsa: device disconnected")),
			"the microphone stopped giving sound:"},
		{"a failing disk", "capture", fmt.Errorf("broadcast: storing block: feed: write log: %w: %w", feed.ErrStorage, &fs.PathError{Op: "write", Path: inner, Err: syscall.EIO}),
			"writing the stream to the disk failed: recording stopped, and everything recorded so far is kept."},
		{"anything else", "invoice desk", errors.New("invoice: the node said no"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := stopped(testLog(t), tt.part, tt.cause)
			if !errors.Is(err, tt.cause) {
				t.Fatalf("the cause is not reachable from %v", err)
			}
			if tt.want == "" {
				if want := tt.part + " stopped: " + tt.cause.Error(); err.Error() != want {
					t.Fatalf("got  %q\nwant %q", err, want)
				}
				return
			}
			if !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), inner) || strings.Contains(err.Error(), "broadcast:") {
				t.Fatalf("got %q, want a sentence starting %q without the internal chain", err, tt.want)
			}
		})
	}
}

// The player's stops are said in words for the causes a person can understand.
func TestPlayStoppedSentences(t *testing.T) {
	tests := []struct {
		name  string
		cause error
		want  string
	}{
		{"unsupported", fmt.Errorf("%w: video codec %q", playback.ErrUnsupported, "AV1"),
			"playback stopped: this stream is in a format this version of Dazaar Vision cannot play (a newer version may)"},
		{"damaged header", fmt.Errorf("%w: %w", playback.ErrBadHeader, errors.New("block: header: bad magic")),
			"playback stopped: the stream's first block, which says what it holds, is damaged"},
		{"failing disk", fmt.Errorf("playback: reading block 7: feed: %w: %w", feed.ErrStorage, syscall.EIO),
			"playback stopped: reading the stream's copy from the disk failed (check the disk)"},
		{"anything else", errors.New("playback: reading block 7: the seller went away"),
			"playback stopped: playback: reading block 7: the seller went away"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := playStopped(testLog(t), tt.cause); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// A damaged watched-stream record is moved aside, not overwritten by the empty record saved
// next: the purchases it lists stay readable.
func TestDamagedWatchedRecordIsKept(t *testing.T) {
	d := DataDir{Root: t.TempDir()}
	const id = "ab12"
	if r := d.loadWatched(id, testLog(t)); r.ID != "" || len(r.Purchases) != 0 {
		t.Fatalf("no record yet: %+v", r)
	}
	good := WatchedRecord{ID: id, Name: "Night sky", Purchases: []Purchase{{InvoiceID: "ln:1", Sats: 84}}}
	if err := d.saveWatched(good); err != nil {
		t.Fatal(err)
	}
	if r := d.loadWatched(id, testLog(t)); r.Name != "Night sky" || len(r.Purchases) != 1 {
		t.Fatalf("the saved record: %+v", r)
	}
	path := filepath.Join(d.watchedDir(id), "watched.json")
	damaged := []byte(`{"id":"ab12","purchases":[{"invoice":"ln:1","sats":8`)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := d.loadWatched(id, testLog(t)); r.ID != "" || len(r.Purchases) != 0 {
		t.Fatalf("a damaged record read as %+v", r)
	}
	if b, err := os.ReadFile(path + ".damaged"); err != nil || !bytes.Equal(b, damaged) {
		t.Fatalf("the damaged record was not kept aside: %q, %v", b, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the damaged record is still in place: %v", err)
	}
}

// A resumed paid stream keeps the network and the ways to pay its card names (viewers hold
// it); adding a way is fine.
func TestResumeKeepsCardTerms(t *testing.T) {
	seller := newPeerID(t)
	paid, _ := price.Parse("600 sats per minute")
	mk := func(methods ...card.Method) string {
		c := card.Card{Name: "night sky", Price: paid, Methods: methods, Network: "simnet", Seller: seller.String(),
			Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}}
		c.Feed[0] = 1
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c.String()
	}
	tests := []struct {
		name, card, network string
		ln, chain           bool
		refused             string // "" when kept
	}{
		{"a new stream", "", "mainnet", true, false, ""},
		{"the same terms", mk(card.Lightning, card.OnChain), "simnet", true, true, ""},
		{"a way to pay added", mk(card.Lightning), "simnet", true, true, ""},
		{"Lightning dropped", mk(card.Lightning, card.OnChain), "simnet", false, true, "cards that offer Lightning payments"},
		{"on-chain dropped", mk(card.OnChain), "simnet", true, false, "cards that offer on-chain payments"},
		{"another network", mk(card.Lightning), "mainnet", true, false, "keeps its bitcoin network (simnet)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := keepsCardTerms(tt.card, tt.network, tt.ln, tt.chain)
			if tt.refused == "" && err != nil || tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)) {
				t.Fatalf("keepsCardTerms: %v, want %q", err, tt.refused)
			}
		})
	}
}

// An LND directory without the chosen network's invoice macaroon says which networks it has
// one for (the usual mistake: the default mainnet for a node on another network).
func TestLNDFromDirNamesTheNodesNetwork(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tls.cert"), []byte("cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LNDFromDir(dir, "mainnet", ""); err == nil || !strings.Contains(err.Error(), "has LND been started on mainnet") {
		t.Fatalf("no macaroon at all: %v", err)
	}
	sim := filepath.Join(dir, "data", "chain", "bitcoin", "simnet")
	if err := os.MkdirAll(sim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sim, "invoice.macaroon"), []byte{2, 1}, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LNDFromDir(dir, "mainnet", "")
	if err == nil || !strings.Contains(err.Error(), "no invoice macaroon for mainnet, only for simnet: choose that network") {
		t.Fatalf("a simnet node taken for mainnet: %v", err)
	}
	if s, err := LNDFromDir(dir, "simnet", ""); err != nil || s.Network != "simnet" || s.Host != "127.0.0.1:8080" {
		t.Fatalf("the node's own network: %+v, %v", s, err)
	}
}
