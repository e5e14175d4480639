// Package block is the byte format of a Dazaar Vision media stream as it is stored in the
// feed: block 0 is a Header describing the stream, every later block is a Media block that
// carries a few encoded units (video frames and audio packets) with their capture timestamps.
//
// Both encodings are versioned, end with a CRC-32C of everything before it (so a damaged
// block is recognised even where no feed verifies it) and cap every length before
// allocating. The format is documented in ARCHITECTURE.md.
package block

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Version is the format version this package writes and the newest it reads.
const Version = 1

// Limits. Every length read from a block is checked against these before use.
const (
	// MaxBlockSize caps one encoded block, header or media.
	MaxBlockSize = 4 << 20
	// MaxUnits caps the units in one media block.
	MaxUnits = 255
	// MaxDescription caps the header's description, in bytes of UTF-8.
	MaxDescription = 1024
	// MaxName caps codec and preset names.
	MaxName = 32
	// MaxUnitDuration caps one unit's duration.
	MaxUnitDuration = 10 * time.Second
	// MaxPTS caps a timestamp (2^45 µs, about 400 days of stream) so that no arithmetic
	// on a decoded timestamp can overflow.
	MaxPTS = time.Duration(1<<45) * time.Microsecond
	// MaxDimension caps a video width or height.
	MaxDimension = 8192
	// MaxSampleRate caps an audio sample rate.
	MaxSampleRate = 192000
	// MaxChannels caps audio channels.
	MaxChannels = 8
)

var (
	magicHeader = [4]byte{'D', 'Z', 'V', 'H'}
	magicMedia  = [4]byte{'D', 'Z', 'V', 'M'}
)

// Errors returned by the decoders; they are wrapped with details, test them with errors.Is.
var (
	ErrTooLarge           = errors.New("media block too large")
	ErrTruncated          = errors.New("media block truncated")
	ErrChecksum           = errors.New("media block damaged (checksum mismatch)")
	ErrNotMedia           = errors.New("not a Dazaar Vision media block")
	ErrUnsupportedVersion = errors.New("media block format version not supported")
	ErrMalformed          = errors.New("malformed media block")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Kind tells a header from a media block.
type Kind uint8

// Kinds of block.
const (
	KindUnknown Kind = iota
	KindHeader
	KindMedia
)

// KindOf reports which kind of block b is, from its magic only (it does not validate b).
func KindOf(b []byte) Kind {
	if len(b) < 4 {
		return KindUnknown
	}
	switch [4]byte(b[:4]) {
	case magicHeader:
		return KindHeader
	case magicMedia:
		return KindMedia
	}
	return KindUnknown
}

// Track identifies the elementary stream a unit belongs to.
type Track uint8

// Tracks.
const (
	Video Track = 0
	Audio Track = 1
)

func (t Track) String() string {
	switch t {
	case Video:
		return "video"
	case Audio:
		return "audio"
	}
	return fmt.Sprintf("track(%d)", uint8(t))
}

// Unit is one encoded video frame or audio packet.
type Unit struct {
	Track Track
	// Key is set on video frames that decode on their own (VP8 key frames). Audio packets
	// are always independent and never set it.
	Key bool
	// PTS is the capture time, relative to the header's Start, from the broadcaster's one
	// capture clock shared by both tracks. Stored with microsecond precision.
	PTS time.Duration
	// Duration is how long the unit plays (frame interval, or audio packet length).
	Duration time.Duration
	// Payload is the codec's bytes. After decoding it aliases the block's bytes.
	Payload []byte
}

// Media is one media block: a short run of units in capture order.
type Media struct {
	// Seq numbers media blocks from 1 upward; a gap tells a player that blocks are missing.
	Seq   uint64
	Units []Unit
}

// IsSync reports whether playback can start at this block: its first video unit is a key
// frame, or it carries no video at all.
func (m *Media) IsSync() bool {
	for _, u := range m.Units {
		if u.Track == Video {
			return u.Key
		}
	}
	return true
}

const unitFlagKey = 1 << 0

// AppendBinary appends the encoding of m to b.
func (m *Media) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Units) == 0 || len(m.Units) > MaxUnits {
		return b, fmt.Errorf("%w: %d units (1 to %d allowed)", ErrMalformed, len(m.Units), MaxUnits)
	}
	start := len(b)
	b = append(b, magicMedia[:]...)
	b = append(b, Version)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, uint64(len(m.Units)))
	for i, u := range m.Units {
		if u.Track != Video && u.Track != Audio {
			return b[:start], fmt.Errorf("%w: unit %d has unknown track %d", ErrMalformed, i, u.Track)
		}
		if u.PTS < 0 || u.PTS > MaxPTS || u.Duration < 0 || u.Duration > MaxUnitDuration {
			return b[:start], fmt.Errorf("%w: unit %d timestamp %v or duration %v out of range", ErrMalformed, i, u.PTS, u.Duration)
		}
		var flags byte
		if u.Key {
			flags |= unitFlagKey
		}
		b = append(b, byte(u.Track), flags)
		b = binary.AppendUvarint(b, uint64(u.PTS/time.Microsecond))
		b = binary.AppendUvarint(b, uint64(u.Duration/time.Microsecond))
		b = binary.AppendUvarint(b, uint64(len(u.Payload)))
		b = append(b, u.Payload...)
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	if len(b)-start > MaxBlockSize {
		return b[:start], fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(b)-start, MaxBlockSize)
	}
	return b, nil
}

// MarshalBinary encodes m.
func (m *Media) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// checkFrame validates the size, magic, version and checksum shared by both kinds and
// returns the body between the version byte and the checksum.
func checkFrame(b []byte, magic [4]byte, what string) ([]byte, error) {
	if len(b) > MaxBlockSize {
		return nil, fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrTooLarge, what, len(b), MaxBlockSize)
	}
	if len(b) < 4+1+4 {
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrTruncated, what, len(b))
	}
	if [4]byte(b[:4]) != magic {
		return nil, fmt.Errorf("%w: expected a %s, magic is %q", ErrNotMedia, what, b[:4])
	}
	if b[4] == 0 || b[4] > Version {
		return nil, fmt.Errorf("%w: %s version %d, this build reads 1 to %d", ErrUnsupportedVersion, what, b[4], Version)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: %s", ErrChecksum, what)
	}
	return body[5:], nil
}

// reader walks a block body, remembering the first error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n == 0 {
		r.fail(fmt.Errorf("%w: %s cut off at byte %d", ErrTruncated, what, r.off))
		return 0
	}
	if n < 0 || v > max {
		r.fail(fmt.Errorf("%w: %s out of range at byte %d (at most %d)", ErrMalformed, what, r.off, max))
		return 0
	}
	r.off += n
	return v
}

func (r *reader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(fmt.Errorf("%w: %s needs %d bytes, %d left", ErrTruncated, what, n, len(r.b)-r.off))
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

func (r *reader) u8(what string) byte {
	v := r.bytes(what, 1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16(what string) uint16 {
	v := r.bytes(what, 2)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (r *reader) u32(what string) uint32 {
	v := r.bytes(what, 4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) u64(what string) uint64 {
	v := r.bytes(what, 8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *reader) str(what string, max int, wide bool) string {
	var n int
	if wide {
		n = int(r.u16(what + " length"))
	} else {
		n = int(r.u8(what + " length"))
	}
	if r.err == nil && n > max {
		r.fail(fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrMalformed, what, n, max))
		return ""
	}
	return string(r.bytes(what, n))
}

func (r *reader) end(what string) {
	if r.err == nil && r.off != len(r.b) {
		r.fail(fmt.Errorf("%w: %d unexpected bytes after the %s", ErrMalformed, len(r.b)-r.off, what))
	}
}

// DecodeMedia decodes a media block. Payloads alias b. Any damage, truncation, oversize or
// out-of-range field is an error; nothing is allocated from an unchecked length.
func DecodeMedia(b []byte) (*Media, error) {
	body, err := checkFrame(b, magicMedia, "media block")
	if err != nil {
		return nil, err
	}
	r := &reader{b: body}
	m := &Media{Seq: r.uvarint("sequence number", 1<<62)}
	n := r.uvarint("unit count", MaxUnits)
	if r.err == nil && n == 0 {
		r.fail(fmt.Errorf("%w: no units", ErrMalformed))
	}
	if r.err != nil {
		return nil, r.err
	}
	m.Units = make([]Unit, 0, n)
	for i := 0; i < int(n) && r.err == nil; i++ {
		var u Unit
		u.Track = Track(r.u8("track"))
		flags := r.u8("flags")
		u.PTS = time.Duration(r.uvarint("timestamp", uint64(MaxPTS/time.Microsecond))) * time.Microsecond
		u.Duration = time.Duration(r.uvarint("duration", uint64(MaxUnitDuration/time.Microsecond))) * time.Microsecond
		size := r.uvarint("payload length", MaxBlockSize)
		u.Payload = r.bytes("payload", int(size))
		if r.err != nil {
			break
		}
		if u.Track != Video && u.Track != Audio {
			r.fail(fmt.Errorf("%w: unit %d has unknown track %d", ErrMalformed, i, u.Track))
		}
		if flags&^unitFlagKey != 0 {
			r.fail(fmt.Errorf("%w: unit %d has unknown flags %#x", ErrMalformed, i, flags))
		}
		u.Key = flags&unitFlagKey != 0
		if u.Key && u.Track != Video {
			r.fail(fmt.Errorf("%w: unit %d: only video units can be key frames", ErrMalformed, i))
		}
		m.Units = append(m.Units, u)
	}
	r.end("last unit")
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}
