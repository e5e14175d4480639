// Package invoicemsg is the wire form of the two wallet messages a viewer and a seller exchange:
// the viewer's invoice Request and the seller's Answer. stream carries them as opaque application
// messages. Every message starts with a version and a kind byte, every field is length-capped
// before allocation, and the whole message is capped at MaxSize.
package invoicemsg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Version is the message format written by this package.
const Version = 1

// MaxSize caps an encoded message.
const MaxSize = 8 << 10

// Field caps.
const (
	MaxStreamLen  = 128
	MaxIDLen      = 64
	MaxNetworkLen = 16
	MaxAddressLen = 128
	MaxBolt11Len  = 2048
	MaxURILen     = 4096
	MaxErrorLen   = 512
	MaxMinutes    = 7 * 24 * 60
	MaxSats       = 21_000_000 * 100_000_000
)

const (
	kindRequest = 1
	kindAnswer  = 2
)

// Method is how the viewer wants to pay.
type Method uint8

// Payment methods.
const (
	OnChain Method = iota + 1
	Lightning
	Any // a unified BIP21 URI carrying both an address and a lightning= invoice
)

func (m Method) String() string {
	switch m {
	case OnChain:
		return "on-chain"
	case Lightning:
		return "lightning"
	case Any:
		return "on-chain or lightning"
	}
	return fmt.Sprintf("method(%d)", uint8(m))
}

// Request asks the seller for an invoice for Sats, or for Minutes of media at the stream's price.
// Exactly one of Sats and Minutes is set.
type Request struct {
	Stream  string
	Method  Method
	Sats    uint64
	Minutes uint32
}

// Code says why a seller refused a request.
type Code uint8

// Refusal codes.
const (
	OK Code = iota
	Refused
	RateLimited
	Unavailable // the method is not configured or its backend is down
	BadRequest
)

// Answer is the seller's reply: an invoice for this viewer alone, or a refusal.
type Answer struct {
	ID        string // invoice ID, chosen by the seller
	Stream    string
	Method    Method
	Network   string // "mainnet", "testnet", "signet", "regtest" or "simnet"
	Sats      uint64
	Millis    uint64 // media time the invoice buys at the seller's price
	ExpiresAt int64  // unix seconds
	Address   string // on-chain address, if any
	Bolt11    string // Lightning invoice, if any
	URI       string // what the QR shows: a BIP21 URI, or "lightning:<bolt11>"
	Code      Code
	Error     string // plain words for people when Code != OK
}

// Errors.
var (
	ErrTooLarge    = errors.New("invoicemsg: message too large")
	ErrVersion     = errors.New("invoicemsg: unsupported message version")
	ErrMalformed   = errors.New("invoicemsg: malformed message")
	ErrInvalidData = errors.New("invoicemsg: invalid field")
)

// Validate checks r's fields.
func (r Request) Validate() error {
	if r.Stream == "" || len(r.Stream) > MaxStreamLen {
		return fmt.Errorf("%w: stream ID must be 1..%d bytes", ErrInvalidData, MaxStreamLen)
	}
	if r.Method < OnChain || r.Method > Any {
		return fmt.Errorf("%w: unknown payment method %d", ErrInvalidData, r.Method)
	}
	if (r.Sats == 0) == (r.Minutes == 0) {
		return fmt.Errorf("%w: ask for either an amount in sats or a number of minutes", ErrInvalidData)
	}
	if r.Sats > MaxSats || r.Minutes > MaxMinutes {
		return fmt.Errorf("%w: amount out of range", ErrInvalidData)
	}
	return nil
}

// Validate checks a's fields.
func (a Answer) Validate() error {
	caps := []struct {
		s   string
		max int
		n   string
	}{{a.ID, MaxIDLen, "id"}, {a.Stream, MaxStreamLen, "stream"}, {a.Network, MaxNetworkLen, "network"},
		{a.Address, MaxAddressLen, "address"}, {a.Bolt11, MaxBolt11Len, "bolt11"}, {a.URI, MaxURILen, "uri"},
		{a.Error, MaxErrorLen, "error"}}
	for _, c := range caps {
		if len(c.s) > c.max {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidData, c.n, c.max)
		}
		if !utf8.ValidString(c.s) {
			return fmt.Errorf("%w: %s is not UTF-8", ErrInvalidData, c.n)
		}
	}
	if a.Millis > 1<<62 || a.ExpiresAt < 0 || a.ExpiresAt > 1<<40 {
		return fmt.Errorf("%w: duration or expiry out of range", ErrInvalidData)
	}
	if a.Code > BadRequest {
		return fmt.Errorf("%w: unknown code %d", ErrInvalidData, a.Code)
	}
	if a.Code != OK {
		if a.Error == "" {
			return fmt.Errorf("%w: a refusal needs a reason", ErrInvalidData)
		}
		return nil
	}
	if a.ID == "" || a.Stream == "" || a.Sats == 0 || a.Sats > MaxSats || a.ExpiresAt <= 0 {
		return fmt.Errorf("%w: an invoice needs an id, stream, amount and expiry", ErrInvalidData)
	}
	switch a.Method {
	case OnChain:
		if a.Address == "" || a.Bolt11 != "" {
			return fmt.Errorf("%w: on-chain invoice needs exactly an address", ErrInvalidData)
		}
	case Lightning:
		if a.Bolt11 == "" || a.Address != "" {
			return fmt.Errorf("%w: lightning invoice needs exactly a bolt11", ErrInvalidData)
		}
	case Any:
		if a.Bolt11 == "" || a.Address == "" {
			return fmt.Errorf("%w: unified invoice needs an address and a bolt11", ErrInvalidData)
		}
	default:
		return fmt.Errorf("%w: unknown payment method %d", ErrInvalidData, a.Method)
	}
	if a.URI == "" {
		return fmt.Errorf("%w: invoice without a payment URI", ErrInvalidData)
	}
	return nil
}

type writer []byte

func (w *writer) byte(b byte)      { *w = append(*w, b) }
func (w *writer) uvarint(v uint64) { *w = binary.AppendUvarint(*w, v) }
func (w *writer) str(s string) {
	w.uvarint(uint64(len(s)))
	*w = append(*w, s...)
}

// MarshalBinary encodes a valid request.
func (r Request) MarshalBinary() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	w := writer(make([]byte, 0, 32+len(r.Stream)))
	w.byte(Version)
	w.byte(kindRequest)
	w.str(r.Stream)
	w.byte(byte(r.Method))
	w.uvarint(r.Sats)
	w.uvarint(uint64(r.Minutes))
	return w, nil
}

// MarshalBinary encodes a valid answer.
func (a Answer) MarshalBinary() ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	w := writer(make([]byte, 0, 64+len(a.URI)+len(a.Bolt11)))
	w.byte(Version)
	w.byte(kindAnswer)
	w.byte(byte(a.Code))
	w.str(a.ID)
	w.str(a.Stream)
	w.byte(byte(a.Method))
	w.str(a.Network)
	w.uvarint(a.Sats)
	w.uvarint(a.Millis)
	w.uvarint(uint64(a.ExpiresAt))
	w.str(a.Address)
	w.str(a.Bolt11)
	w.str(a.URI)
	w.str(a.Error)
	if len(w) > MaxSize {
		return nil, ErrTooLarge
	}
	return w, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.err = ErrMalformed }

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint(max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > max {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str(max int) string {
	n := r.uvarint(uint64(max)) // capped before any allocation
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func header(b []byte, kind byte) (*reader, error) {
	if len(b) > MaxSize {
		return nil, ErrTooLarge
	}
	if len(b) < 2 {
		return nil, ErrMalformed
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w %d (this app reads version %d; update one side)", ErrVersion, b[0], Version)
	}
	if b[1] != kind {
		return nil, fmt.Errorf("%w: kind %d, want %d", ErrMalformed, b[1], kind)
	}
	return &reader{b: b[2:]}, nil
}

// UnmarshalBinary decodes and validates a request.
func (r *Request) UnmarshalBinary(b []byte) error {
	rd, err := header(b, kindRequest)
	if err != nil {
		return err
	}
	var q Request
	q.Stream = rd.str(MaxStreamLen)
	q.Method = Method(rd.byte())
	q.Sats = rd.uvarint(MaxSats)
	q.Minutes = uint32(rd.uvarint(MaxMinutes))
	if rd.err != nil {
		return rd.err
	}
	if len(rd.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rd.b))
	}
	if err := q.Validate(); err != nil {
		return err
	}
	*r = q
	return nil
}

// UnmarshalBinary decodes and validates an answer.
func (a *Answer) UnmarshalBinary(b []byte) error {
	rd, err := header(b, kindAnswer)
	if err != nil {
		return err
	}
	var x Answer
	x.Code = Code(rd.byte())
	x.ID = rd.str(MaxIDLen)
	x.Stream = rd.str(MaxStreamLen)
	x.Method = Method(rd.byte())
	x.Network = rd.str(MaxNetworkLen)
	x.Sats = rd.uvarint(MaxSats)
	x.Millis = rd.uvarint(1 << 62)
	x.ExpiresAt = int64(rd.uvarint(1 << 40))
	x.Address = rd.str(MaxAddressLen)
	x.Bolt11 = rd.str(MaxBolt11Len)
	x.URI = rd.str(MaxURILen)
	x.Error = rd.str(MaxErrorLen)
	if rd.err != nil {
		return rd.err
	}
	if len(rd.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rd.b))
	}
	if err := x.Validate(); err != nil {
		return err
	}
	*a = x
	return nil
}
