// Package journaltest helps the tests of the journal's users (the ledger, the invoice store)
// write journal files: for their tests only.
package journaltest

import (
	"bytes"

	"github.com/dazaarvision/dazaar-vision/wallet/internal/journal"
)

// FrameLines frames each non-empty line of b as one journal record (lines longer than a frame
// are left out), so that a fuzzer's JSON gets past the checksums to the decoding (the framing
// itself is fuzzed by journal's FuzzReadFrames).
func FrameLines(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) > 0 && len(line) <= journal.MaxFrame {
			journal.AppendFrame(&out, line)
		}
	}
	return out.Bytes()
}
