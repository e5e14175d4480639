package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/filecoin-project/go-clock"
)

func open(t testing.TB, path string) *Ledger {
	t.Helper()
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var k = Key{Stream: "stream1", Viewer: "12D3KooWviewer"}

func TestCreditsConsumeAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	l := open(t, path)
	steps := []struct {
		c       Credit
		changed bool
		want    time.Duration
	}{
		{Credit{ID: "ln:a", Msat: 1_000_000, Millis: 3_600_000, State: Settled}, true, time.Hour},
		{Credit{ID: "ln:a", Msat: 1_000_000, Millis: 3_600_000, State: Settled}, false, time.Hour}, // replay
		{Credit{ID: "btc:t:0", Msat: 500_000, Millis: 1_800_000, State: Provisional}, true, 90 * time.Minute},
		{Credit{ID: "btc:t:0", Msat: 500_000, Millis: 1_800_000, State: Settled}, true, 90 * time.Minute},
		{Credit{ID: "btc:u:1", Msat: 100_000, Millis: 360_000, State: Provisional}, true, 96 * time.Minute},
		{Credit{ID: "btc:u:1", Msat: 100_000, Millis: 360_000, State: Revoked}, true, 90 * time.Minute},
	}
	for i, s := range steps {
		ch, err := l.SetCredit(k, s.c)
		if err != nil || ch != s.changed {
			t.Fatalf("step %d: changed=%v err=%v", i, ch, err)
		}
		if got := l.Remaining(k); got != s.want {
			t.Fatalf("step %d: remaining %v, want %v", i, got, s.want)
		}
	}
	left, err := l.Consume(k, 60_000)
	if err != nil || left != 89*time.Minute {
		t.Fatalf("consume: %v %v", left, err)
	}
	if err := l.SetMeta("lnd.settle_index", "42"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, path)
	defer l.Close()
	b := l.Balance(k)
	if b.Remaining() != 89*time.Minute || b.SettledMsat != 1_500_000 || b.ProvisionalMillis != 0 {
		t.Fatalf("after restart: %+v", b)
	}
	if v, _ := l.Meta("lnd.settle_index"); v != "42" {
		t.Fatalf("meta lost: %q", v)
	}
	if m := l.MetaPrefixed("lnd."); len(m) != 1 || m["lnd.settle_index"] != "42" {
		t.Fatalf("MetaPrefixed(lnd.) = %v", m)
	}
	if m := l.MetaPrefixed("invoice."); len(m) != 0 {
		t.Fatalf("MetaPrefixed(invoice.) = %v", m)
	}
	if len(l.Credits(k)) != 3 {
		t.Fatalf("credits: %+v", l.Credits(k))
	}
	if l.Remaining(Key{"stream1", "other"}) != 0 {
		t.Fatal("another viewer has access")
	}
}

func TestRevokedAfterUseGoesNegative(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "l"))
	defer l.Close()
	l.SetCredit(k, Credit{ID: "btc:x:0", Msat: 1000, Millis: 10_000, State: Provisional})
	l.Consume(k, 8_000)
	l.SetCredit(k, Credit{ID: "btc:x:0", Msat: 1000, Millis: 10_000, State: Revoked})
	if b := l.Balance(k); b.Remaining() != -8*time.Second || l.Remaining(k) != 0 {
		t.Fatalf("balance %+v", b)
	}
	// A top-up first pays off the debt.
	l.SetCredit(k, Credit{ID: "ln:y", Msat: 2000, Millis: 20_000, State: Settled})
	if got := l.Remaining(k); got != 12*time.Second {
		t.Fatalf("remaining %v", got)
	}
}

func TestBadInput(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "l"))
	defer l.Close()
	long := string(make([]byte, MaxIDLen+1))
	for _, c := range []struct {
		k Key
		c Credit
	}{
		{Key{"", "v"}, Credit{ID: "a", State: Settled}},
		{Key{"s", long}, Credit{ID: "a", State: Settled}},
		{k, Credit{ID: "", State: Settled}},
		{k, Credit{ID: long, State: Settled}},
		{k, Credit{ID: "a", State: 9}},
	} {
		if _, err := l.SetCredit(c.k, c.c); err == nil {
			t.Errorf("accepted %+v %+v", c.k, c.c)
		}
	}
}

func TestTornTailIsDroppedCorruptionIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l := open(t, path)
	l.SetCredit(k, Credit{ID: "ln:1", Msat: 1000, Millis: 1000, State: Settled})
	l.SetCredit(k, Credit{ID: "ln:2", Msat: 1000, Millis: 1000, State: Settled})
	l.Close()
	whole, _ := os.ReadFile(path)
	// Crash in the middle of writing the second record: the first survives.
	os.WriteFile(path, whole[:len(whole)-5], 0o600)
	l = open(t, path)
	if got := l.Remaining(k); got != time.Second {
		t.Fatalf("after torn write: %v", got)
	}
	l.SetCredit(k, Credit{ID: "ln:3", Msat: 1000, Millis: 1000, State: Settled})
	l.Close()
	l = open(t, path)
	if got := l.Remaining(k); got != 2*time.Second {
		t.Fatalf("after append past torn write: %v", got)
	}
	l.Close()
	// A power loss that lengthened the file without writing it: zeros past the end.
	zeros, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	zeros.Write(make([]byte, 4096))
	zeros.Close()
	l = open(t, path)
	if got := l.Remaining(k); got != 2*time.Second {
		t.Fatalf("after zeros past the end: %v", got)
	}
	l.SetCredit(k, Credit{ID: "ln:4", Msat: 1000, Millis: 1000, State: Settled})
	l.Close()
	l = open(t, path)
	if got := l.Remaining(k); got != 3*time.Second {
		t.Fatalf("after append past the zeros: %v", got)
	}
	l.Close()
	// A flipped bit in the first record is damage, not a torn write: refuse to open.
	b, _ := os.ReadFile(path)
	b[12] ^= 0x40
	os.WriteFile(path, b, 0o600)
	if _, err := Open(path, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt file opened: %v", err)
	}
}

func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l := open(t, path)
	l.SetCredit(k, Credit{ID: "ln:1", Msat: 1000, Millis: 100_000, State: Settled})
	s0, _ := os.Stat(path)
	l.Consume(k, 10)
	l.Flush()
	s1, _ := os.Stat(path)
	perRecord := s1.Size() - s0.Size()
	for i := 1; i < 1100; i++ {
		l.Consume(k, 10)
		l.Flush()
	}
	l.Close()
	// Compacted while running: well under the 1 100 consumption records written.
	if st, _ := os.Stat(path); st.Size() > 200*perRecord {
		t.Fatalf("not compacted while running: %d bytes, %d per record", st.Size(), perRecord)
	}
	l = open(t, path)
	if got := l.Remaining(k); got != 89*time.Second {
		t.Fatalf("remaining after compaction %v", got)
	}
	l.Close()
}

func TestConcurrentViewers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l := open(t, path)
	var wg sync.WaitGroup
	for v := 0; v < 50; v++ {
		wg.Add(1)
		go func(v int) {
			defer wg.Done()
			key := Key{"s", fmt.Sprint("viewer", v)}
			l.SetCredit(key, Credit{ID: fmt.Sprint("ln:", v), Msat: 1, Millis: 10_000, State: Settled})
			for i := 0; i < 100; i++ {
				l.Consume(key, 10)
			}
		}(v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { l.Run(ctx, time.Millisecond); close(stopped) }()
	wg.Wait()
	cancel()
	<-stopped
	l.Close()
	l = open(t, path)
	defer l.Close()
	for v := 0; v < 50; v++ {
		if got := l.Remaining(Key{"s", fmt.Sprint("viewer", v)}); got != 9*time.Second {
			t.Fatalf("viewer %d: %v", v, got)
		}
	}
}

// BenchmarkLedger1000Viewers is 1 000 viewers each burning 1 s of media per tick, then one Flush:
// the per-second cost of the ledger for 1 000 concurrent viewers.
func BenchmarkLedger1000Viewers(b *testing.B) {
	l := open(b, filepath.Join(b.TempDir(), "l"))
	defer l.Close()
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = Key{"stream", fmt.Sprint("12D3KooWviewer", i)}
		l.SetCredit(keys[i], Credit{ID: fmt.Sprint("ln:", i), Msat: 1e9, Millis: 1 << 40, State: Settled})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for j := w; j < len(keys); j += 8 {
					l.Consume(keys[j], 1000)
					l.Remaining(keys[j])
				}
			}(w)
		}
		wg.Wait()
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFsyncFloor is the in-run reference for the ledger figures: appending one small record
// to a file and syncing it, the least any durable credit can cost on this disk.
func BenchmarkFsyncFloor(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, 100)
	for i := 0; i < b.N; i++ {
		f.Write(rec)
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCredit is one durable credit (a settled payment), for comparison with the floor.
func BenchmarkCredit(b *testing.B) {
	l := open(b, filepath.Join(b.TempDir(), "l"))
	defer l.Close()
	for i := 0; i < b.N; i++ {
		if _, err := l.SetCredit(k, Credit{ID: fmt.Sprint("ln:", i), Msat: 1000, Millis: 3600, State: Settled}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsume is one delivered block billed (33 ms of media, ~30 calls a second per viewer
// at 30 fps) with 300 viewers taking turns, so every 31st call per viewer appends its total:
// the per-block cost the app's gate pays, write included.
func BenchmarkConsume(b *testing.B) {
	l := open(b, filepath.Join(b.TempDir(), "l"))
	defer l.Close()
	keys := make([]Key, 300)
	for i := range keys {
		keys[i] = Key{"stream", fmt.Sprint("12D3KooWviewer", i)}
		l.SetCredit(keys[i], Credit{ID: fmt.Sprint("ln:", i), Msat: 1e9, Millis: 1 << 40, State: Settled})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Consume(keys[i%len(keys)], 33); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsumeParallel is BenchmarkConsume from as many goroutines as GOMAXPROCS (the
// sessions of different viewers bill at once and share the ledger's lock).
func BenchmarkConsumeParallel(b *testing.B) {
	l := open(b, filepath.Join(b.TempDir(), "l"))
	defer l.Close()
	keys := make([]Key, 300)
	for i := range keys {
		keys[i] = Key{"stream", fmt.Sprint("12D3KooWviewer", i)}
		l.SetCredit(keys[i], Credit{ID: fmt.Sprint("ln:", i), Msat: 1e9, Millis: 1 << 40, State: Settled})
	}
	var next sync.Mutex
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		i := n
		n += 37
		next.Unlock()
		for pb.Next() {
			if _, err := l.Consume(keys[i%len(keys)], 33); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// A sale's time is when the payment was first recorded: a later state keeps it, and it
// survives a restart.
func TestCreditTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	clk := clock.NewMock()
	clk.Set(time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC))
	l, err := Open(path, nil, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	seen := clk.Now()
	if _, err := l.SetCredit(k, Credit{ID: "btc:t:0", Msat: 5000, Millis: 1000, State: Provisional}); err != nil {
		t.Fatal(err)
	}
	first, _ := l.Credit(k, "btc:t:0")
	if !first.At.Equal(seen) {
		t.Fatalf("recorded at %v, the clock said %v", first.At, seen)
	}
	clk.Add(10 * time.Minute)
	if _, err := l.SetCredit(k, Credit{ID: "btc:t:0", Msat: 5000, Millis: 1000, State: Settled, Height: 7}); err != nil {
		t.Fatal(err)
	}
	given := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := l.SetCredit(k, Credit{ID: "ln:x", Msat: 1, Millis: 1, State: Settled, At: given}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, path)
	defer l.Close()
	c, _ := l.Credit(k, "btc:t:0")
	if !c.At.Equal(seen) || c.State != Settled {
		t.Fatalf("after settling and a restart: %+v, first recorded at %v", c, seen)
	}
	if c, _ := l.Credit(k, "ln:x"); !c.At.Equal(given) {
		t.Fatalf("a given time was replaced: %v", c.At)
	}
}

// One ledger file has one owner: a second Open (another paid stream of the same data
// directory, in this process or another) is refused before it reads or writes anything,
// where before both appended to the file and each cut the other's newest record off as torn.
func TestSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	l := open(t, path)
	if _, err := l.SetCredit(k, Credit{ID: "ln:a", Msat: 1000, Millis: 60_000, State: Settled}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if l2, err := Open(path, nil); !errors.Is(err, ErrInUse) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("a second open of a ledger in use: %v, want ErrInUse", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("the refused open changed the file")
	}
	if _, err := l.Consume(k, 1000); err != nil {
		t.Fatalf("the owner after a refused open: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, path) // closed, it can be opened again
	defer l.Close()
	if got := l.Remaining(k); got != 59*time.Second {
		t.Fatalf("reopened: %v left, want 59s", got)
	}
}
