package session

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestEvictWatchedOldestFirst(t *testing.T) {
	d, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 4 {
		id := fmt.Sprintf("%064d", i)
		if err := d.saveWatched(WatchedRecord{ID: id, LastWatched: now.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(d.watchedDir(id), "feed"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.watchedDir(id), "feed", "data"), make([]byte, 1000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	oldest, newest := fmt.Sprintf("%064d", 0), fmt.Sprintf("%064d", 3)
	// A copy of a stream joined late is a sparse file: its hole takes no space, and does
	// not count (1 GiB of it here).
	if err := os.Truncate(filepath.Join(d.watchedDir(newest), "feed", "data"), 1<<30); err != nil {
		t.Fatal(err)
	}
	one := dirSize(d.watchedDir(oldest))
	if got := dirSize(d.watchedDir(newest)); runtime.GOOS != "windows" && got > one+64<<10 {
		t.Fatalf("a copy with a 1 GiB hole counts %d bytes, one without %d", got, one)
	}
	// Room for about two copies; the oldest is being opened again, so the next oldest go.
	gone, err := d.EvictWatched(one*5/2, oldest)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 2 || gone[0] != fmt.Sprintf("%064d", 1) || gone[1] != fmt.Sprintf("%064d", 2) {
		t.Fatalf("removed %v", gone)
	}
	left, _ := d.Watched()
	if len(left) != 2 || left[0].ID != newest || left[1].ID != oldest {
		t.Fatalf("left %+v", left)
	}
}
