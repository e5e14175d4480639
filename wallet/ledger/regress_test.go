package ledger

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// Regression test for a reviewer's finding; the defect was: Remaining converts milliseconds to a Duration without saturating; a price
// price.Validate accepts (1 sat per 1 000 000 hours) makes a 3-sat payment read as no access.
func TestRemainingSaturates(t *testing.T) {
	p, err := price.New(1, 1_000_000, price.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(filepath.Join(t.TempDir(), "l"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k := Key{Stream: "s", Viewer: "v"}
	if _, err := l.SetCredit(k, Credit{ID: "ln:x", Msat: 3000, Millis: p.MillisFor(3000), State: Settled}); err != nil {
		t.Fatal(err)
	}
	if r := l.Remaining(k); r <= 0 {
		t.Fatalf("3 sats at %v buys %d ms; Remaining says %v", p, p.MillisFor(3000), r)
	}
}

// Regression test for a reviewer's finding; the defect was: consumption is appended as a new record per dirty account per Flush and the file is
// compacted only by Open, so a seller with 1 000 viewers grows the ledger by ~0.5 GB an hour.
func TestLedgerCompactsWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = Key{Stream: "3f2a9c0d5e7b1a46c8d2e0f9b3a7c5d1e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4",
			Viewer: "12D3KooW" + string(rune('A'+i%26)) + string(rune('A'+i/26)) + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
		l.SetCredit(keys[i], Credit{ID: "ln:x", Msat: 1, Millis: 3_600_000, State: Settled})
	}
	for s := 0; s < 60; s++ { // one minute of Run's 1 s flushes
		for _, k := range keys {
			l.Consume(k, 1000)
		}
		l.Flush()
	}
	st, _ := os.Stat(path)
	perHour := st.Size() * 60
	if perHour > 100<<20 {
		t.Fatalf("1 000 viewers for one minute: %d bytes, i.e. %d MB an hour, never compacted while running", st.Size(), perHour>>20)
	}
}

// A price that buys more than a Duration holds (or a uint64 of milliseconds, where MillisFor
// saturates) is capped per credit, so two such credits do not wrap around to little access.
func TestHugeCreditsDoNotWrap(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "l"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k := Key{Stream: "s", Viewer: "v"}
	for _, id := range []string{"ln:a", "ln:b"} {
		if _, err := l.SetCredit(k, Credit{ID: id, Msat: 1000, Millis: 1<<63 + 1, State: Settled}); err != nil {
			t.Fatal(err)
		}
	}
	if r := l.Remaining(k); r < 200*365*24*time.Hour {
		t.Fatalf("two near-unlimited credits leave %v", r)
	}
}
