package webm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSizeEncoding(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x80}},
		{126, []byte{0xFE}},
		{127, []byte{0x40, 0x7F}}, // 0xFF alone would mean "unknown size"
		{16382, []byte{0x7F, 0xFE}},
		{16383, []byte{0x20, 0x3F, 0xFF}},
	} {
		if got := appendSize(nil, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("size %d: % x, want % x", tc.n, got, tc.want)
		}
	}
	for _, n := range []int{2, 3, 128, 129, 200} {
		if got := appendVoid(nil, n); len(got) != n || got[0] != idVoid {
			t.Errorf("void of %d bytes: %d bytes", n, len(got))
		}
	}
}

func TestMuxerRejects(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x.webm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := NewMuxer(f, Config{}); err == nil {
		t.Fatal("muxer without tracks")
	}
	if _, err := NewMuxer(f, Config{Audio: &AudioConfig{Channels: 6}}); err == nil {
		t.Fatal("six-channel Opus accepted")
	}
	m, err := NewMuxer(f, Config{Video: &VideoConfig{Width: 64, Height: 48, FrameDuration: 33 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteVideo(100*time.Millisecond, true, []byte{0x10, 0x02, 0x00}); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteVideo(50*time.Millisecond, false, []byte{0x11}); !errors.Is(err, ErrOrder) {
		t.Fatalf("backwards timestamp: %v", err)
	}
	// Frames in the same millisecond move up by one, so timecodes strictly increase.
	if err := m.WriteVideo(100*time.Millisecond+400*time.Microsecond, false, []byte{0x11}); err != nil {
		t.Fatal(err)
	}
	if m.lastTime[VideoTrack] != 101*time.Millisecond {
		t.Fatalf("same-millisecond frame at %v", m.lastTime[VideoTrack])
	}
	if err := m.WriteAudio(0, []byte{1}, 20*time.Millisecond); err == nil {
		t.Fatal("audio accepted without an audio track")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Duration() != 134*time.Millisecond {
		t.Fatalf("duration %v", m.Duration())
	}
	// The file ends where the Cues end, and Close left the offset there.
	end, _ := f.Seek(0, io.SeekCurrent)
	st, _ := f.Stat()
	if end != st.Size() {
		t.Fatalf("offset %d after Close, file is %d bytes", end, st.Size())
	}
}
