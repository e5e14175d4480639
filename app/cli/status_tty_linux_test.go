package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// `live` on a terminal 60 columns wide: its figures are one line rewritten in place, cut to
// the width (a wrapped line would add a row at every rewrite), so the card printed above stays
// on the screen; the final figures start on a line of their own. (They used to be a new line
// every second, which scrolled the card away.)
func TestLiveStatusOnTerminal(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	master, slave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 60}); err != nil {
		t.Fatal(err)
	}
	var screen xtest.SyncBuffer
	readDone := make(chan struct{})
	go func() { // ends when the pty is closed after Run returns
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	tmp := t.TempDir()
	code := Run(context.Background(), []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc"),
		"live", "-video", "test", "-audio", "test", "-preset", "low", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0", "-duration", "4s"},
		strings.NewReader(""), slave, slave)
	slave.Close()
	<-readDone
	got := screen.String()
	if code != 0 {
		t.Fatalf("live exited %d:\n%q", code, got)
	}
	var statusRows, rewrites int
	stopped := false
	for _, row := range strings.Split(got, "\n") {
		if strings.Contains(row, "viewers ") {
			statusRows++
			for _, seg := range strings.Split(row, "\r") {
				seg = strings.TrimSuffix(seg, "\x1b[K")
				if strings.HasPrefix(seg, "viewers ") {
					rewrites++
					if n := utf8.RuneCountInString(seg); n >= 60 {
						t.Errorf("a status line of %d characters on a 60-column terminal: %q", n, seg)
					}
				}
			}
		}
		if strings.HasPrefix(row, "stopped after ") {
			stopped = true
		}
	}
	if statusRows != 1 || rewrites < 2 || !strings.Contains(got, "\x1b[K") || !stopped {
		t.Fatalf("%d rows of figures (want 1, rewritten in place: %d times), final figures on their own line %v:\n%q", statusRows, rewrites, stopped, got)
	}
}

// WebM video is never written to a terminal: export's output - is stdout as watch's -o - is,
// and both refuse a terminal there, before reading anything.
func TestVideoToStdoutRefusesTerminal(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"watch -o -", []string{"watch", "-o", "-", testCard(t).String()}, "-o - writes video to stdout, which is a terminal here: pipe it into a player (watch CARD -o - | mpv -)"},
		{"export DIR -", []string{"export", filepath.Join(t.TempDir(), "no feed"), "-"}, "the output - writes video to stdout, which is a terminal here: pipe it into a player (export DIR - | mpv -)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, slave := openPTY(t)
			var errb xtest.SyncBuffer
			code := Run(context.Background(), tc.args, strings.NewReader(""), slave, &errb)
			if code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("code %d (want 2), stderr %q", code, errb.String())
			}
		})
	}
}
