package feed

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The boot identity is known, well formed and the same for the whole boot. (That it
// changes across boots is checked under wine by packaging/windows, which restarts the
// wineserver between two runs of this test and compares what DV_BOOTID_OUT received.)
func TestBootIDWindows(t *testing.T) {
	a := bootID()
	ticks, ok := strings.CutPrefix(a, "windows-boot-")
	if !ok {
		t.Fatalf("bootID() = %q, want windows-boot-N", a)
	}
	if n, err := strconv.ParseInt(ticks, 10, 64); err != nil || n <= 0 {
		t.Fatalf("bootID() = %q: not a positive time (%v)", a, err)
	}
	time.Sleep(20 * time.Millisecond)
	if b := bootID(); b != a {
		t.Fatalf("bootID() changed within a boot: %q then %q", a, b)
	}
	if p := os.Getenv("DV_BOOTID_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(a), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// With the boot known, a ForkOnPowerLoss writer whose process died (the same boot)
// carries on in the same fork with everything it appended: before Windows had a boot
// identity every unclean exit moved the feed to a new fork.
func TestUncleanExitSameBootWindows(t *testing.T) {
	dir := tempDirWine(t)
	kp := testKeyPair(t, 11)
	o := Options{KeyPair: &kp, Durability: ForkOnPowerLoss}
	f, err := Create(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustAppend(t, f, block(i, 100))
	}
	if err := f.crash(); err != nil {
		t.Fatal(err)
	}
	g, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if h := g.Head(); h.Fork != 0 || h.Length != 5 {
		t.Fatalf("after an unclean exit on the same boot: fork %d length %d, want fork 0 length 5", h.Fork, h.Length)
	}
}

// tempDirWine is t.TempDir with a removal that works under wine 8 too: Go's RemoveAll
// deletes through FileDispositionInformationEx, which wine 8 does not implement ("Invalid
// function", and Go falls back only on the status codes Windows gives), while os.Remove
// uses DeleteFile and RemoveDirectory.
func tempDirWine(t *testing.T) string {
	dir, err := os.MkdirTemp("", "dv-feed-windows-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var paths []string
		filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				paths = append(paths, p)
			}
			return nil
		})
		slices.Reverse(paths) // children before their directory
		for _, p := range paths {
			if err := os.Remove(p); err != nil {
				t.Errorf("cleaning up: %v", err)
			}
		}
	})
	return dir
}
