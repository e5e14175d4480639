package export

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Bar is a Progress that draws a text progress bar on a terminal line.
type Bar struct {
	W     io.Writer
	Width int // bar cells, default 30

	mu   sync.Mutex
	last int
}

// Progress redraws the bar when the shown percentage changes.
func (b *Bar) Progress(done, total uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	width := b.Width
	if width <= 0 {
		width = 30
	}
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	if pct == b.last && done != total {
		return
	}
	b.last = pct
	fill := pct * width / 100
	fmt.Fprintf(b.W, "\r[%s%s] %3d%% (%d/%d blocks)", strings.Repeat("#", fill), strings.Repeat(" ", width-fill), pct, done, total)
	if done >= total {
		fmt.Fprintln(b.W)
	}
}
