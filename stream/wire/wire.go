// Package wire is the framing and the messages of the feed replication protocol
// (/dazaar-vision/feed/1). A frame is a uvarint body length followed by the body; the body is a
// one-byte message type and the message. Every length read from a peer is checked against a
// cap before anything is allocated for it.
//
// Requests and proofs travel as the feed's own encodings (feed.Request and feed.Proof), which
// their decoders cap in turn; this package treats them as opaque bytes.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Protocol is the libp2p protocol ID. A new incompatible version gets a new ID.
const Protocol = "/dazaar-vision/feed/1"

// Type is a message's type byte.
type Type byte

// Message types.
const (
	TStatus  Type = 1 // seller→viewer: signed length, fork, newest sync point; viewer→seller: its length, live or not
	TRequest Type = 2 // viewer→seller: one feed.Request (block and/or upgrade) with an id
	TRange   Type = 3 // viewer→seller: every block of [Start, End), streamed in order
	TData    Type = 4 // seller→viewer: one feed.Proof answering a request id (0 = pushed live)
	TNoData  Type = 5 // seller→viewer: the request id cannot be answered, and why
	TAccess  Type = 6 // seller→viewer: allowed (time left), free, or refused (why)
	TApp     Type = 7 // both ways: an opaque application message (invoice request/answer)
	// TEarly (seller→viewer, only to a viewer whose status set StatusEarly): a live push
	// sent before its signature is on the seller's disk, a feed.Proof whose upgrade has an
	// empty signature. The viewer holds it, unverified and unused, until the TSignature
	// that completes it.
	TEarly     Type = 8
	TSignature Type = 9 // seller→viewer: the signature completing the held TEarly proof
)

func (t Type) String() string {
	switch t {
	case TStatus:
		return "status"
	case TRequest:
		return "request"
	case TRange:
		return "range"
	case TData:
		return "data"
	case TNoData:
		return "no-data"
	case TAccess:
		return "access"
	case TApp:
		return "app"
	case TEarly:
		return "early data"
	case TSignature:
		return "signature"
	}
	return fmt.Sprintf("type %d", byte(t))
}

// Caps on what a peer may send.
const (
	// MaxReason caps the plain-words reasons in NoData and Access.
	MaxReason = 512
	// MaxSignature caps a signature: a 64-byte Ed25519 signature, or a v11 envelope of
	// several (the feed's own cap).
	MaxSignature = 1024
	// MaxApp caps an application message.
	MaxApp = 64 << 10
	// MaxViewerFrame caps a frame from a viewer: its largest message is an application
	// message of MaxApp bytes after the type byte (requests and statuses are far smaller).
	MaxViewerFrame = 1 + MaxApp
	// frameOverhead is what a data frame adds around a block: type, id, the proof's
	// header, up to 64 nodes of 42 bytes each and a signature.
	frameOverhead = 8 << 10
)

// MaxFrame returns the largest frame to accept for feeds whose blocks are at most maxBlock bytes.
func MaxFrame(maxBlock int) int { return maxBlock + frameOverhead }

// Errors a peer's bytes can cause. They are wrapped with details.
var (
	ErrFrameTooBig = errors.New("frame larger than allowed")
	ErrMalformed   = errors.New("malformed message")
)

// Reader reads frames. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	max int
	n   uint64 // bytes read, framing included
}

// NewReader reads frames of at most maxFrame bytes from r, through a 64 KiB buffer.
func NewReader(r io.Reader, maxFrame int) *Reader { return NewReaderSize(r, maxFrame, 64<<10) }

// NewReaderSize is NewReader with a read buffer of bufSize bytes. A frame larger than the
// buffer is still read whole (its body goes straight into its own slice); a small buffer
// suits a side that receives only small messages, such as a seller reading a viewer's requests.
func NewReaderSize(r io.Reader, maxFrame, bufSize int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, bufSize), max: maxFrame}
}

// BytesRead is the number of bytes read so far, framing included.
func (r *Reader) BytesRead() uint64 { return r.n }

// Next reads one frame and returns its type and body. The body is freshly allocated and
// belongs to the caller. A frame over the cap is refused before its body is allocated.
func (r *Reader) Next() (Type, []byte, error) {
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		return 0, nil, fmt.Errorf("read frame length: %w", err)
	}
	r.n += uint64(uvarintLen(n))
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if n > uint64(r.max) {
		return 0, nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooBig, n, r.max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return 0, nil, fmt.Errorf("read frame body: %w", err)
	}
	r.n += n
	return Type(body[0]), body[1:], nil
}

// Writer writes frames into a buffer; Flush sends them. It is not safe for concurrent use.
type Writer struct {
	w   *bufio.Writer
	buf []byte
	n   uint64
}

// NewWriter writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 64<<10)} }

// BytesWritten is the number of bytes written so far, framing included.
func (w *Writer) BytesWritten() uint64 { return w.n }

// Buffered is the number of bytes not yet flushed.
func (w *Writer) Buffered() int { return w.w.Buffered() }

// Frame writes one frame of type t whose body is made by fill, which appends to the slice it
// is given and returns it.
func (w *Writer) Frame(t Type, fill func([]byte) ([]byte, error)) error {
	b := append(w.buf[:0], byte(t))
	var err error
	if fill != nil {
		if b, err = fill(b); err != nil {
			return err
		}
	}
	w.buf = b
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.w.Write(hdr[:h]); err != nil {
		return err
	}
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	w.n += uint64(h + len(b))
	if cap(w.buf) > 1<<20 {
		w.buf = nil // do not pin a large buffer for the session's life
	}
	return nil
}

// FrameParts writes one frame of type t whose body is head followed by body, straight into
// the buffer (a large body goes to the underlying writer without being copied first).
func (w *Writer) FrameParts(t Type, head, body []byte) error {
	var hdr [binary.MaxVarintLen64 + 1]byte
	h := binary.PutUvarint(hdr[:], uint64(1+len(head)+len(body)))
	hdr[h] = byte(t)
	if _, err := w.w.Write(hdr[:h+1]); err != nil {
		return err
	}
	if _, err := w.w.Write(head); err != nil {
		return err
	}
	if _, err := w.w.Write(body); err != nil {
		return err
	}
	w.n += uint64(h + 1 + len(head) + len(body))
	return nil
}

// Flush sends buffered frames.
func (w *Writer) Flush() error { return w.w.Flush() }

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// dec decodes a message body; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrMalformed)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str(max int) string {
	n := d.uint()
	if d.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: text of %d bytes (limit %d, %d left)", ErrMalformed, n, max, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return d.err
}
