package ledger

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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

// blockSyncs makes l's first file sync close entered and wait until release is closed, and
// counts the syncs. Set before l is shared.
func blockSyncs(l *Ledger) (entered, release chan struct{}, syncs *atomic.Int32) {
	entered, release, syncs = make(chan struct{}), make(chan struct{}), new(atomic.Int32)
	l.syncFile = func(f *os.File) error {
		if syncs.Add(1) == 1 { // only the first waits; later ones go through
			close(entered)
			<-release
		}
		return f.Sync()
	}
	return entered, release, syncs
}

// Regression test for a reviewer's finding; the defect was: Flush synced the file while holding
// the lock Consume takes, so once a second every paid viewer's sending waited for the disk.
// SetMeta (the seller saves values every minute) syncs outside that lock too. Consumption written
// while a sync runs stays unsynced, so the next Flush syncs it.
func TestConsumeDoesNotWaitForSync(t *testing.T) {
	for _, tc := range []struct {
		name string
		sync func(l *Ledger) error
	}{
		{"Flush", (*Ledger).Flush},
		{"SetMeta", func(l *Ledger) error { return l.SetMeta("seen", "x") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, filepath.Join(t.TempDir(), "l"))
			defer l.Close()
			if _, err := l.SetCredit(k, Credit{ID: "ln:1", Msat: 1000, Millis: 3_600_000, State: Settled}); err != nil {
				t.Fatal(err)
			}
			entered, release, syncs := blockSyncs(l)
			var releaseOnce sync.Once
			defer releaseOnce.Do(func() { close(release) })
			l.Consume(k, 500) // unwritten: a Flush writes and syncs it
			synced := make(chan error, 1)
			go func() { synced <- tc.sync(l) }()
			<-entered

			consumed := make(chan error, 1)
			go func() {
				// 9 × 400 ms: totals written at 1 700, 2 900 and 4 100 ms, nothing left unwritten,
				// so only the records written during the sync make the next Flush sync.
				for i := 0; i < 9; i++ {
					if _, err := l.Consume(k, 400); err != nil {
						consumed <- err
						return
					}
				}
				consumed <- nil
			}()
			select {
			case err := <-consumed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second): // only reached when Consume waits for the sync
				releaseOnce.Do(func() { close(release) })
				<-consumed
				<-synced
				t.Fatalf("Consume waited for %s's disk sync", tc.name)
			}
			releaseOnce.Do(func() { close(release) })
			if err := <-synced; err != nil {
				t.Fatal(err)
			}
			if err := l.Flush(); err != nil || syncs.Load() != 2 {
				t.Fatalf("consumption written during a sync was not synced by the next Flush: %v, %d syncs", err, syncs.Load())
			}
			if err := l.Flush(); err != nil || syncs.Load() != 2 {
				t.Fatalf("a Flush with nothing new synced: %v, %d syncs", err, syncs.Load())
			}
			if got, want := l.Balance(k).ConsumedMillis, uint64(4100); got != want {
				t.Fatalf("consumed %d, want %d", got, want)
			}
		})
	}
}

// Close waits for a Flush's sync before it closes the file, so the sync never runs on a closed
// file, and what was consumed is on disk afterwards.
func TestCloseWaitsForFlushSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l := open(t, path)
	if _, err := l.SetCredit(k, Credit{ID: "ln:1", Msat: 1000, Millis: 3_600_000, State: Settled}); err != nil {
		t.Fatal(err)
	}
	entered, release, _ := blockSyncs(l)
	l.Consume(k, 700)
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush() }()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	time.Sleep(20 * time.Millisecond) // give Close a chance to run ahead (it must not)
	close(release)
	if err := <-flushed; err != nil {
		t.Fatalf("Flush whose sync overlapped Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	l = open(t, path)
	defer l.Close()
	if got := l.Balance(k).ConsumedMillis; got != 700 {
		t.Fatalf("consumed %d after reopening, want 700", got)
	}
}
