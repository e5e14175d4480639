//go:build linux

package invoice

import (
	"bytes"
	"context"
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
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// fzState is what a seller loaded from its store: every invoice's stored fields, by ID, and the
// next address index per account key.
func fzState(s *Seller) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.invoices))
	for id := range s.invoices {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		j, _ := json.Marshal(s.invoices[id])
		fmt.Fprintf(&b, "%q %s\n", id, j)
	}
	keys := make([]string, 0, len(s.next))
	for k := range s.next {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "next %q %d\n", k, s.next[k])
	}
	return b.String()
}

// fzSetup makes what the store's fuzz targets share: a directory, a seller's configuration (both
// methods, a ledger, a fixed clock) for a store path, and a real store made by that seller
// (on-chain, Lightning and combined invoices for two viewers).
func fzSetup(f *testing.F) (dir string, cfg func(path string) Config, real []byte) {
	dir = f.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	clk := mockClock()
	clk.Set(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	key := accountKey(f)
	cfg = func(path string) Config {
		return Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l, StorePath: path,
			OnChain: &OnChain{Key: key, Watcher: fakeWatcher{}}, Lightning: &fakeLN{settled: map[string]Settled{}},
			Clock: clk, Burst: 1000, RatePerSec: 1000}
	}
	seedPath := filepath.Join(dir, "seed")
	s, err := New(cfg(seedPath))
	if err != nil {
		f.Fatal(err)
	}
	for i, m := range []invoicemsg.Method{invoicemsg.OnChain, invoicemsg.Lightning, invoicemsg.Any, invoicemsg.OnChain} {
		a := s.Handle(context.Background(), fmt.Sprint("viewer", i%2), invoicemsg.Request{Stream: streamID, Method: m, Minutes: 10})
		if a.Code != invoicemsg.OK {
			f.Fatalf("seed invoice: %v %s", a.Code, a.Error)
		}
	}
	s.Close()
	real, err = os.ReadFile(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	return dir, cfg, real
}

// FuzzNew: an invoice store holding any bytes opens (New, then Close), or New fails with an
// error wrapping ErrCorrupt. What opens, written back as compaction writes it (rewriteStore),
// opens to the same invoices and address counters. With framed, each line of the input is one
// record, so that the fuzzer's JSON gets past the checksums. Seeds that once failed: an address
// of another network (New refused the store for good), an address of none (an error wrapping no
// sentinel), a record whose re-encoding outgrows a frame (compaction failed, and so New).
func FuzzNew(f *testing.F) {
	dir, cfg, real := fzSetup(f)
	f.Add(real, false)
	f.Add(real[:len(real)-7], false)
	damaged := bytes.Clone(real)
	damaged[30] ^= 4
	f.Add(damaged, false)
	f.Add([]byte(nil), false)
	for _, lines := range []string{
		`{"next":3}` + "\n" + `{"inv":{"id":"a","stream":"s","viewer":"v","method":1,"sats":1000,"created":"2026-05-01T11:00:00Z","expires":"2026-05-01T11:15:00Z","addr":"sb1qw508d6qejxtdg4y5r3zarvary0c5xw7kg5x8vu","index":2}}`,
		`{"inv":{"id":"b","stream":"s","viewer":"v","method":2,"hash":"00","bolt11":"lnsb1","paid":true,"created":"2026-05-01T11:00:00Z"}}`,
		`{"inv":{"id":"c","addr":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4","paid":true,"key":"x"}}`,
		`{"next":4294967295,"key":"k"}` + "\n" + `{"inv":{"id":"d","bolt11":"` + strings.Repeat("<", 12000) + `"}}`,
		`{"inv":null}`,
		`not json`,
	} {
		f.Add([]byte(lines), true)
	}

	path := filepath.Join(dir, "invoices") // one per fuzzing process, each input written over the last
	again := filepath.Join(dir, "again")
	f.Fuzz(func(t *testing.T, b []byte, framed bool) {
		if framed {
			b = journaltest.FrameLines(b)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := New(cfg(path))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("New: %v, which does not wrap ErrCorrupt", err)
			}
			return
		}
		before := fzState(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		invs := make([]*Invoice, 0, len(s.invoices))
		for _, inv := range s.invoices {
			invs = append(invs, inv)
		}
		next := s.next
		s.mu.Unlock()
		os.Remove(again)
		if err := rewriteStore(again, invs, next); err != nil {
			t.Fatalf("the loaded invoices cannot be written back: %v", err)
		}
		s2, err := New(cfg(again))
		if err != nil {
			t.Fatalf("the store written back does not open: %v", err)
		}
		defer s2.Close()
		if after := fzState(s2); after != before {
			t.Fatalf("store\n%s\nreopens after compaction as\n%s", before, after)
		}
	})
}

// An address handed out on another network (the data directory is shared by all networks) is
// neither watched nor resumed, and the store opens; one of no network is damage.
func TestStoreWithAddressOfAnotherNetwork(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		addr    string
		corrupt bool
	}{
		{"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", false},
		{"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", true},
	} {
		path := filepath.Join(dir, "invoices")
		rec := `{"inv":{"id":"a","stream":"s","viewer":"v","method":1,"sats":1000,"paid":true,"key":"k","addr":"` + tc.addr + `"}}`
		if err := os.WriteFile(path, journaltest.FrameLines([]byte(rec)), 0o600); err != nil {
			t.Fatal(err)
		}
		w := newHBWatcher(0)
		s, err := New(Config{PriceOf: func(string) (price.Price, bool) { return perMinute, true }, Ledger: l, StorePath: path,
			OnChain: &OnChain{Key: accountKey(t), Watcher: w}})
		if tc.corrupt {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: %v, want ErrCorrupt", tc.addr, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		s.Close()
		if w.watched(tc.addr) {
			t.Fatalf("%s is watched on simnet", tc.addr)
		}
	}
}

// FuzzDecodeStoreRecord: FuzzNew's decoder in memory, fast enough for the fuzzer to explore
// (FuzzNew's files and syncs cost it most of its time). A record of the invoice file decodes
// (decodeStoreRecord) or fails (which New reports as ErrCorrupt); what decodes re-encodes, as
// compaction writes it, within a frame with room left for what loading adds, and decodes again to
// a record that encodes the same.
func FuzzDecodeStoreRecord(f *testing.F) {
	_, _, real := fzSetup(f)
	for b := real; len(b) >= 8; {
		n := int(binary.BigEndian.Uint32(b))
		f.Add(bytes.Clone(b[8 : 8+n]))
		b = b[8+n:]
	}
	for _, s := range []string{
		`{"next":3}`, `{"next":4294967296}`, `{"inv":null,"next":null}`, `{"inv":{"id":"a","created":"2026-05-01T11:00:00+02:00"}}`,
		`{"inv":{"id":"d","bolt11":"` + strings.Repeat("<", 12000) + `"}}`, `{"inv":{"method":256}}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeStoreRecord(b)
		if err != nil {
			return
		}
		enc, err := json.Marshal(r)
		if err != nil || len(enc) > journal.MaxFrame-writeBackRoom {
			t.Fatalf("record decodes, then encodes to %d bytes (%v)", len(enc), err)
		}
		r2, err := decodeStoreRecord(enc)
		if err != nil {
			t.Fatalf("record %s written back does not decode: %v", enc, err)
		}
		if enc2, _ := json.Marshal(r2); !bytes.Equal(enc, enc2) {
			t.Fatalf("record %s decodes again as %s", enc, enc2)
		}
	})
}
