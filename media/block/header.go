package block

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"
)

// Codec names written in a Header.
const (
	CodecVP8  = "VP8"
	CodecOpus = "opus"
)

// VideoParams describes the video track.
type VideoParams struct {
	Codec  string // CodecVP8
	Width  int
	Height int
	// FrameRate is frames per second as a fraction (30/1, 30000/1001).
	FrameRateNum, FrameRateDen int
	BitRate                    int // target, bits per second
	KeyFrameInterval           int // frames between forced key frames
}

// FrameDuration is the nominal time between two frames.
func (v VideoParams) FrameDuration() time.Duration {
	if v.FrameRateNum <= 0 || v.FrameRateDen <= 0 {
		return 0
	}
	return time.Duration(int64(time.Second) * int64(v.FrameRateDen) / int64(v.FrameRateNum))
}

// AudioParams describes the audio track.
type AudioParams struct {
	Codec         string // CodecOpus
	SampleRate    int
	Channels      int
	FrameDuration time.Duration // per packet, e.g. 20 ms
	BitRate       int
}

// Header is block 0 of a stream.
type Header struct {
	// Start is the wall-clock time of capture-clock zero; unit timestamps count from it.
	Start time.Time
	// Video and Audio are nil when the stream has no such track.
	Video *VideoParams
	Audio *AudioParams
	// Preset is the quality preset's name ("low", "medium", "high"), for display.
	Preset string
	// Description is the broadcaster's free text, at most MaxDescription bytes of UTF-8.
	Description string
}

const (
	headerHasVideo = 1 << 0
	headerHasAudio = 1 << 1
)

func checkName(what, s string) error {
	if len(s) > MaxName || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q (at most %d bytes of UTF-8)", ErrMalformed, what, s, MaxName)
	}
	return nil
}

// Validate checks every field's range.
func (h *Header) Validate() error {
	if h.Video == nil && h.Audio == nil {
		return fmt.Errorf("%w: header has neither video nor audio", ErrMalformed)
	}
	if len(h.Description) > MaxDescription || !utf8.ValidString(h.Description) {
		return fmt.Errorf("%w: description of %d bytes (at most %d bytes of UTF-8)", ErrMalformed, len(h.Description), MaxDescription)
	}
	if err := checkName("preset", h.Preset); err != nil {
		return err
	}
	if v := h.Video; v != nil {
		if err := checkName("video codec", v.Codec); err != nil {
			return err
		}
		switch {
		case v.Width <= 0 || v.Width > MaxDimension || v.Height <= 0 || v.Height > MaxDimension:
			return fmt.Errorf("%w: video size %dx%d", ErrMalformed, v.Width, v.Height)
		case v.FrameRateNum <= 0 || v.FrameRateNum > 0xffff || v.FrameRateDen <= 0 || v.FrameRateDen > 0xffff:
			return fmt.Errorf("%w: frame rate %d/%d", ErrMalformed, v.FrameRateNum, v.FrameRateDen)
		case v.BitRate < 0 || v.BitRate > 1<<31-1 || v.KeyFrameInterval < 0 || v.KeyFrameInterval > 0xffff:
			return fmt.Errorf("%w: video bit rate %d or key frame interval %d", ErrMalformed, v.BitRate, v.KeyFrameInterval)
		}
	}
	if a := h.Audio; a != nil {
		if err := checkName("audio codec", a.Codec); err != nil {
			return err
		}
		switch {
		case a.SampleRate <= 0 || a.SampleRate > MaxSampleRate:
			return fmt.Errorf("%w: sample rate %d", ErrMalformed, a.SampleRate)
		case a.Channels <= 0 || a.Channels > MaxChannels:
			return fmt.Errorf("%w: %d audio channels", ErrMalformed, a.Channels)
		case a.FrameDuration <= 0 || a.FrameDuration > MaxUnitDuration:
			return fmt.Errorf("%w: audio frame duration %v", ErrMalformed, a.FrameDuration)
		case a.BitRate < 0 || a.BitRate > 1<<31-1:
			return fmt.Errorf("%w: audio bit rate %d", ErrMalformed, a.BitRate)
		}
	}
	return nil
}

// MarshalBinary encodes h after validating it.
func (h *Header) MarshalBinary() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	b := append([]byte(nil), magicHeader[:]...)
	b = append(b, Version)
	var flags byte
	if h.Video != nil {
		flags |= headerHasVideo
	}
	if h.Audio != nil {
		flags |= headerHasAudio
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Start.UnixNano()))
	if v := h.Video; v != nil {
		b = append(b, byte(len(v.Codec)))
		b = append(b, v.Codec...)
		b = binary.BigEndian.AppendUint16(b, uint16(v.Width))
		b = binary.BigEndian.AppendUint16(b, uint16(v.Height))
		b = binary.BigEndian.AppendUint16(b, uint16(v.FrameRateNum))
		b = binary.BigEndian.AppendUint16(b, uint16(v.FrameRateDen))
		b = binary.BigEndian.AppendUint32(b, uint32(v.BitRate))
		b = binary.BigEndian.AppendUint16(b, uint16(v.KeyFrameInterval))
	}
	if a := h.Audio; a != nil {
		b = append(b, byte(len(a.Codec)))
		b = append(b, a.Codec...)
		b = binary.BigEndian.AppendUint32(b, uint32(a.SampleRate))
		b = append(b, byte(a.Channels))
		b = binary.BigEndian.AppendUint32(b, uint32(a.FrameDuration/time.Microsecond))
		b = binary.BigEndian.AppendUint32(b, uint32(a.BitRate))
	}
	b = append(b, byte(len(h.Preset)))
	b = append(b, h.Preset...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Description)))
	b = append(b, h.Description...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return b, nil
}

// DecodeHeader decodes and validates block 0.
func DecodeHeader(b []byte) (*Header, error) {
	body, err := checkFrame(b, magicHeader, "stream header")
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	h := &Header{}
	flags := r.u8("flags")
	h.Start = time.Unix(0, int64(r.u64("start time"))).UTC()
	if r.err == nil && flags&^(headerHasVideo|headerHasAudio) != 0 {
		return nil, fmt.Errorf("%w: unknown header flags %#x", ErrMalformed, flags)
	}
	if flags&headerHasVideo != 0 {
		v := &VideoParams{}
		v.Codec = r.str("video codec", MaxName, false)
		v.Width = int(r.u16("width"))
		v.Height = int(r.u16("height"))
		v.FrameRateNum = int(r.u16("frame rate"))
		v.FrameRateDen = int(r.u16("frame rate"))
		v.BitRate = int(r.u32("video bit rate"))
		v.KeyFrameInterval = int(r.u16("key frame interval"))
		h.Video = v
	}
	if flags&headerHasAudio != 0 {
		a := &AudioParams{}
		a.Codec = r.str("audio codec", MaxName, false)
		a.SampleRate = int(r.u32("sample rate"))
		a.Channels = int(r.u8("channels"))
		a.FrameDuration = time.Duration(r.u32("audio frame duration")) * time.Microsecond
		a.BitRate = int(r.u32("audio bit rate"))
		h.Audio = a
	}
	h.Preset = r.str("preset", MaxName, false)
	h.Description = r.str("description", MaxDescription, true)
	r.end("description")
	if r.err != nil {
		return nil, r.err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// SameShape reports whether h and o describe tracks one file can hold: the same tracks, video
// of the same codec, picture size and frame rate (an export lays pictures on one frame grid),
// sound of the same codec, rate and channels (a resumed
// stream's runs are joined when they agree).
func (h *Header) SameShape(o *Header) bool {
	if (h.Video == nil) != (o.Video == nil) || (h.Audio == nil) != (o.Audio == nil) {
		return false
	}
	if h.Video != nil && (h.Video.Codec != o.Video.Codec || h.Video.Width != o.Video.Width || h.Video.Height != o.Video.Height ||
		h.Video.FrameDuration() != o.Video.FrameDuration()) {
		return false
	}
	if h.Audio != nil && (h.Audio.Codec != o.Audio.Codec || h.Audio.SampleRate != o.Audio.SampleRate || h.Audio.Channels != o.Audio.Channels) {
		return false
	}
	return true
}
