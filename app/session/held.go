package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// HeldSource is the part of the stream this viewer holds, as a block source for export:
// the header, then every held block from the first sync point on, holes left out (see
// HeldStream).
func (v *Viewer) HeldSource() (HeldStream, error) { return heldStream(v.currentFeed()) }

// HeldStream is a stored copy's playable part: the stream header in force at its first held
// sync block, then every held media block from there, in order, as one timeline. A hole (the
// viewer was away, or its paid time ran out) is left out: the blocks after it join from the
// next held sync block, placed right after what came before, so the file holds what the viewer
// watched with no stretch of nothing for the time it missed. A resumed stream's later headers
// are skipped the same way when the pictures and sound keep their shape (the next run's
// timestamps, which start again at zero, are moved after the runs before it); a header that
// changes them ends the copy, since one WebM file has one set of track parameters.
//
// After a hole the blocks are taken to be under the newest header held before them: a viewer
// holds the header of every run it played, so only a run it never saw a block of could hide in
// a hole, and that run's blocks are not held either.
type HeldStream struct {
	f      *feed.Feed
	header uint64      // the header block in force at the first held sync block
	pieces []heldPiece // the held media blocks, in order
	total  uint64      // media blocks in all the pieces
}

// heldPiece is a stretch of consecutive stored media blocks, feed indexes [from, to), whose
// units move by shift on the joined timeline; before is how many media blocks the earlier
// pieces hold.
type heldPiece struct {
	from, to uint64
	before   uint64
	shift    time.Duration
}

func heldStream(f *feed.Feed) (HeldStream, error) {
	if !f.Has(0) {
		return HeldStream{}, errors.New("nothing of this stream was received yet (not even its header)")
	}
	var (
		h      HeldStream
		runs   *block.Runs   // nil until the first held sync block
		hdr    *block.Header // the newest held header
		hdrAt  uint64
		open   bool          // the last piece is still growing
		hole   bool          // blocks were missing since the last placed one
		first  *block.Header // the header the file's tracks are described by
		hdrErr error
	)
	n := f.Length()
	for i := uint64(0); i < n; i++ {
		if !f.Has(i) {
			open, hole = false, true
			continue
		}
		b, err := f.Read(i)
		if err != nil {
			open, hole = false, true
			continue
		}
		if later, err := block.DecodeHeader(b); err == nil {
			open = false
			if runs != nil && !runs.Next(later) {
				break // another shape: the file ends with the run before
			}
			hdr, hdrAt, hole = later, i, false
			continue
		} else if i == 0 {
			hdrErr = fmt.Errorf("the stream header is unreadable: %w", err)
		}
		m, err := block.DecodeMedia(b)
		if err != nil {
			open, hole = false, true
			continue
		}
		if !open {
			if hdr == nil || !startsPicture(m, hdr) {
				hole = true // a picture cannot start here, or its part's header is not held
				continue
			}
			// A run whose header fell in a hole would be written under the tracks of the
			// one before: its key frame's size tells it when the picture size differs.
			shape := hdr
			if first != nil {
				shape = first
			}
			if !sizeMatches(m, shape) {
				if runs == nil {
					hole = true
					continue
				}
				break
			}
			if runs == nil {
				runs, h.header, first = block.NewRuns(hdr), hdrAt, hdr
			} else if hole {
				runs.Resume(m.Units)
			}
			h.pieces = append(h.pieces, heldPiece{from: i, to: i, before: h.total, shift: runs.Shift()})
			open, hole = true, false
		}
		for k := range m.Units {
			runs.Place(&m.Units[k])
		}
		h.pieces[len(h.pieces)-1].to = i + 1
		h.total++
	}
	if runs == nil {
		if hdrErr != nil {
			return HeldStream{}, hdrErr
		}
		return HeldStream{}, errors.New("no key frame of this stream was received yet")
	}
	h.f = f
	return h, nil
}

// startsPicture reports whether playback can start at m under hdr: with video, its first
// video unit is a key frame (a block of sound alone, which IsSync takes, is followed by the
// pictures that depend on an earlier key frame); without, any block.
func startsPicture(m *block.Media, hdr *block.Header) bool {
	if hdr.Video == nil {
		return m.IsSync()
	}
	for _, u := range m.Units {
		if u.Track == block.Video {
			return u.Key
		}
	}
	return false
}

// sizeMatches reports whether m's key frame (if it has one) declares hdr's picture size.
func sizeMatches(m *block.Media, hdr *block.Header) bool {
	if hdr.Video == nil {
		return true
	}
	for _, u := range m.Units {
		if u.Track == block.Video && u.Key {
			w, h, ok := vp8.KeyFrameSize(u.Payload)
			return !ok || (w == int(hdr.Video.Width) && h == int(hdr.Video.Height))
		}
	}
	return true
}

// Len is the header plus the held media blocks.
func (h HeldStream) Len() uint64 { return 1 + h.total }

// Span says which of the stored blocks the copy is made of: pieces stretches of consecutive
// blocks (holes and later headers between them are left out), from the first held sync block
// to the end of the last piece (the feed's numbering).
func (h HeldStream) Span() (pieces int, start, end uint64) {
	return len(h.pieces), h.pieces[0].from, h.pieces[len(h.pieces)-1].to
}

// Block returns the header for 0 and the held media blocks renumbered from 1.
func (h HeldStream) Block(_ context.Context, i uint64) ([]byte, error) {
	if i == 0 {
		return h.f.Read(h.header)
	}
	if i > h.total {
		return nil, fmt.Errorf("block %d of a stored copy of %d: %w", i, h.Len(), io.EOF)
	}
	k := sort.Search(len(h.pieces), func(k int) bool { return h.pieces[k].before >= i }) - 1
	p := h.pieces[k]
	b, err := h.f.Read(p.from + i - 1 - p.before)
	if err != nil {
		return nil, err
	}
	m, err := block.DecodeMedia(b)
	if err != nil {
		return nil, err
	}
	m.Seq = i
	if p.shift != 0 {
		for k := range m.Units {
			m.Units[k].PTS += p.shift
		}
	}
	return m.MarshalBinary()
}

// HeldOf is the playable part of a stored copy already open (export DIR of a copy with gaps).
func HeldOf(f *feed.Feed) (HeldStream, error) { return heldStream(f) }

// OpenHeld opens the stored copy of a watched stream (the session must be stopped) as a block
// source for export; close it with the returned function.
func OpenHeld(d DataDir, c card.Card) (HeldStream, func() error, error) {
	dir := filepath.Join(d.watchedDir(fmt.Sprintf("%x", c.Feed[:])), "feed")
	f, err := feed.Open(dir, feed.Options{ReadOnly: true})
	if err != nil {
		return HeldStream{}, nil, fmt.Errorf("no stored copy of this stream: %w", err)
	}
	h, err := heldStream(f)
	if err != nil {
		f.Close()
		return HeldStream{}, nil, err
	}
	return h, f.Close, nil
}
