package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/wakeup"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// feedSink appends the broadcaster's blocks to the feed, marking key frames and headers as
// sync points. A resumed stream continues an existing feed: the pipeline numbers its blocks
// from 0, so the sink renumbers media blocks to their index in the feed (the sequence number
// is how a player notices a block out of place).
type feedSink struct {
	f        *feed.Feed
	offset   uint64 // feed length when this run started
	onAppend func(index uint64, mediaMillis uint64, sync bool)
	lastEnd  time.Duration // where the previous media block ended (-1: none since a header)
}

func (s *feedSink) Append(_ context.Context, b []byte, sync bool) error {
	var ms uint64
	if m, err := block.DecodeMedia(b); err != nil {
		s.lastEnd = -1 // a header: a new run's timeline starts
	} else {
		ms = mediaMillis(m, s.lastEnd)
		if _, end, ok := mediaEnd(m); ok {
			s.lastEnd = max(s.lastEnd, end)
		}
		if s.offset > 0 {
			m.Seq += s.offset
			enc, err := m.MarshalBinary()
			if err != nil {
				return fmt.Errorf("renumbering a block of the resumed stream: %w", err)
			}
			b = enc
		}
	}
	var h feed.Head
	var err error
	if sync {
		h, err = s.f.AppendSync(b)
	} else {
		h, err = s.f.Append(b)
	}
	if err != nil {
		return err
	}
	if s.onAppend != nil {
		s.onAppend(h.Length-1, ms, sync)
	}
	return nil
}

// mediaEnd is where block m ends on the stream's timeline: the latest end of its units.
func mediaEnd(m *block.Media) (start, end time.Duration, ok bool) {
	for i, u := range m.Units {
		if i == 0 || u.PTS < start {
			start = u.PTS
		}
		end = max(end, u.PTS+u.Duration)
	}
	return start, end, len(m.Units) > 0
}

// mediaMillis is the media time block m adds to the stream, for billing: how far it moves the
// end of the stream's timeline past prevEnd, where the block before it ended (negative when
// unknown: the first block after a header, whose own span counts). Counting the timeline's
// advance instead of the units' durations bills what a viewer can watch exactly once: a block
// of sound alone while pictures stall, pictures the encoder dropped, and sound riding along
// with the pictures are neither billed twice nor skipped. Milliseconds are taken as the
// difference of whole-millisecond ends, so a stream's blocks sum to its length with no
// rounding per block.
func mediaMillis(m *block.Media, prevEnd time.Duration) uint64 {
	start, end, ok := mediaEnd(m)
	if !ok {
		return 0
	}
	from := start
	if prevEnd >= 0 {
		from = prevEnd
	}
	if a, b := from.Milliseconds(), end.Milliseconds(); b > a {
		return uint64(b - a)
	}
	return 0
}

// readerSource is playback's BlockSource over a viewer's reader feed: blocks arrive verified
// from the seller (live pushes, or ranges the source asks for), and Block waits for them.
// The viewer's own source follows the newest header the seller announced (base moves); each
// player plays a run view of it (at), whose base is fixed, so a header announced while a
// player the user moved plays does not shift that player's numbering under it.
type readerSource struct {
	feed   func() *feed.Feed
	latest func() (uint64, bool) // the seller's newest sync point
	length func() uint64         // the seller's signed length
	// fetch asks for blocks from start on; header says block start is a stream header,
	// wanted alone (the media after it may not be).
	fetch   func(ctx context.Context, start uint64, header bool)
	base    atomic.Uint64 // the header's index: blocks are numbered from it for the player
	crossed atomic.Uint64 // 1 + the index of a later header the player reached (a resumed stream)
	*arrivals
}

// arrivals wakes readers waiting for a block; the viewer's source and its run views share it.
type arrivals struct {
	changed wakeup.Signal // notified whenever a block arrives
}

func newReaderSource() *readerSource {
	return &readerSource{arrivals: &arrivals{}}
}

// at is a view of s whose blocks are numbered from the header at index base, for one player.
func (s *readerSource) at(base uint64) *readerSource {
	r := &readerSource{feed: s.feed, latest: s.latest, length: s.length, fetch: s.fetch, arrivals: s.arrivals}
	r.base.Store(base)
	return r
}

// raise moves the viewer's newest header to h when h is newer.
func (s *readerSource) raise(h uint64) {
	for {
		old := s.base.Load()
		if h <= old || s.base.CompareAndSwap(old, h) {
			return
		}
	}
}

// arrived wakes readers waiting for a block.
func (s *arrivals) arrived() { s.changed.Notify() }

// wait is closed when the next block arrives.
func (s *arrivals) wait() <-chan struct{} { return s.changed.C() }

func (s *readerSource) Len() uint64 {
	if n, base := s.length(), s.base.Load(); n > base {
		return n - base
	}
	return 0
}

func (s *readerSource) LatestSync() (uint64, bool) {
	i, ok := s.latest()
	base := s.base.Load()
	if !ok || i < base {
		return 0, false
	}
	return i - base, true
}

// Block returns block i counted from the header the player plays. A later header (the stream
// was stopped and resumed, perhaps with other codec parameters) ends this player's stream: the
// viewer starts a new player on it.
//
// A block not held is asked for (fetch), and asked for again every refetchEvery while it is
// within the signed length and still not held: a fetch can fail (a relay's gap and a full
// seller, paid time that ran out until a top-up), and a player waiting on the block would
// otherwise wait for good. One past the signed length is asked for once: it comes live.
func (s *readerSource) Block(ctx context.Context, i uint64) ([]byte, error) {
	base := s.base.Load()
	idx := base + i
	var askedAt time.Time
	for {
		ch := s.wait()
		f := s.feed()
		if f.Has(idx) {
			b, err := f.Read(idx)
			if err == nil && i > 0 && block.KindOf(b) == block.KindHeader {
				s.crossed.Store(idx + 1)
				return nil, fmt.Errorf("a new stream header at block %d: %w", idx, io.EOF)
			}
			if err == nil {
				if m, derr := block.DecodeMedia(b); derr == nil && base > 0 && m.Seq >= base {
					// The player counts from the header it played: shift the numbering back.
					m.Seq -= base
					if enc, eerr := m.MarshalBinary(); eerr == nil {
						b = enc
					}
				}
			}
			return b, err
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		var again *time.Timer
		if s.fetch != nil {
			signed := idx < s.length()
			if askedAt.IsZero() || signed && time.Since(askedAt) >= refetchEvery {
				s.fetch(ctx, idx, i == 0)
				askedAt = time.Now()
			}
			if signed {
				again = time.NewTimer(refetchEvery - time.Since(askedAt))
			}
		}
		if err := waitArrival(ctx, ch, again); err != nil {
			return nil, err
		}
	}
}

// waitArrival waits for ch to close, the timer t (if any) to fire, or ctx to end, and stops t.
func waitArrival(ctx context.Context, ch <-chan struct{}, t *time.Timer) error {
	var fired <-chan time.Time
	if t != nil {
		defer t.Stop()
		fired = t.C
	}
	select {
	case <-ch:
	case <-fired:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// refetchEvery is how often a player waiting for a signed block not held asks for it again.
const refetchEvery = time.Second
