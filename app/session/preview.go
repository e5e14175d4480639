package session

import (
	"context"
	"fmt"

	"github.com/dazaarvision/dazaar-vision/media/audioout"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// startPreview plays this run of the stream from the broadcaster's own feed into
// cfg.Preview: the pictures viewers get, decoded from the blocks as appended (so the preview
// shows what the encoder's settings make of the camera), without sound (the broadcaster would
// hear themselves). header is the index of this run's stream header. The player runs under
// the broadcaster's context and is waited for in Stop.
func (b *Broadcaster) startPreview(ctx context.Context, header uint64) error {
	src := newReaderSource()
	src.feed = func() *feed.Feed { return b.feed }
	src.length = b.feed.Length
	src.latest = func() (uint64, bool) {
		b.msMu.Lock()
		defer b.msMu.Unlock()
		if b.lastSync == 0 {
			return 0, false
		}
		return b.lastSync - 1, true
	}
	src.base.Store(header)
	p, err := playback.New(playback.Config{Source: src, Frames: b.cfg.Preview, Audio: audioout.NewSilent(), Logger: b.log.With("component", "preview")})
	if err != nil {
		return fmt.Errorf("cannot start the preview: %w", err)
	}
	b.preview = src
	b.run(ctx, "preview", p.Run)
	return nil
}
