package session

import (
	"context"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
)

// Header is the stream header the current player read (nil before it has one). Its Start is
// the capture clock's zero as wall time, so a picture decoded with pts was captured at
// Start.Add(pts): measurements (make bench's glass-to-glass figure) use it.
func (v *Viewer) Header() *block.Header {
	v.playMu.Lock()
	defer v.playMu.Unlock()
	if v.player == nil {
		return nil
	}
	return v.player.Header()
}

// TraceArrivals calls fn for every video picture in a block that arrives verified from now
// on (the block's index, the picture's capture PTS, and when the block was stored), until ctx ends; call it after Start.
// It splits the glass-to-glass time into broadcaster plus network (capture → verified here)
// and playback (verified → decoded). It reads each new block back once, so it costs the
// viewer a little CPU: for measurements only.
func (v *Viewer) TraceArrivals(ctx context.Context, fn func(index uint64, pts time.Duration, at time.Time)) {
	const window = 256 // blocks below the newest that may still arrive (catch-up, late pushes)
	seen := map[uint64]bool{}
	first := true
	for {
		ch := v.src.wait()
		now := time.Now()
		f := v.currentFeed()
		n := f.Length()
		lo := uint64(0)
		if n > window {
			lo = n - window
		}
		for i := lo; i < n; i++ {
			if seen[i] || !f.Has(i) {
				continue
			}
			seen[i] = true
			if first {
				continue // held before tracing began
			}
			b, err := f.Read(i)
			if err != nil {
				continue
			}
			m, err := block.DecodeMedia(b)
			if err != nil {
				continue // the header
			}
			for _, u := range m.Units {
				if u.Track == block.Video {
					fn(i, u.PTS, now)
				}
			}
		}
		for i := range seen {
			if i < lo {
				delete(seen, i)
			}
		}
		first = false
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}
