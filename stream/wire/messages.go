package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Status flags.
const (
	StatusHasSyncPoint = 1 << 0 // SyncPoint is set
	StatusLive         = 1 << 1 // viewer→seller: push me each new block as it is appended
	// StatusEarly (viewer→seller): send live pushes as TEarly + TSignature, so the block
	// travels while the seller's disk syncs and only the signature waits for it.
	StatusEarly = 1 << 2
	statusKnown = StatusHasSyncPoint | StatusLive | StatusEarly
)

// Status is a side's view of the feed: the seller's signed length, fork and newest sync
// point, or the viewer's verified length and whether it follows the live edge.
type Status struct {
	Fork, Length uint64
	Flags        uint64
	SyncPoint    uint64
}

// AppendBinary appends the encoding.
func (s Status) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, s.Fork)
	b = binary.AppendUvarint(b, s.Length)
	b = binary.AppendUvarint(b, s.Flags)
	return binary.AppendUvarint(b, s.SyncPoint), nil
}

// DecodeStatus decodes a Status body.
func DecodeStatus(b []byte) (Status, error) {
	d := dec{b: b}
	s := Status{Fork: d.uint(), Length: d.uint(), Flags: d.uint(), SyncPoint: d.uint()}
	if err := d.end(); err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	// Flags this side does not know are capabilities of a newer peer: ignored, so that
	// peers can offer more without breaking older ones.
	s.Flags &= statusKnown
	if s.Flags&StatusHasSyncPoint != 0 && s.SyncPoint >= s.Length {
		return Status{}, fmt.Errorf("status: %w: sync point %d is past length %d", ErrMalformed, s.SyncPoint, s.Length)
	}
	return s, nil
}

// Tagged is a message that carries a request id and an opaque payload: a Request (payload =
// feed.Request encoding) or Data (payload = feed.Proof encoding).
type Tagged struct {
	ID      uint64
	Payload []byte
}

// AppendTagged appends a tagged body whose payload is made by fill.
func AppendTagged(b []byte, id uint64, fill func([]byte) ([]byte, error)) ([]byte, error) {
	b = binary.AppendUvarint(b, id)
	return fill(b)
}

// DecodeTagged splits a tagged body. The payload aliases b.
func DecodeTagged(b []byte) (Tagged, error) {
	d := dec{b: b}
	id := d.uint()
	if d.err != nil {
		return Tagged{}, fmt.Errorf("tagged message: %w", d.err)
	}
	return Tagged{ID: id, Payload: d.b}, nil
}

// Range asks for every block in [Start, End). FromLength is the viewer's verified length: when
// End is past it the seller first sends the upgrade that proves the blocks.
type Range struct {
	ID, Start, End, FromLength uint64
}

// MaxRangeBlocks caps one range request; a viewer asks for more with more requests.
const MaxRangeBlocks = 1 << 16

// AppendBinary appends the encoding.
func (r Range) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, r.ID)
	b = binary.AppendUvarint(b, r.Start)
	b = binary.AppendUvarint(b, r.End)
	return binary.AppendUvarint(b, r.FromLength), nil
}

// DecodeRange decodes a Range body.
func DecodeRange(b []byte) (Range, error) {
	d := dec{b: b}
	r := Range{ID: d.uint(), Start: d.uint(), End: d.uint(), FromLength: d.uint()}
	if err := d.end(); err != nil {
		return Range{}, fmt.Errorf("range: %w", err)
	}
	if r.End <= r.Start || r.End-r.Start > MaxRangeBlocks {
		return Range{}, fmt.Errorf("range: %w: [%d, %d) is empty or longer than %d blocks", ErrMalformed, r.Start, r.End, MaxRangeBlocks)
	}
	return r, nil
}

// Signature completes the TEarly proof the viewer holds: the signature of the signed state
// that proof's upgrade reaches (Fork, Length), now durable on the seller's disk.
type Signature struct {
	Fork, Length uint64
	Sig          []byte
}

// AppendBinary appends the encoding.
func (s Signature) AppendBinary(b []byte) ([]byte, error) {
	if len(s.Sig) == 0 || len(s.Sig) > MaxSignature {
		return nil, fmt.Errorf("signature: %d bytes, want 1 to %d", len(s.Sig), MaxSignature)
	}
	b = binary.AppendUvarint(b, s.Fork)
	b = binary.AppendUvarint(b, s.Length)
	b = binary.AppendUvarint(b, uint64(len(s.Sig)))
	return append(b, s.Sig...), nil
}

// DecodeSignature decodes a Signature body. Sig aliases b.
func DecodeSignature(b []byte) (Signature, error) {
	d := dec{b: b}
	s := Signature{Fork: d.uint(), Length: d.uint()}
	n := d.uint()
	if d.err == nil && (n == 0 || n > MaxSignature || n > uint64(len(d.b))) {
		d.err = fmt.Errorf("%w: signature of %d bytes (limit %d, %d left)", ErrMalformed, n, MaxSignature, len(d.b))
	}
	if d.err == nil {
		s.Sig, d.b = d.b[:n:n], d.b[n:]
	}
	if err := d.end(); err != nil {
		return Signature{}, fmt.Errorf("signature: %w", err)
	}
	if s.Length == 0 {
		return Signature{}, fmt.Errorf("signature: %w: of length 0", ErrMalformed)
	}
	return s, nil
}

// NoData says request ID cannot be answered, in plain words.
type NoData struct {
	ID     uint64
	Reason string
}

// AppendBinary appends the encoding.
func (n NoData) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, n.ID)
	return appendStr(b, n.Reason), nil
}

// DecodeNoData decodes a NoData body.
func DecodeNoData(b []byte) (NoData, error) {
	d := dec{b: b}
	n := NoData{ID: d.uint(), Reason: d.str(MaxReason)}
	if err := d.end(); err != nil {
		return NoData{}, fmt.Errorf("no-data: %w", err)
	}
	return n, nil
}

// AccessState is what the seller grants a viewer.
type AccessState uint64

const (
	Refused AccessState = 0 // nothing is sent; Reason says why
	Allowed AccessState = 1 // paid: blocks flow for Remaining milliseconds
	Free    AccessState = 2 // free stream: blocks flow with no deadline
)

func (s AccessState) String() string {
	switch s {
	case Refused:
		return "refused"
	case Allowed:
		return "allowed"
	case Free:
		return "free"
	}
	return fmt.Sprintf("access state %d", uint64(s))
}

// Access tells the viewer whether blocks flow to it.
type Access struct {
	State       AccessState
	RemainingMs uint64
	Reason      string
}

// AppendBinary appends the encoding.
func (a Access) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(a.State))
	b = binary.AppendUvarint(b, a.RemainingMs)
	return appendStr(b, a.Reason), nil
}

// DecodeAccess decodes an Access body.
func DecodeAccess(b []byte) (Access, error) {
	d := dec{b: b}
	a := Access{State: AccessState(d.uint()), RemainingMs: d.uint(), Reason: d.str(MaxReason)}
	if err := d.end(); err != nil {
		return Access{}, fmt.Errorf("access: %w", err)
	}
	if a.State > Free {
		return Access{}, fmt.Errorf("access: %w: unknown state %d", ErrMalformed, a.State)
	}
	return a, nil
}

// DecodeApp checks an application message body (it is the message itself).
func DecodeApp(b []byte) ([]byte, error) {
	if len(b) > MaxApp {
		return nil, fmt.Errorf("app message: %w: %d bytes, the limit is %d", ErrMalformed, len(b), MaxApp)
	}
	return b, nil
}

// appendStr appends s, cut to MaxReason bytes at a character boundary.
func appendStr(b []byte, s string) []byte {
	if len(s) > MaxReason {
		n := MaxReason
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
