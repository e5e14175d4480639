package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
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
// that is the live edge because t was past it. Without playback (NoPlayback) the download
// goes on from that block instead.
func (v *Viewer) Seek(ctx context.Context, t time.Duration) (at time.Duration, live bool, err error) {
	src, k, at, err := v.seekBlock(ctx, t)
	if err != nil {
		return 0, false, err
	}
	if v.cfg.NoPlayback {
		// Nothing plays: the download goes on from there instead (past the live edge it
		// follows the edge, as it does).
		if k > 0 {
			v.downloadFrom(src.base.Load() + k)
		}
		v.log.Info("seek (download only)", "to", t, "block", k, "starts at", at)
		return at, k == 0, nil
	}
	if k == 0 {
		v.playNewest(0) // live: under the newest header, even one announced during the search
	} else {
		v.playAt(src.base.Load(), k)
	}
	v.log.Info("seek", "to", t, "block", k, "starts at", at)
	return at, k == 0, nil
}

// SeekBlock finds where Seek would restart, without restarting anything: the source of the
// stream's newest run (blocks counted from its header; reading past a later header ends it
// with io.EOF), the block in it and its time; block 0 with the newest block's time when t
// is past the live edge. One search counts from one header, even if the seller announces a
// newer one meanwhile. Exports of what is being watched, live, read the source (watch -o -).
func (v *Viewer) SeekBlock(ctx context.Context, t time.Duration) (playback.BlockSource, uint64, time.Duration, error) {
	return v.seekBlock(ctx, t)
}

// seekBlock is SeekBlock with the run view itself, whose header Seek plays under.
func (v *Viewer) seekBlock(ctx context.Context, t time.Duration) (*readerSource, uint64, time.Duration, error) {
	src, err := v.seekSource(ctx, t)
	if err != nil {
		return nil, 0, 0, err
	}
	k, at, err := v.seekIn(ctx, src, t)
	return src, k, at, err
}

// SeekSource is the block source of the stream's newest run: blocks counted from its header,
// Block waiting for (and asking the seller for) what is not held yet; reading past a later
// header ends it with io.EOF. It waits, as a seek does, until the seller said where the
// newest header is. Exports of what is being watched, live, read it (watch -o -).
func (v *Viewer) SeekSource(ctx context.Context) (playback.BlockSource, error) {
	return v.seekSource(ctx, 0)
}

// seekSource is the view of the newest run a seek to t searches. Just after Start the seller
// has not yet said where its newest header is (a resumed stream's is not block 0): it waits
// for that, up to seekFetchTimeout, then takes what it knows.
func (v *Viewer) seekSource(ctx context.Context, t time.Duration) (*readerSource, error) {
	if t < 0 {
		return nil, fmt.Errorf("cannot seek to %v: times count from the start of the stream, at 0", t)
	}
	if v.src == nil || v.rv == nil {
		return nil, errors.New("cannot seek: the viewer has not started")
	}
	deadline := time.NewTimer(seekFetchTimeout)
	defer deadline.Stop()
	for !v.headerKnown.Load() {
		ch := v.src.wait()
		if v.headerKnown.Load() {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			v.log.Warn("the seller did not say where its newest stream header is; seeking from the one known", "header", v.src.base.Load())
			return v.src.at(v.src.base.Load()), nil
		}
	}
	return v.src.at(v.src.base.Load()), nil
}

func (v *Viewer) seekIn(ctx context.Context, src *readerSource, t time.Duration) (uint64, time.Duration, error) {
	base := src.base.Load()
	n, err := v.waitLength(ctx, src)
	if err != nil {
		return 0, 0, err
	}
	last, err := v.blockTime(ctx, base, n-1)
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
		pts, err := v.blockTime(ctx, base, mid)
		if err != nil {
			return 0, 0, err
		}
		if pts <= t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	video, err := v.hasVideo(ctx, base)
	if err != nil {
		return 0, 0, err
	}
	return v.syncAtOrBefore(ctx, base, lo, video)
}

// blockMedia reads block i counted from the header at index base, fetching it when it is
// not held.
func (v *Viewer) blockMedia(ctx context.Context, base, i uint64) (*block.Media, error) {
	idx := base + i
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
		if errors.Is(err, replicate.ErrNotHeld) {
			return fmt.Errorf("that part of the stream cannot be fetched now: %w", err)
		}
		return fmt.Errorf("fetching blocks %d to %d: %w", start, end-1, err)
	}
	return nil
}

// blockTime is block i's earliest timestamp.
func (v *Viewer) blockTime(ctx context.Context, base, i uint64) (time.Duration, error) {
	m, err := v.blockMedia(ctx, base, i)
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

// hasVideo reads the stream header at index idx.
func (v *Viewer) hasVideo(ctx context.Context, idx uint64) (bool, error) {
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
func (v *Viewer) syncAtOrBefore(ctx context.Context, base, i uint64, video bool) (uint64, time.Duration, error) {
	for i >= 1 {
		lo := max(i, seekBackChunk) - seekBackChunk + 1
		if err := v.fetchRange(ctx, base+lo, base+i+1); err != nil {
			return 0, 0, err
		}
		for ; i >= lo; i-- {
			m, err := v.blockMedia(ctx, base, i)
			if err != nil {
				return 0, 0, err
			}
			if at, ok := startsAt(m, video); ok {
				return i, at, nil
			}
		}
	}
	t, err := v.blockTime(ctx, base, 1)
	return 1, t, err
}

// waitLength waits (up to seekFetchTimeout: a viewer just started is still connecting) until
// the seller has said the stream holds media, and returns its length.
func (v *Viewer) waitLength(ctx context.Context, src *readerSource) (uint64, error) {
	deadline := time.NewTimer(seekFetchTimeout)
	defer deadline.Stop()
	for {
		ch := v.src.wait()
		if n := src.Len(); n >= 2 {
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
