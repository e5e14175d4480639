package block

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleHeader() *Header {
	return &Header{
		Start:       time.Date(2026, 11, 25, 9, 30, 0, 123456789, time.UTC),
		Video:       &VideoParams{Codec: CodecVP8, Width: 1280, Height: 720, FrameRateNum: 30, FrameRateDen: 1, BitRate: 2_500_000, KeyFrameInterval: 60},
		Audio:       &AudioParams{Codec: CodecOpus, SampleRate: 48000, Channels: 1, FrameDuration: 20 * time.Millisecond, BitRate: 64000},
		Preset:      "high",
		Description: "Live from the workshop: soldering a VP8 decoder ✓",
	}
}

func sampleMedia() *Media {
	return &Media{Seq: 42, Units: []Unit{
		{Track: Video, Key: true, PTS: 1400 * time.Millisecond, Duration: 33333 * time.Microsecond, Payload: bytes.Repeat([]byte{0x10}, 3000)},
		{Track: Audio, PTS: 1390 * time.Millisecond, Duration: 20 * time.Millisecond, Payload: []byte{1, 2, 3}},
		{Track: Audio, PTS: 1410 * time.Millisecond, Duration: 20 * time.Millisecond, Payload: []byte{}},
	}}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(h *Header)
	}{
		{"both tracks", func(h *Header) {}},
		{"video only", func(h *Header) { h.Audio = nil }},
		{"audio only", func(h *Header) { h.Video = nil }},
		{"empty description", func(h *Header) { h.Description = "" }},
		{"max description", func(h *Header) { h.Description = strings.Repeat("x", MaxDescription) }},
		{"ntsc rate", func(h *Header) { h.Video.FrameRateNum, h.Video.FrameRateDen = 30000, 1001 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sampleHeader()
			tc.edit(h)
			b, err := h.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if KindOf(b) != KindHeader {
				t.Fatalf("KindOf = %v", KindOf(b))
			}
			got, err := DecodeHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, h) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, h)
			}
		})
	}
}

func TestHeaderInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(h *Header)
	}{
		{"no tracks", func(h *Header) { h.Video, h.Audio = nil, nil }},
		{"long description", func(h *Header) { h.Description = strings.Repeat("x", MaxDescription+1) }},
		{"bad utf8", func(h *Header) { h.Description = "\xff" }},
		{"zero width", func(h *Header) { h.Video.Width = 0 }},
		{"huge height", func(h *Header) { h.Video.Height = MaxDimension + 1 }},
		{"zero frame rate", func(h *Header) { h.Video.FrameRateNum = 0 }},
		{"no sample rate", func(h *Header) { h.Audio.SampleRate = 0 }},
		{"too many channels", func(h *Header) { h.Audio.Channels = MaxChannels + 1 }},
		{"long codec", func(h *Header) { h.Audio.Codec = strings.Repeat("o", MaxName+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sampleHeader()
			tc.edit(h)
			if _, err := h.MarshalBinary(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("MarshalBinary error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestMediaRoundTrip(t *testing.T) {
	m := sampleMedia()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if KindOf(b) != KindMedia {
		t.Fatal("not a media block")
	}
	got, err := DecodeMedia(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
	if !got.IsSync() {
		t.Fatal("block starting with a key frame is not a sync point")
	}
	got.Units[0].Key = false
	if got.IsSync() {
		t.Fatal("block starting with a delta frame is a sync point")
	}
	if !(&Media{Units: []Unit{{Track: Audio}}}).IsSync() {
		t.Fatal("audio-only block is not a sync point")
	}
}

// reseal recomputes the trailing checksum, so that tests reach the checks behind it.
func reseal(b []byte) []byte {
	b = append([]byte(nil), b[:len(b)-4]...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func TestMediaMalformed(t *testing.T) {
	good, err := sampleMedia().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := sampleHeader().MarshalBinary()
	flipped := append([]byte(nil), good...)
	flipped[100] ^= 0x20
	oversized := append(append([]byte(nil), good...), make([]byte, MaxBlockSize)...)
	badVersion := append([]byte(nil), good...)
	badVersion[4] = Version + 1
	trailing := reseal(append(append([]byte(nil), good[:len(good)-4]...), 0, 0, 0, 0, 0))
	badTrack := append([]byte(nil), good...)
	badTrack[7] = 9 // magic(4) version(1) seq(1) count(1) -> first unit's track
	badTrack = reseal(badTrack)
	// A unit whose payload length claims more bytes than the block has.
	liar := []byte("DZVM\x01\x01\x01\x00\x01\x00\x00\xff\xff\x03\x00")
	liar = binary.BigEndian.AppendUint32(liar, crc32.Checksum(liar, castagnoli))
	zeroUnits := []byte("DZVM\x01\x01\x00")
	zeroUnits = binary.BigEndian.AppendUint32(zeroUnits, crc32.Checksum(zeroUnits, castagnoli))
	manyUnits := []byte("DZVM\x01\x01\xff\x7f")
	manyUnits = binary.BigEndian.AppendUint32(manyUnits, crc32.Checksum(manyUnits, castagnoli))

	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:6], ErrTruncated},
		{"bit flip", flipped, ErrChecksum},
		{"cut", good[:len(good)-10], ErrChecksum},
		{"oversized", oversized, ErrTooLarge},
		{"future version", badVersion, ErrUnsupportedVersion},
		{"header as media", hdr, ErrNotMedia},
		{"trailing bytes", trailing, ErrMalformed},
		{"unknown track", badTrack, ErrMalformed},
		{"payload length beyond block", liar, ErrTruncated},
		{"zero units", zeroUnits, ErrMalformed},
		{"too many units", manyUnits, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMedia(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestMediaEveryTruncation cuts a good block at every length: each must fail cleanly.
func TestMediaEveryTruncation(t *testing.T) {
	good, _ := sampleMedia().MarshalBinary()
	for n := 0; n < len(good); n++ {
		if _, err := DecodeMedia(good[:n]); err == nil {
			t.Fatalf("block cut to %d of %d bytes decoded", n, len(good))
		}
	}
	hdr, _ := sampleHeader().MarshalBinary()
	for n := 0; n < len(hdr); n++ {
		if _, err := DecodeHeader(hdr[:n]); err == nil {
			t.Fatalf("header cut to %d of %d bytes decoded", n, len(hdr))
		}
	}
}

func TestMediaEncodeLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Media
		want error
	}{
		{"no units", Media{}, ErrMalformed},
		{"too many units", Media{Units: make([]Unit, MaxUnits+1)}, ErrMalformed},
		{"negative pts", Media{Units: []Unit{{PTS: -1}}}, ErrMalformed},
		{"long duration", Media{Units: []Unit{{Duration: MaxUnitDuration + 1}}}, ErrMalformed},
		{"bad track", Media{Units: []Unit{{Track: 7}}}, ErrMalformed},
		{"oversized", Media{Units: []Unit{{Payload: make([]byte, MaxBlockSize)}}}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.MarshalBinary(); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHeaderMalformed(t *testing.T) {
	good, _ := sampleHeader().MarshalBinary()
	unknownFlags := append([]byte(nil), good...)
	unknownFlags[5] |= 0x80
	longDesc := append([]byte(nil), good[:len(good)-4]...)
	// Rewrite the description length to exceed the cap.
	d := len(sampleHeader().Description)
	binary.BigEndian.PutUint16(longDesc[len(longDesc)-d-2:], MaxDescription+1)
	media, _ := sampleMedia().MarshalBinary()
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"unknown flags", reseal(unknownFlags), ErrMalformed},
		{"description over cap", reseal(append(longDesc, 0, 0, 0, 0)), ErrMalformed},
		{"media as header", media, ErrNotMedia},
		{"bit flip", append(append([]byte(nil), good[:20]...), append([]byte{good[20] ^ 1}, good[21:]...)...), ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeHeader(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeMedia(f *testing.F) {
	small := &Media{Seq: 7, Units: []Unit{{Track: Video, Key: true, PTS: time.Second, Duration: 33 * time.Millisecond, Payload: []byte{1, 2, 3}}, {Track: Audio, PTS: time.Second, Payload: []byte{9}}}}
	good, _ := small.MarshalBinary()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("DZVM\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMedia(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode again and decode to the same value.
		b2, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded block does not encode: %v", err)
		}
		m2, err := DecodeMedia(b2)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	good, _ := sampleHeader().MarshalBinary()
	f.Add(good)
	f.Add(good[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		b2, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded header does not encode: %v", err)
		}
		h2, err := DecodeHeader(b2)
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}
