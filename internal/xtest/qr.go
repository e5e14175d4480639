package xtest

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// DecodeQR reads the QR code in a PNG with zbarimg (Debian zbar-tools), as a phone's wallet
// would, and returns its text.
func DecodeQR(t testing.TB, png []byte) string {
	t.Helper()
	Need(t, "zbarimg")
	cmd := exec.Command("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", "-")
	cmd.Stdin = bytes.NewReader(png)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zbarimg could not decode the QR: %v", err)
	}
	return strings.TrimRight(string(out), "\n")
}
