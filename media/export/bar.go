package export

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Bar is a Progress that draws a text progress bar. On a terminal it redraws one line
// (carriage return) when the percentage changes; anywhere else (a log file, a pipe) it
// writes a plain line every 10 %, so no control characters end up in the file. 100 % is
// written once either way.
type Bar struct {
	W     io.Writer
	Width int // bar cells, default 30
	// Terminal forces the terminal style on or off; by default it is on when W is a
	// character device (a terminal).
	Terminal *bool

	mu   sync.Mutex
	last int  // percentage shown last
	init bool // something was shown
	done bool // 100 % shown
}

func (b *Bar) terminal() bool {
	if b.Terminal != nil {
		return *b.Terminal
	}
	f, ok := b.W.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Progress shows done of total.
func (b *Bar) Progress(done, total uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	pct := 100
	if total > 0 {
		pct = int(min(done, total) * 100 / total)
	}
	term := b.terminal()
	step := 1
	if !term {
		step = 10
	}
	if b.init && pct < 100 && pct/step == b.last/step {
		return
	}
	b.last, b.init = pct, true
	b.done = pct == 100
	if !term {
		fmt.Fprintf(b.W, "%3d%% (%d/%d blocks)\n", pct, done, total)
		return
	}
	width := b.Width
	if width <= 0 {
		width = 30
	}
	fill := pct * width / 100
	fmt.Fprintf(b.W, "\r[%s%s] %3d%% (%d/%d blocks)", strings.Repeat("#", fill), strings.Repeat(" ", width-fill), pct, done, total)
	if b.done {
		fmt.Fprintln(b.W)
	}
}
