// Package paymentqr renders a payment URI (BIP21/BIP321 or lightning:) as a QR code: a PNG for
// the window, or text for a terminal.
package paymentqr

import (
	"errors"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// MaxURILen is the longest URI rendered in byte mode (a BIP21 URI, whose label and message
// keep their case): a version-40 QR at medium error correction holds 2 331 bytes.
// MaxAlphanumericLen is the longest text rendered in alphanumeric mode (an upper-cased
// lightning: invoice): 3 391 characters, more than the longest invoice a seller may send.
const (
	MaxURILen          = 2331
	MaxAlphanumericLen = 3391
)

// ErrTooLong says the text does not fit in the largest QR code.
var ErrTooLong = errors.New("paymentqr: too long for a QR code")

// PNG renders uri as a square PNG of about size pixels, with medium error correction (scanning
// from a screen tolerates some blur and glare) and the standard quiet zone.
func PNG(uri string, size int) ([]byte, error) {
	if uri == "" {
		return nil, errors.New("paymentqr: empty URI")
	}
	text := QRText(uri)
	limit := MaxURILen
	if alphanumeric(text) {
		limit = MaxAlphanumericLen
	}
	if len(text) > limit {
		return nil, fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, len(text), limit)
	}
	if size < 64 || size > 4096 {
		return nil, fmt.Errorf("paymentqr: size %d out of range 64..4096", size)
	}
	return qrcode.Encode(text, qrcode.Medium, size)
}

// alphanumeric reports whether s is in QR's alphanumeric set (0–9, A–Z, space, $%*+-./:).
func alphanumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || strings.IndexByte(" $%*+-./:", c) >= 0) {
			return false
		}
	}
	return true
}

// QRText is the text put in the code. A bare lightning invoice is upper-cased (BOLT11 allows
// either case, and upper case fits QR's denser alphanumeric mode); a BIP21 URI is left as it is,
// because its label and message are case-sensitive.
func QRText(uri string) string {
	if strings.HasPrefix(strings.ToLower(uri), "lightning:") {
		return strings.ToUpper(uri)
	}
	return uri
}

// Terminal renders uri as a QR code in text for a terminal: two rows of modules a line with
// the half-block characters, black on bright white set with ANSI colours (so it scans on dark
// and light terminals alike), with the standard quiet zone. Low error correction keeps it
// narrow: a terminal's cells are sharp. Each line ends with a reset and a newline.
func Terminal(uri string) (string, error) {
	if uri == "" {
		return "", errors.New("paymentqr: empty URI")
	}
	text := QRText(uri)
	limit := MaxURILen
	if alphanumeric(text) {
		limit = MaxAlphanumericLen
	}
	if len(text) > limit {
		return "", fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, len(text), limit)
	}
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return "", fmt.Errorf("paymentqr: %w", err)
	}
	bm := q.Bitmap() // true: a dark module; the quiet zone included
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		b.WriteString("\x1b[30;107m")
		for x := range bm[y] {
			top, bottom := bm[y][x], y+1 < len(bm) && bm[y+1][x]
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString("\x1b[0m\n")
	}
	return b.String(), nil
}
