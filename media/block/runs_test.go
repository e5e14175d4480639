package block

import (
	"testing"
	"time"
)

func TestRunsJoinBackToBack(t *testing.T) {
	ms := time.Millisecond
	opus := &AudioParams{Codec: CodecOpus, SampleRate: 48000, Channels: 1, FrameDuration: 20 * ms, BitRate: 32000}
	vp8 := &VideoParams{Codec: CodecVP8, Width: 640, Height: 480, FrameRateNum: 25, FrameRateDen: 1}
	vp8Big := &VideoParams{Codec: CodecVP8, Width: 1280, Height: 720, FrameRateNum: 25, FrameRateDen: 1}
	type step struct {
		header *Header // a later header (nil: a unit)
		joins  bool    // what Next must say of it
		resume []Unit  // the first block after a hole: Resume, then place each
		unit   Unit
		want   time.Duration // the unit's joined time
	}
	tests := []struct {
		name  string
		first *Header
		steps []step
		runs  int
	}{
		{
			name:  "sound only: the next run starts where the last packet ends",
			first: &Header{Audio: opus},
			steps: []step{
				{unit: Unit{Track: Audio, PTS: 0, Duration: 20 * ms}, want: 0},
				{unit: Unit{Track: Audio, PTS: 980 * ms, Duration: 20 * ms}, want: 980 * ms},
				{header: &Header{Audio: opus}, joins: true},
				{unit: Unit{Track: Audio, PTS: 0, Duration: 20 * ms}, want: time.Second},
				{unit: Unit{Track: Audio, PTS: 40 * ms, Duration: 20 * ms}, want: 1040 * ms},
				{header: &Header{Audio: opus}, joins: true},
				{unit: Unit{Track: Audio, PTS: 5 * ms, Duration: 20 * ms}, want: 1065 * ms},
			},
			runs: 3,
		},
		{
			name:  "a picture lasts its frame interval even when its duration says less",
			first: &Header{Video: vp8, Audio: opus},
			steps: []step{
				{unit: Unit{Track: Video, Key: true, PTS: 0}, want: 0},
				{unit: Unit{Track: Video, PTS: 40 * ms, Duration: ms}, want: 40 * ms},
				{unit: Unit{Track: Audio, PTS: 20 * ms, Duration: 20 * ms}, want: 20 * ms},
				{header: &Header{Video: vp8, Audio: opus}, joins: true},
				{unit: Unit{Track: Video, Key: true, PTS: 0}, want: 80 * ms},
			},
			runs: 2,
		},
		{
			name:  "tracks that change do not join, and the timeline does not move",
			first: &Header{Video: vp8, Audio: opus},
			steps: []step{
				{unit: Unit{Track: Video, Key: true, PTS: 0, Duration: 40 * ms}, want: 0},
				{header: &Header{Video: vp8Big, Audio: opus}, joins: false},
				{header: &Header{Audio: opus}, joins: false},
				{unit: Unit{Track: Video, PTS: 40 * ms, Duration: 40 * ms}, want: 40 * ms},
			},
			runs: 1,
		},
		{
			name:  "a hole is left out: the block after it follows what came before",
			first: &Header{Audio: opus},
			steps: []step{
				{unit: Unit{Track: Audio, PTS: 0, Duration: 20 * ms}, want: 0},
				{unit: Unit{Track: Audio, PTS: 20 * ms, Duration: 20 * ms}, want: 20 * ms},
				{resume: []Unit{{Track: Audio, PTS: 5 * time.Second, Duration: 20 * ms}}, want: 40 * ms},
				{unit: Unit{Track: Audio, PTS: 5*time.Second + 20*ms, Duration: 20 * ms}, want: 60 * ms},
				{header: &Header{Audio: opus}, joins: true},
				{unit: Unit{Track: Audio, PTS: 0, Duration: 20 * ms}, want: 80 * ms},
			},
			runs: 2,
		},
		{
			name:  "after a hole the block's earliest unit starts where the last picture ends",
			first: &Header{Video: vp8, Audio: opus},
			steps: []step{
				{unit: Unit{Track: Video, Key: true, PTS: 0}, want: 0},
				{unit: Unit{Track: Video, PTS: 40 * ms, Duration: ms}, want: 40 * ms},
				{resume: []Unit{{Track: Video, Key: true, PTS: 2 * time.Second}, {Track: Audio, PTS: 1990 * ms, Duration: 20 * ms}}, want: 80 * ms},
			},
			runs: 1,
		},
		{
			name:  "units out of order: the run ends at the latest one",
			first: &Header{Audio: opus},
			steps: []step{
				{unit: Unit{Track: Audio, PTS: 100 * ms, Duration: 20 * ms}, want: 100 * ms},
				{unit: Unit{Track: Audio, PTS: 60 * ms, Duration: 20 * ms}, want: 60 * ms},
				{header: &Header{Audio: opus}, joins: true},
				{unit: Unit{Track: Audio, PTS: 0, Duration: 20 * ms}, want: 120 * ms},
			},
			runs: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRuns(tt.first)
			for i, s := range tt.steps {
				if s.header != nil {
					if got := r.Next(s.header); got != s.joins {
						t.Fatalf("step %d: Next = %v, want %v", i, got, s.joins)
					}
					continue
				}
				if s.resume != nil {
					r.Resume(s.resume)
					earliest := time.Duration(1<<63 - 1)
					for _, u := range s.resume {
						r.Place(&u)
						earliest = min(earliest, u.PTS)
					}
					if earliest != s.want {
						t.Fatalf("step %d: the block after the hole placed from %v, want %v", i, earliest, s.want)
					}
					continue
				}
				u := s.unit
				r.Place(&u)
				if u.PTS != s.want {
					t.Fatalf("step %d: placed at %v, want %v", i, u.PTS, s.want)
				}
			}
			if r.Count() != tt.runs {
				t.Fatalf("%d runs joined, want %d", r.Count(), tt.runs)
			}
		})
	}
}
