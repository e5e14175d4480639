package block

import "time"

// Runs joins a resumed stream's runs back to back on one timeline. Each time the broadcaster
// goes live again the stream gets a new header and that run's times start again at zero; Runs
// moves each run's units after the end of everything before it, with no gap for the time the
// broadcaster was away. A later header whose tracks differ from the first's cannot join (one
// file, one player, has one set of tracks): Next says so, and the joined timeline ends there.
//
// This is the one place the joining rule lives: an export and a viewer's stored copy place
// the same unit at the same time.
type Runs struct {
	first *Header
	// minDur is the least time a unit takes on the timeline: a picture lasts its frame
	// interval even when its Duration says less, so the next run's first picture does not
	// share a frame slot with the last one before it.
	minDur time.Duration
	shift  time.Duration // added to the current run's times
	end    time.Duration // where the units placed so far end, joined
	n      int
}

// NewRuns starts a joined timeline under the stream's first header (the one in force where
// reading starts).
func NewRuns(first *Header) *Runs {
	r := &Runs{first: first, minDur: time.Millisecond, n: 1}
	if first.Video != nil {
		r.minDur = max(r.minDur, first.Video.FrameDuration())
	}
	return r
}

// Next is called for each later header met in the stream. It reports whether the new run
// joins: when it does, the units after it are placed after everything before; when it does
// not, nothing changes and the caller ends the timeline at this header.
func (r *Runs) Next(h *Header) bool {
	if !r.first.SameShape(h) {
		return false
	}
	r.shift = r.end
	r.n++
	return true
}

// Place moves u onto the joined timeline and notes where it ends.
func (r *Runs) Place(u *Unit) {
	u.PTS += r.shift
	r.end = max(r.end, u.PTS+max(u.Duration, r.minDur))
}

// Resume is called where units resume after a hole (blocks the reader does not hold), with
// the units of the first block after it: they, and the rest of their run, are placed right
// after everything before, so the joined timeline has no stretch of nothing for the hole.
func (r *Runs) Resume(units []Unit) {
	if len(units) == 0 {
		return
	}
	first := units[0].PTS
	for _, u := range units[1:] {
		first = min(first, u.PTS)
	}
	r.shift = r.end - first
}

// Shift is what Place adds to the current run's times.
func (r *Runs) Shift() time.Duration { return r.shift }

// Count is how many runs have joined, the first included.
func (r *Runs) Count() int { return r.n }
