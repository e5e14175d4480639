package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/feed/feedtest"
)

// A player plays a view of the viewer's source numbered from the header it started under: a
// newer header announced meanwhile (the broadcaster resumed the stream) moves the viewer's
// newest header, never the numbering of a player the user sought or paused, which read the
// new run's blocks as its own mid-run before. The view ends at the next run's header and
// says where it is.
func TestRunViewKeepsItsHeader(t *testing.T) {
	f := newWritableFeed(t)
	// Run 1: header 0, media 1..5 at 1 s..5 s. Run 2: header 6, media 7..10 at 100 ms...
	header, err := (&block.Header{Start: time.Unix(1e9, 0), Audio: &block.AudioParams{Codec: block.CodecOpus, SampleRate: 48000,
		Channels: 1, FrameDuration: 20 * time.Millisecond, BitRate: 32000}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	appendMedia := func(seq uint64, pts time.Duration) {
		b, err := (&block.Media{Seq: seq, Units: []block.Unit{{Track: block.Audio, PTS: pts, Duration: 20 * time.Millisecond, Payload: []byte{1, 2, 3}}}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	f.Append(header)
	for i := uint64(1); i <= 5; i++ {
		appendMedia(i, time.Duration(i)*time.Second)
	}
	f.Append(header)
	for i := uint64(7); i <= 10; i++ {
		appendMedia(i, time.Duration(i-6)*100*time.Millisecond)
	}

	src := newReaderSource()
	src.feed = func() *feed.Feed { return f }
	src.length = f.Length
	src.latest = func() (uint64, bool) { return 7, true }
	ctx := context.Background()
	pts := func(s *readerSource, i uint64) (uint64, time.Duration) {
		t.Helper()
		b, err := s.Block(ctx, i)
		if err != nil {
			t.Fatalf("block %d of the view at %d: %v", i, s.base.Load(), err)
		}
		m, err := block.DecodeMedia(b)
		if err != nil {
			t.Fatal(err)
		}
		return m.Seq, m.Units[0].PTS
	}

	run1 := src.at(src.base.Load())
	if seq, at := pts(run1, 3); seq != 3 || at != 3*time.Second {
		t.Fatalf("before the new header: block 3 is seq %d at %v", seq, at)
	}
	src.raise(6) // the seller announces the second run's header
	src.raise(2) // an older announcement arriving late changes nothing
	if got := src.base.Load(); got != 6 {
		t.Fatalf("the newest header is %d, want 6", got)
	}
	if seq, at := pts(run1, 4); seq != 4 || at != 4*time.Second {
		t.Fatalf("after the new header the first run's player read block 4 as seq %d at %v: another run's block", seq, at)
	}
	if n := run1.Len(); n != 11 {
		t.Fatalf("the first run's view has length %d, want 11", n)
	}
	if _, err := run1.Block(ctx, 6); !errors.Is(err, io.EOF) || run1.crossed.Load() != 7 {
		t.Fatalf("reading into the next run: %v, crossed %d", err, run1.crossed.Load())
	}
	run2 := src.at(src.base.Load())
	if seq, at := pts(run2, 2); seq != 2 || at != 200*time.Millisecond {
		t.Fatalf("the second run's block 2 is seq %d at %v", seq, at)
	}
	if k, ok := run2.LatestSync(); !ok || k != 1 {
		t.Fatalf("the second run's newest sync point is %d (%v), want 1", k, ok)
	}
	if run2.crossed.Load() != 0 || src.crossed.Load() != 0 {
		t.Fatal("a view's crossing leaked into another")
	}
}

// A viewer's stored copy joins a resumed stream's runs of the same shape back to back, as
// media/export does: the next run's timeline, from zero again, follows the run before it,
// with no gap for the time the broadcaster was away (an hour here, which the copy's file
// held as an hour of nothing before).
func TestHeldStreamJoinsRunsBackToBack(t *testing.T) {
	f := newWritableFeed(t)
	start := time.Unix(1e9, 0)
	header := func(at time.Time) []byte {
		b, err := (&block.Header{Start: at, Audio: &block.AudioParams{Codec: block.CodecOpus, SampleRate: 48000,
			Channels: 1, FrameDuration: 20 * time.Millisecond, BitRate: 32000}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	appendMedia := func(pts time.Duration) {
		b, err := (&block.Media{Seq: f.Length(), Units: []block.Unit{{Track: block.Audio, PTS: pts, Duration: 20 * time.Millisecond, Payload: []byte{1}}}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	f.Append(header(start))
	for i := 1; i <= 5; i++ {
		appendMedia(time.Duration(i) * time.Second) // the first run ends at 5.02 s
	}
	f.Append(header(start.Add(time.Hour)))
	for i := 1; i <= 3; i++ {
		appendMedia(time.Duration(i) * 100 * time.Millisecond)
	}
	h, err := heldStream(f)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.Len(); n != 9 {
		t.Fatalf("the held stream has %d blocks, want the header and 8 media blocks", n)
	}
	var got []time.Duration
	for i := uint64(1); i < h.Len(); i++ {
		b, err := h.Block(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		m, err := block.DecodeMedia(b)
		if err != nil || m.Seq != i {
			t.Fatalf("block %d: %v (seq %d)", i, err, m.Seq)
		}
		got = append(got, m.Units[0].PTS)
	}
	runEnd := 5*time.Second + 20*time.Millisecond
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second,
		runEnd + 100*time.Millisecond, runEnd + 200*time.Millisecond, runEnd + 300*time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the held stream's times are %v, want %v", got, want)
		}
	}
}

// newWritableFeed is a new feed with a fresh key, closed when the test ends.
func newWritableFeed(t *testing.T) *feed.Feed {
	t.Helper()
	seed := make([]byte, 32)
	rand.Read(seed)
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	f, err := feed.Create(filepath.Join(t.TempDir(), "feed"), feed.Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A viewer's stored copy has holes where it was away or its paid time ran out: the copy
// leaves them out. Each piece after a hole starts at its next held key frame (the blocks
// before it cannot be shown) and is placed right after the piece before, so the file holds
// what the viewer watched, with no stretch of nothing for the time it missed.
func TestHeldStreamLeavesHolesOut(t *testing.T) {
	w := newWritableFeed(t)
	const frame = 40 * time.Millisecond
	header, err := (&block.Header{Start: time.Unix(1e9, 0), Video: &block.VideoParams{Codec: block.CodecVP8, Width: 64, Height: 48,
		FrameRateNum: 25, FrameRateDen: 1}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w.Append(header)
	for i := uint64(1); i <= 20; i++ { // a key frame every 5 blocks: 1, 6, 11, 16
		b, err := (&block.Media{Seq: i, Units: []block.Unit{{Track: block.Video, Key: (i-1)%5 == 0, PTS: time.Duration(i-1) * frame,
			Duration: frame, Payload: []byte{byte(i)}}}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		w.Append(b)
	}
	held := []uint64{0, 3, 4, 5, 6, 7, 8, 13, 14, 15, 16, 17, 18, 19, 20}
	r := sparseCopy(t, w, held)

	h, err := heldStream(r)
	if err != nil {
		t.Fatal(err)
	}
	if pieces, from, to := h.Span(); pieces != 2 || from != 6 || to != 21 {
		t.Fatalf("the copy is %d pieces of blocks %d to %d, want 2 of 6 to 21", pieces, from, to)
	}
	type at struct {
		payload byte
		pts     time.Duration
	}
	want := []at{{6, 5 * frame}, {7, 6 * frame}, {8, 7 * frame}, {16, 8 * frame}, {17, 9 * frame}, {18, 10 * frame}, {19, 11 * frame}, {20, 12 * frame}}
	if h.Len() != uint64(1+len(want)) {
		t.Fatalf("the copy has %d blocks, want the header and %d", h.Len(), len(want))
	}
	if b, err := h.Block(context.Background(), 0); err != nil || !bytes.Equal(b, header) {
		t.Fatalf("block 0 is not the header: %v", err)
	}
	for i, wa := range want {
		b, err := h.Block(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		m, err := block.DecodeMedia(b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Seq != uint64(i+1) || m.Units[0].Payload[0] != wa.payload || m.Units[0].PTS != wa.pts {
			t.Fatalf("block %d of the copy is seq %d, stored block %d at %v; want stored block %d at %v",
				i+1, m.Seq, m.Units[0].Payload[0], m.Units[0].PTS, wa.payload, wa.pts)
		}
	}
	if _, err := h.Block(context.Background(), h.Len()); !errors.Is(err, io.EOF) {
		t.Fatalf("reading past the copy: %v", err)
	}

	// Nothing to start a picture from: a copy of the header and blocks between key frames.
	if _, err := heldStream(sparseCopy(t, w, []uint64{0, 2, 3, 4})); err == nil {
		t.Fatal("a copy without a key frame exported")
	}
}

// sparseCopy is a reader of w's stream holding only the blocks held, each verified.
func sparseCopy(t *testing.T, w *feed.Feed, held []uint64) *feed.Feed {
	t.Helper()
	r := feedtest.SparseCopy(t, w, filepath.Join(t.TempDir(), "copy"), held)
	t.Cleanup(func() { r.Close() })
	return r
}

// A stretch after a hole starts at a key frame, not at a block of sound alone (which IsSync
// takes: the pictures after it need an earlier key frame); and a key frame of another picture
// size after a hole (a run whose header fell in the hole) ends the copy, which was written
// under the earlier run's tracks.
func TestHeldStreamStretchesStartAtKeyFrames(t *testing.T) {
	key := func(w, h int, id byte) []byte {
		return []byte{0x10, 0, 0, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), byte(h), byte(h >> 8), id}
	}
	delta := func(id byte) []byte { return []byte{0x11, id} }
	const frame = 40 * time.Millisecond
	build := func(units map[uint64][]block.Unit, n uint64) *feed.Feed {
		w := newWritableFeed(t)
		hdr, err := (&block.Header{Start: time.Unix(1e9, 0), Video: &block.VideoParams{Codec: block.CodecVP8, Width: 64, Height: 48,
			FrameRateNum: 25, FrameRateDen: 1}, Audio: &block.AudioParams{Codec: block.CodecOpus, SampleRate: 48000, Channels: 1,
			FrameDuration: 20 * time.Millisecond, BitRate: 32000}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		w.Append(hdr)
		for i := uint64(1); i <= n; i++ {
			b, err := (&block.Media{Seq: i, Units: units[i]}).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			w.Append(b)
		}
		return w
	}
	v := func(i uint64, p []byte) []block.Unit {
		return []block.Unit{{Track: block.Video, Key: p[0]&1 == 0, PTS: time.Duration(i) * frame, Duration: frame, Payload: p}}
	}
	sound := func(i uint64) []block.Unit {
		return []block.Unit{{Track: block.Audio, PTS: time.Duration(i) * frame, Duration: 20 * time.Millisecond, Payload: []byte{byte(i)}}}
	}

	// 1 key, 2 delta, (3 missing), 4 sound alone, 5 delta, 6 key, 7 delta.
	w := build(map[uint64][]block.Unit{1: v(1, key(64, 48, 1)), 2: v(2, delta(2)), 3: v(3, delta(3)), 4: sound(4),
		5: v(5, delta(5)), 6: v(6, key(64, 48, 6)), 7: v(7, delta(7))}, 7)
	h, err := heldStream(sparseCopy(t, w, []uint64{0, 1, 2, 4, 5, 6, 7}))
	if err != nil {
		t.Fatal(err)
	}
	if pieces, from, to := h.Span(); pieces != 2 || from != 1 || to != 8 || h.Len() != 5 {
		t.Fatalf("the copy is %d pieces of blocks %d to %d (%d blocks), want 2 of 1 to 8 (the header and 1, 2, 6, 7)", pieces, from, to, h.Len())
	}
	if b, err := h.Block(context.Background(), 3); err != nil {
		t.Fatal(err)
	} else if m, err := block.DecodeMedia(b); err != nil || !m.Units[0].Key || m.Units[0].PTS != 3*frame {
		t.Fatalf("the stretch after the hole starts with %+v (%v), want block 6's key frame at %v", m.Units[0], err, 3*frame)
	}

	// 1 key 64×48, 2 delta, (3 missing: another run's header), 4 key 128×96, 5 delta.
	w = build(map[uint64][]block.Unit{1: v(1, key(64, 48, 1)), 2: v(2, delta(2)), 3: v(3, delta(3)),
		4: v(4, key(128, 96, 4)), 5: v(5, delta(5))}, 5)
	h, err = heldStream(sparseCopy(t, w, []uint64{0, 1, 2, 4, 5}))
	if err != nil {
		t.Fatal(err)
	}
	if pieces, from, to := h.Span(); pieces != 1 || from != 1 || to != 3 {
		t.Fatalf("the copy is %d pieces of blocks %d to %d, want 1 of 1 to 3: pictures of another size after the hole", pieces, from, to)
	}
}

// A player waiting for a signed block the viewer does not hold asks for it again while it
// waits (a fetch can fail: a relay's gap and a full seller, paid time until a top-up), not
// once; a block past the signed length, which comes live, is asked for once.
func TestBlockNotHeldIsAskedForAgain(t *testing.T) {
	w := newWritableFeed(t)
	for range 3 {
		if _, err := w.Append([]byte("block")); err != nil {
			t.Fatal(err)
		}
	}
	key := w.Key()
	empty, err := feed.Create(filepath.Join(t.TempDir(), "copy"), feed.Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { empty.Close() })
	for _, tc := range []struct {
		name  string
		index uint64
		asks  func(n int) bool
		want  string
	}{
		{"signed, not held", 1, func(n int) bool { return n >= 2 }, "asked at least twice"},
		{"past the signed length", 5, func(n int) bool { return n == 1 }, "asked once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asks atomic.Int32
			src := newReaderSource()
			src.feed = func() *feed.Feed { return empty }
			src.length = w.Length
			src.latest = func() (uint64, bool) { return 0, true }
			src.fetch = func(_ context.Context, start uint64, _ bool) {
				if start == tc.index {
					asks.Add(1)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*refetchEvery+refetchEvery/2)
			defer cancel()
			if _, err := src.Block(ctx, tc.index); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Block: %v", err)
			}
			if n := int(asks.Load()); !tc.asks(n) {
				t.Fatalf("block %d asked for %d times in %v, want %s", tc.index, n, 3*refetchEvery+refetchEvery/2, tc.want)
			}
		})
	}
}
