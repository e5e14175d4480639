package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
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
