package cli

import (
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
		{"paid, connecting", false, session.ViewFigures{}, "connecting", " · time left 0s"},
		{"paid, playing", false, session.ViewFigures{Connected: true, Access: wire.Allowed, Remaining: 90*time.Second + 400*time.Millisecond}, "paid", " · time left 1m30s"},
		{"paid, refused", false, session.ViewFigures{Connected: true, Access: wire.Refused, Reason: "paid time is over"}, "not allowed: paid time is over", " · time left 0s"},
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
