package session

import (
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
)

func vUnit(pts, dur time.Duration) block.Unit {
	return block.Unit{Track: block.Video, PTS: pts, Duration: dur, Payload: []byte{1}}
}
func aUnit(pts time.Duration) block.Unit {
	return block.Unit{Track: block.Audio, PTS: pts, Duration: 20 * time.Millisecond, Payload: []byte{2}}
}

// A block is billed for how far it moves the end of the stream's timeline: whatever mix of
// pictures and sound the blocks hold, a stream's blocks sum to its length.
func TestMediaMillis(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		blocks [][]block.Unit
		want   []uint64
	}{
		{"pictures at 15 a second with sound riding along", [][]block.Unit{
			{vUnit(0, 66667*time.Microsecond), aUnit(0), aUnit(20 * ms), aUnit(40 * ms)},
			{vUnit(66667*time.Microsecond, 66667*time.Microsecond), aUnit(60 * ms), aUnit(80 * ms), aUnit(100 * ms)},
		}, []uint64{66, 67}},
		{"sound alone while pictures stall, then a late picture", [][]block.Unit{
			{vUnit(0, 66*ms)},
			{aUnit(66 * ms), aUnit(86 * ms), aUnit(106 * ms), aUnit(126 * ms), aUnit(146 * ms)}, // to 166
			{vUnit(200*ms, 66*ms), aUnit(166 * ms), aUnit(186 * ms)},                            // to 266
		}, []uint64{66, 100, 100}},
		{"pictures the encoder dropped: the next one covers the gap", [][]block.Unit{
			{vUnit(0, 33*ms)},
			{vUnit(100*ms, 33*ms)},
		}, []uint64{33, 100}},
		{"a block wholly inside what was billed costs nothing", [][]block.Unit{
			{vUnit(0, 100*ms)},
			{aUnit(40 * ms)},
		}, []uint64{100, 0}},
		{"the first block after a header counts its own span", [][]block.Unit{
			{aUnit(5 * time.Second), aUnit(5*time.Second + 20*ms)},
		}, []uint64{40}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &feedSink{lastEnd: -1}
			var total uint64
			var first, last time.Duration = -1, 0
			for i, units := range tc.blocks {
				m := &block.Media{Seq: uint64(i + 1), Units: units}
				got := mediaMillis(m, s.lastEnd)
				start, end, _ := mediaEnd(m)
				s.lastEnd = max(s.lastEnd, end)
				if first < 0 {
					first = start
				}
				last = max(last, end)
				if got != tc.want[i] {
					t.Errorf("block %d billed %d ms, want %d", i, got, tc.want[i])
				}
				total += got
			}
			if span := uint64(last.Milliseconds() - first.Milliseconds()); total != span {
				t.Errorf("blocks billed %d ms in all; the stream is %d ms long", total, span)
			}
		})
	}
}
