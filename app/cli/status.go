package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// statusEvery is how often a status line is printed where it cannot be rewritten in place
// (a pipe, a file): a log of the figures, a line a second, which scripts (and the end-to-end
// tests) read as it comes.
const statusEvery = time.Second

// statusLine prints the running figures of `live` and `watch`. On a terminal it is one line
// rewritten in place ("\r", the line cut to the terminal's width, erase to the end of the
// line), so the card or an invoice's QR printed above stays on the screen; anything else
// printed through Writer (an event, the final figures, a log message) first ends it with a
// newline. Anywhere else it prints whole lines, at most every statusEvery, and at once when
// the line's key (the viewer count, the access state) changes.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	term  bool
	width func() int // the terminal's columns
	every time.Duration

	open  bool      // a line is on the terminal, not ended with a newline yet
	shown time.Time // when a whole line was last printed (not on a terminal)
	key   string    // the key of that line
}

func newStatusLine(w io.Writer) *statusLine {
	s := &statusLine{w: w, term: isTerminalWriter(w), width: func() int { return 80 }, every: statusEvery}
	if f, ok := w.(*os.File); ok && s.term {
		s.width = func() int {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
				return cols
			}
			return 80
		}
	}
	return s
}

// Show prints line (one line, no newline) as the current status at now; key is what must
// not wait for the next whole line where the line is not rewritten in place.
func (s *statusLine) Show(now time.Time, line, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.term {
		// A line wider than the terminal would wrap, and "\r" goes back to its last row
		// only: every rewrite would add rows. Cut it one column short of the edge.
		if w := s.width() - 1; utf8.RuneCountInString(line) > w && w > 0 {
			r := []rune(line)
			line = string(r[:w])
		}
		fmt.Fprintf(s.w, "\r%s\x1b[K", line)
		s.open = true
		return
	}
	if !s.shown.IsZero() && now.Sub(s.shown) < s.every && key == s.key {
		return
	}
	s.shown, s.key = now, key
	fmt.Fprintln(s.w, line)
}

// endLocked ends a line left open on the terminal.
func (s *statusLine) endLocked() {
	if s.open {
		fmt.Fprintln(s.w)
		s.open = false
	}
}

// End ends the line left open on the terminal, if any: the command's last word comes next.
func (s *statusLine) End() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked()
}

// Writer is w with every write ending an open status line first. The writes through it and
// the status line's are serialised (a plain buffer as stdout or stderr, as in tests, is not
// safe for writes from several goroutines; a terminal or pipe is).
func (s *statusLine) Writer(w io.Writer) io.Writer { return statusBreak{s, w} }

type statusBreak struct {
	s *statusLine
	w io.Writer
}

func (b statusBreak) Write(p []byte) (int, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.s.endLocked()
	return b.w.Write(p)
}

// startStatus makes the status line for a command's running figures on w. Until stop is
// called, log messages (which go to stderr) end an open status line too; stop ends it.
func (e *env) startStatus(w io.Writer) (s *statusLine, stop func()) {
	s = newStatusLine(w)
	e.status.Store(s)
	return s, func() {
		e.status.CompareAndSwap(s, nil)
		s.End()
	}
}

// logWriter is where the log handler writes: stderr, through the running status line if
// there is one.
type logWriter struct{ e *env }

func (l logWriter) Write(p []byte) (int, error) {
	if s := l.e.status.Load(); s != nil {
		return s.Writer(l.e.err).Write(p)
	}
	return l.e.err.Write(p)
}
