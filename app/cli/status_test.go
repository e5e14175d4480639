package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// TestWatchStatusText: the watch status line's connection and paid-time parts. A free stream
// has no clock, so it shows no "time left" (it used to say "time left 0s").
func TestWatchStatusText(t *testing.T) {
	for _, tc := range []struct {
		name       string
		free       bool
		f          session.ViewFigures
		conn, left string
	}{
		{"free stream, connecting", true, session.ViewFigures{}, "connecting", ""},
		{"free stream, playing", true, session.ViewFigures{Connected: true, Access: wire.Free}, "free", ""},
		{"free access on a card with a price", false, session.ViewFigures{Connected: true, Access: wire.Free}, "free", ""},
		// (Before: "free" for the 30 s a dead broadcaster's link still says up.)
		{"free, no block for a while", true, session.ViewFigures{Connected: true, Access: wire.Free, Starved: 4 * time.Second},
			"free, no video for 4 s (the broadcaster may be down)", ""},
		{"paid, connecting", false, session.ViewFigures{}, "connecting", " · time left 0 s"},
		{"paid, playing", false, session.ViewFigures{Connected: true, Access: wire.Allowed, Remaining: 90*time.Second + 400*time.Millisecond}, "paid", " · time left 1 min 30 s"},
		{"paid, no block for a while", false, session.ViewFigures{Connected: true, Access: wire.Allowed, Remaining: time.Minute, Starved: 4 * time.Second},
			"paid, no video for 4 s (the broadcaster may be down; time left stands still)", " · time left 1 min"},
		{"paid, refused", false, session.ViewFigures{Connected: true, Access: wire.Refused, Reason: "paid time is over"}, "not allowed: paid time is over", " · time left 0 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := connText(tc.f); got != tc.conn {
				t.Errorf("connText = %q, want %q", got, tc.conn)
			}
			if got := timeLeftText(tc.free, tc.f); got != tc.left {
				t.Errorf("timeLeftText = %q, want %q", got, tc.left)
			}
		})
	}
}

// TestStatusLine: on a terminal the status line is rewritten in place ("\r", the line cut
// one column short of the terminal's width, erase to the end of the line) and ended with a
// newline before anything else printed through its Writer; elsewhere (a pipe, a file) whole
// lines, at most every `every` (statusEvery; 10 s here to see the spacing), and at once when
// the key (viewer count, access state) changes.
func TestStatusLine(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1000, 0).Add(time.Duration(s) * time.Second) }
	type step struct {
		sec       int
		line, key string // shown, or printed through Writer when key is "print"
	}
	for _, tc := range []struct {
		name  string
		term  bool
		steps []step
		want  string
	}{
		{"pipe: every 10 s", false, []step{{1, "a1", "0"}, {2, "a2", "0"}, {10, "a10", "0"}, {11, "a11", "0"}, {12, "a12", "0"}, {21, "a21", "0"}},
			"a1\na11\na21\n"},
		{"pipe: at once on a change", false, []step{{1, "v0", "0"}, {2, "v1", "1"}, {3, "v1b", "1"}, {4, "v0", "0"}},
			"v0\nv1\nv0\n"},
		{"pipe: other output as it comes", false, []step{{1, "s1", "0"}, {2, "event\n", "print"}, {3, "s3", "0"}},
			"s1\nevent\n"},
		{"terminal: rewritten in place", true, []step{{1, "s1", "0"}, {2, "s2", "0"}, {3, "s3", "0"}},
			"\rs1\x1b[K\rs2\x1b[K\rs3\x1b[K"},
		{"terminal: ended before other output", true, []step{{1, "s1", "0"}, {2, "event\n", "print"}, {3, "done\n", "print"}, {4, "s4", "0"}},
			"\rs1\x1b[K\nevent\ndone\n\rs4\x1b[K"},
		{"terminal: cut to the width", true, []step{{1, "viewers 0 · earned 0 sats · uploaded 0 B", "0"}},
			"\rviewers 0 · earned 0 \x1b[K"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			s := newStatusLine(&b)
			if s.term {
				t.Fatal("a buffer is taken for a terminal")
			}
			s.term, s.width, s.every = tc.term, func() int { return 22 }, 10*time.Second
			for _, st := range tc.steps {
				if st.key == "print" {
					fmt.Fprint(s.Writer(&b), st.line)
				} else {
					s.Show(at(st.sec), st.line, st.key)
				}
			}
			if got := b.String(); got != tc.want {
				t.Errorf("printed %q, want %q", got, tc.want)
			}
			s.End()
			if tc.term && !strings.HasSuffix(b.String(), "\n") {
				t.Errorf("End left the line open: %q", b.String())
			}
		})
	}
}

// TestListedName: `streams` shows a stream's name, then its description apart (before, one
// quoted string, "Garden Live from the garden", read as the title).
func TestListedName(t *testing.T) {
	for _, c := range []struct{ name, desc, want string }{
		{"Garden", "Live from the garden", `"Garden" ("Live from the garden")`},
		{"Garden", "", `"Garden"`},
		{"", "", "(no name)"},
		{" ", "only a description", `(no name) ("only a description")`},
	} {
		if got := listedName(c.name, c.desc); got != c.want {
			t.Errorf("listedName(%q, %q) = %s, want %s", c.name, c.desc, got, c.want)
		}
	}
}
