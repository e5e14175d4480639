package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/playback"
)

// seekFetchTimeout bounds how long a seek waits for one block it does not hold (the seller
// is slow, gone, or refuses: a paid stream with no time left).
const seekFetchTimeout = 15 * time.Second

// seekBackChunk is how many blocks before the target a seek fetches at once while it looks
// for the key frame to start at (a key-frame interval is 30 to 60 blocks at the presets).
const seekBackChunk = 32

// ErrSeekEmpty says there is nothing to seek in yet.
var ErrSeekEmpty = errors.New("the stream has no pictures or sound yet")

// Seek plays from media time t, counted from the start of the stream as the header the
// player plays counts it (a resumed stream's current run): the block holding t is found
// by a binary search over the blocks' timestamps (blocks held are read, others fetched one
// at a time, so a seek downloads about log2(length) blocks, not the stream), and the player
// restarts at the sync block at or before it, so the first picture decodes. A time past
// the newest block goes live. It returns the media time the player restarts at, and whether
// that is the live edge because t was past it.
func (v *Viewer) Seek(ctx context.Context, t time.Duration) (at time.Duration, live bool, err error) {
	k, at, err := v.SeekBlock(ctx, t)
	if err != nil {
		return 0, false, err
	}
	if v.cfg.NoPlayback {
		return at, k == 0, nil
	}
	v.playAt(k) // k == 0 goes live
	v.log.Info("seek", "to", t, "block", k, "starts at", at)
	return at, k == 0, nil
}

// SeekBlock finds where Seek would restart, without restarting anything: the block
// (counted from the player's header, as SeekSource counts) and its time; block 0 with the
// newest block's time when t is past the live edge.
func (v *Viewer) SeekBlock(ctx context.Context, t time.Duration) (uint64, time.Duration, error) {
	if t < 0 {
		return 0, 0, fmt.Errorf("cannot seek to %v: times count from the start of the stream, at 0", t)
	}
	if v.src == nil || v.rv == nil {
		return 0, 0, errors.New("cannot seek: the viewer has not started")
	}
	n, err := v.waitLength(ctx)
	if err != nil {
		return 0, 0, err
	}
	last, err := v.blockTime(ctx, n-1)
	if err != nil {
		return 0, 0, err
	}
	if t >= last {
		return 0, last, nil
	}
	// The last block whose first unit is at or before t (block 1 when t is before them all).
	lo, hi := uint64(1), n-1
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		pts, err := v.blockTime(ctx, mid)
		if err != nil {
			return 0, 0, err
		}
		if pts <= t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	video, err := v.hasVideo(ctx)
	if err != nil {
		return 0, 0, err
	}
	return v.syncAtOrBefore(ctx, lo, video)
}

// SeekSource is the player's block source of this viewer: blocks counted from the header
// it plays, Block waiting for (and asking the seller for) what is not held yet. Reading
// past a later stream header ends it with io.EOF. Exports of what is being watched, live,
// read it (the command line's watch -o -).
func (v *Viewer) SeekSource() playback.BlockSource { return v.src }

// blockMedia reads block i (counted from the player's header), fetching it when it is not
// held.
func (v *Viewer) blockMedia(ctx context.Context, i uint64) (*block.Media, error) {
	idx := v.src.base.Load() + i
	if err := v.fetchRange(ctx, idx, idx+1); err != nil {
		return nil, err
	}
	b, err := v.currentFeed().Read(idx)
	if err != nil {
		return nil, fmt.Errorf("cannot read block %d: %w", idx, err)
	}
	m, err := block.DecodeMedia(b)
	if err != nil {
		return nil, fmt.Errorf("block %d is not a media block: %w", idx, err)
	}
	return m, nil
}

// fetchRange waits until the feed holds [start, end), asking the seller for what is
// missing.
func (v *Viewer) fetchRange(ctx context.Context, start, end uint64) error {
	f := v.currentFeed()
	for start < end && f.Has(start) {
		start++
	}
	for end > start && f.Has(end-1) {
		end--
	}
	if start >= end {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, seekFetchTimeout)
	defer cancel()
	if err := v.rv.Fetch(fctx, start, end); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			if a := v.Access(); a.Reason != "" {
				return fmt.Errorf("the seller did not send blocks %d to %d within %v (%s)", start, end-1, seekFetchTimeout, a.Reason)
			}
			return fmt.Errorf("the seller did not send blocks %d to %d within %v; is it still online?", start, end-1, seekFetchTimeout)
		}
		return fmt.Errorf("fetching blocks %d to %d: %w", start, end-1, err)
	}
	return nil
}

// blockTime is block i's earliest timestamp.
func (v *Viewer) blockTime(ctx context.Context, i uint64) (time.Duration, error) {
	m, err := v.blockMedia(ctx, i)
	if err != nil {
		return 0, err
	}
	if len(m.Units) == 0 {
		return 0, fmt.Errorf("block %d is empty", i)
	}
	t := m.Units[0].PTS
	for _, u := range m.Units {
		t = min(t, u.PTS)
	}
	return t, nil
}

// hasVideo reads the player's stream header.
func (v *Viewer) hasVideo(ctx context.Context) (bool, error) {
	idx := v.src.base.Load()
	if err := v.fetchRange(ctx, idx, idx+1); err != nil {
		return false, err
	}
	b, err := v.currentFeed().Read(idx)
	if err != nil {
		return false, fmt.Errorf("cannot read the stream header: %w", err)
	}
	h, err := block.DecodeHeader(b)
	if err != nil {
		return false, fmt.Errorf("the stream header is unreadable: %w", err)
	}
	return h.Video != nil, nil
}

// startsAt reports whether playback can start at m and at what time: at its first video
// unit when that is a key frame (a block of sound alone does not do when the stream has
// pictures: the picture would wait for the next key frame), at its first unit without video.
func startsAt(m *block.Media, video bool) (time.Duration, bool) {
	for _, u := range m.Units {
		if !video {
			return u.PTS, true
		}
		if u.Track == block.Video {
			return u.PTS, u.Key
		}
	}
	return 0, false
}

// syncAtOrBefore walks back from block i to the nearest block playback can start at,
// fetching what is missing a chunk at a time; block 1 when there is none.
func (v *Viewer) syncAtOrBefore(ctx context.Context, i uint64, video bool) (uint64, time.Duration, error) {
	base := v.src.base.Load()
	for i >= 1 {
		lo := max(i, seekBackChunk) - seekBackChunk + 1
		if err := v.fetchRange(ctx, base+lo, base+i+1); err != nil {
			return 0, 0, err
		}
		for ; i >= lo; i-- {
			m, err := v.blockMedia(ctx, i)
			if err != nil {
				return 0, 0, err
			}
			if at, ok := startsAt(m, video); ok {
				return i, at, nil
			}
		}
	}
	t, err := v.blockTime(ctx, 1)
	return 1, t, err
}

// waitLength waits (up to seekFetchTimeout: a viewer just started is still connecting) until
// the seller has said the stream holds media, and returns its length.
func (v *Viewer) waitLength(ctx context.Context) (uint64, error) {
	deadline := time.NewTimer(seekFetchTimeout)
	defer deadline.Stop()
	for {
		v.src.mu.Lock()
		ch := v.src.changed
		v.src.mu.Unlock()
		if n := v.src.Len(); n >= 2 {
			return n, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, ErrSeekEmpty
		}
	}
}
