package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/internal/journal"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/journal/journaltest"
)

// snapshot is everything a ledger holds, in one comparable text.
func snapshot(l *Ledger) string {
	var b strings.Builder
	keys := make([]Key, 0, len(l.accounts))
	for k := range l.accounts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y Key) int { return strings.Compare(x.Stream+"\x00"+x.Viewer, y.Stream+"\x00"+y.Viewer) })
	for _, k := range keys {
		a := l.accounts[k]
		fmt.Fprintf(&b, "%q %q %+v\n", k.Stream, k.Viewer, a.bal)
		ids := make([]string, 0, len(a.credits))
		for id := range a.credits {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			c, _ := json.Marshal(a.credits[id])
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	names := make([]string, 0, len(l.meta))
	for n := range l.meta {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "meta %q=%q\n", n, l.meta[n])
	}
	return b.String()
}

// checkLoaded checks that what Open loaded is what SetCredit could have stored, and that each
// account's balance is its credits' sum.
func checkLoaded(t *testing.T, l *Ledger) {
	for k, a := range l.accounts {
		if err := k.validate(); err != nil {
			t.Fatalf("loaded account %+v: %v", k, err)
		}
		var want Balance
		for id, c := range a.credits {
			if id != c.ID || c.ID == "" || len(c.ID) > MaxIDLen || len(c.Note) > 1024 || c.State < Provisional || c.State > Revoked ||
				c.Millis > MaxCreditMillis {
				t.Fatalf("loaded a credit SetCredit refuses: %+v", c)
			}
			want.add(c)
		}
		want.ConsumedMillis = a.bal.ConsumedMillis
		if want != a.bal {
			t.Fatalf("account %+v: balance %+v, its credits add up to %+v", k, a.bal, want)
		}
	}
	for name, v := range l.meta {
		if len(name) > MaxIDLen || len(v) > maxMetaValue {
			t.Fatalf("loaded a meta entry SetMeta refuses: %d-byte name, %d-byte value", len(name), len(v))
		}
	}
}

// seedLedger writes a real ledger (credits in every state, consumption, meta values) and
// returns its file.
func seedLedger(f *testing.F) []byte {
	path := filepath.Join(f.TempDir(), "ledger")
	l, err := Open(path, nil)
	if err != nil {
		f.Fatal(err)
	}
	k := Key{Stream: "3f2a9c0d", Viewer: "12D3KooWviewer"}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []Credit{
		{ID: "ln:ab01", Msat: 100_000, Millis: 60_000, State: Settled, At: at},
		{ID: "btc:cd02:1", Msat: 2_000_000, Millis: 1_200_000, State: Provisional, Note: "seen in the mempool"},
		{ID: "btc:cd02:1", Msat: 2_000_000, Millis: 1_200_000, State: Settled, Height: 812_345},
		{ID: "btc:ef03:0", Msat: 5_000, Millis: 3_000, State: Revoked, Note: "replaced"},
	} {
		if _, err := l.SetCredit(k, c); err != nil {
			f.Fatal(err)
		}
	}
	l.Consume(k, 2500)
	l.SetMeta("ln.settle_index.02ab", "17")
	l.SetMeta("invoice.watched_until.chain.simnet", "2026-05-01T12:00:00Z")
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzOpen: a ledger file holding any bytes opens, or fails with an error wrapping ErrCorrupt.
// What opens holds only what SetCredit and Consume could have stored (valid keys and IDs, credit
// states, at most MaxCreditMillis a credit), each balance is its credits' sum, and the ledger
// rewritten with its live state (compaction) reopens the same. With framed, each line of the
// input is one record, so that the fuzzer's JSON gets past the checksums.
func FuzzOpen(f *testing.F) {
	real := seedLedger(f)
	f.Add(real, false)
	f.Add(real[:len(real)-3], false)
	damaged := bytes.Clone(real)
	damaged[20] ^= 1
	f.Add(damaged, false)
	f.Add([]byte(nil), false)
	for _, lines := range []string{
		`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"ln:a","msat":1000,"ms":60000,"st":2,"at":"2026-05-01T12:00:00Z"}}` + "\n" +
			`{"op":"consumed","k":{"s":"s","v":"v"},"n":1500}` + "\n" + `{"op":"meta","name":"x","val":"y"}`,
		`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"ln:a","msat":1,"ms":18446744073709551615,"st":2}}` + "\n" +
			`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"ln:b","msat":1,"ms":18446744073709551615,"st":1}}`,
		`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"","msat":1,"ms":1,"st":9}}`,
		`{"op":"consumed","k":{"s":"","v":"v"},"n":1}`,
		`{"op":"meta","name":"x","val":"` + strings.Repeat("<", 12000) + `"}`, // 72 000 bytes once re-encoded
		`{"op":"what"}`,
		`not json`,
	} {
		f.Add([]byte(lines), true)
	}
	// One file per fuzzing process, each input written over the last (with its lock beside it).
	dir := f.TempDir()
	path := filepath.Join(dir, "ledger")
	f.Fuzz(func(t *testing.T, b []byte, framed bool) {
		if framed {
			b = journaltest.FrameLines(b)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, which does not wrap ErrCorrupt", err)
			}
			return
		}
		defer l.Close() // a no-op once closed; keeps the lock from outliving a failure
		checkLoaded(t, l)
		before := snapshot(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.compact(); err != nil { // the live state rewritten, as a growing ledger is
			t.Fatal(err)
		}
		l2, err := Open(path, nil)
		if err != nil {
			t.Fatalf("the ledger rewritten does not open: %v", err)
		}
		defer l2.Close()
		if after := snapshot(l2); after != before {
			t.Fatalf("ledger\n%s\nreopens after compaction as\n%s", before, after)
		}
	})
}

// framesOf returns the payloads of the journal frames in b (which writeState wrote).
func framesOf(t testing.TB, b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("%d bytes after the last frame", len(b))
		}
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-8 {
			t.Fatalf("a frame of %d bytes with %d left", n, len(b)-8)
		}
		out = append(out, b[8:8+n])
		b = b[8+n:]
	}
	return out
}

func newState() *Ledger { return &Ledger{accounts: map[Key]*account{}, meta: map[string]string{}} }

// FuzzLoad is FuzzOpen in memory, fast enough for the fuzzer to explore (FuzzOpen's file, lock
// and sync cost it most of its time): each line of the input is one record, decoded and applied as
// Open does (applyRecord; an error is what Open reports as ErrCorrupt). What loads holds only what
// SetCredit, SetMeta and Consume could have stored, each balance is its credits' sum, and the
// live state written as compaction writes it (writeState) loads back the same.
func FuzzLoad(f *testing.F) {
	f.Add(bytes.Join(framesOf(f, seedLedger(f)), []byte("\n")))
	for _, s := range []string{
		`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"ln:a","msat":1000,"ms":60000,"st":2,"at":"2026-05-01T12:00:00Z"}}` + "\n" +
			`{"op":"consumed","k":{"s":"s","v":"v"},"n":1500}` + "\n" + `{"op":"meta","name":"x","val":"y"}`,
		`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"ln:a","msat":1,"ms":18446744073709551615,"st":2}}` + "\n" +
			`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"ln:a","msat":1,"ms":5,"st":3,"note":"replaced"}}`,
		`{"op":"credit","k":{"s":"s","v":"v"},"c":{"id":"","msat":1,"ms":1,"st":9}}`,
		`{"op":"meta","name":"x","val":"` + strings.Repeat("<", 12000) + `"}`,
		`{"op":"consumed","k":{"s":"","v":"v"},"n":1}`,
		`{"op":"what"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l := newState()
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(line) == 0 || len(line) > journal.MaxFrame {
				continue // no such frame is written (journal.AppendFrame)
			}
			if err := l.applyRecord(line); err != nil {
				return
			}
		}
		checkLoaded(t, l)
		var buf bytes.Buffer
		if _, err := l.writeState(&buf); err != nil {
			t.Fatalf("the loaded state cannot be written back: %v", err)
		}
		l2 := newState()
		for _, p := range framesOf(t, buf.Bytes()) {
			if err := l2.applyRecord(p); err != nil {
				t.Fatalf("record %s written back does not load: %v", p, err)
			}
		}
		if before, after := snapshot(l), snapshot(l2); before != after {
			t.Fatalf("state\n%s\nloads back as\n%s", before, after)
		}
	})
}
