// Package paymentqr renders a payment URI (BIP21/BIP321 or lightning:) as a QR code PNG for the
// UI to show.
package paymentqr

import (
	"errors"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// MaxURILen is the longest URI rendered; a version-40 QR at medium error correction holds 2 331
// bytes.
const MaxURILen = 2331

// PNG renders uri as a square PNG of about size pixels, with medium error correction (scanning
// from a screen tolerates some blur and glare) and the standard quiet zone.
func PNG(uri string, size int) ([]byte, error) {
	if uri == "" {
		return nil, errors.New("paymentqr: empty URI")
	}
	if len(uri) > MaxURILen {
		return nil, fmt.Errorf("paymentqr: URI of %d bytes does not fit in a QR code", len(uri))
	}
	if size < 64 || size > 4096 {
		return nil, fmt.Errorf("paymentqr: size %d out of range 64..4096", size)
	}
	return qrcode.Encode(QRText(uri), qrcode.Medium, size)
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
