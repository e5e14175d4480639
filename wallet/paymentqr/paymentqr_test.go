package paymentqr

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
)

func TestQRDecodesToURI(t *testing.T) {
	uris := []string{
		onchain.PaymentURI{Address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", Sats: 150_000,
			Label: "Dazaar Vision", Message: "1 hour of stream 3f2a…"}.String(),
		onchain.PaymentURI{Address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", Sats: 1000,
			Lightning: "lnbc10u1pjdazaar" + strings.Repeat("q", 300)}.String(),
		"lightning:lnbc10u1pjdazaar" + strings.Repeat("x", 200),
	}
	for _, u := range uris {
		png, err := PNG(u, 512)
		if err != nil {
			t.Fatal(err)
		}
		if got := xtest.DecodeQR(t, png); !strings.EqualFold(got, u) || (got != u && got != QRText(u)) {
			t.Errorf("QR decodes to\n%s\nwant\n%s", got, u)
		}
	}
	if _, err := PNG(strings.Repeat("a", MaxURILen+1), 512); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversized URI: %v", err)
	}
	// A lightning invoice is upper-cased into the denser alphanumeric mode: one longer than byte
	// mode holds (and than a seller may send, invoicemsg.MaxBolt11Len) fits; past that mode's
	// capacity it does not.
	long := "lightning:lnbc10u1pjdazaar" + strings.Repeat("q", MaxAlphanumericLen-len("lightning:lnbc10u1pjdazaar"))
	if len(long) <= MaxURILen || len(long) <= invoicemsg.MaxBolt11Len {
		t.Fatal("the long invoice is not long")
	}
	png, err := PNG(long, 1024)
	if err != nil {
		t.Fatalf("the longest invoice: %v", err)
	}
	if got := xtest.DecodeQR(t, png); got != QRText(long) {
		t.Errorf("the longest invoice's QR decodes to %d characters, want %d", len(got), len(long))
	}
	if _, err := PNG("lightning:"+strings.Repeat("q", MaxAlphanumericLen), 1024); !errors.Is(err, ErrTooLong) {
		t.Errorf("an invoice past the alphanumeric capacity: %v", err)
	}
	if _, err := PNG("", 512); err == nil {
		t.Error("empty URI rendered")
	}
}

// The terminal's QR, read back cell by cell into a picture, decodes to the URI: each line is
// two rows of modules in half blocks, black on white.
func TestTerminalDecodesToURI(t *testing.T) {
	for _, u := range []string{
		onchain.PaymentURI{Address: "bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", Sats: 1500, Message: "5 min of Night sky"}.String(),
		"lightning:lnsb600n1pjdazaar" + strings.Repeat("x", 250),
	} {
		text, err := Terminal(u)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]bool
		for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			if !strings.HasPrefix(line, "\x1b[30;107m") || !strings.HasSuffix(line, "\x1b[0m") {
				t.Fatalf("a line without its colours: %q", line)
			}
			line = strings.TrimSuffix(strings.TrimPrefix(line, "\x1b[30;107m"), "\x1b[0m")
			var top, bottom []bool
			for _, r := range line {
				top = append(top, r == '█' || r == '▀')
				bottom = append(bottom, r == '█' || r == '▄')
			}
			rows = append(rows, top, bottom)
		}
		const scale = 8
		img := image.NewGray(image.Rect(0, 0, len(rows[0])*scale, len(rows)*scale))
		for y, row := range rows {
			for x, dark := range row {
				c := color.Gray{Y: 255}
				if dark {
					c = color.Gray{}
				}
				for dy := range scale {
					for dx := range scale {
						img.SetGray(x*scale+dx, y*scale+dy, c)
					}
				}
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if got := xtest.DecodeQR(t, buf.Bytes()); got != QRText(u) {
			t.Errorf("the terminal's QR decodes to\n%s\nwant\n%s", got, QRText(u))
		}
	}
	if _, err := Terminal(strings.Repeat("a", MaxURILen+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("oversized URI: %v", err)
	}
}
