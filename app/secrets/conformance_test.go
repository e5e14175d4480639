package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// backendUnderTest is one backend for the conformance suite (restic-style:
// every backend passes the same tests).
type backendUnderTest struct {
	name string
	// open returns a new, empty store.
	open func(t *testing.T) *Store
	// reopen closes s and opens the same storage again; nil for a backend
	// that does not persist.
	reopen func(t *testing.T, s *Store) *Store
	// heavy is false for backends where each operation is a round trip to
	// another process (the keyring): the concurrency test does less.
	heavy bool
}

// testKDF keeps Argon2id cheap in tests; one test checks DefaultKDF.
var testKDF = KDFParams{Time: 1, MemoryKiB: 256, Threads: 1}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func mustSet(t *testing.T, s *Store, name string, v []byte) {
	t.Helper()
	if err := s.Set(name, v); err != nil {
		t.Fatalf("Set(%q, %d bytes): %v", name, len(v), err)
	}
}

func mustGet(t *testing.T, s *Store, name string) []byte {
	t.Helper()
	v, err := s.Get(name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return v
}

func mustList(t *testing.T, s *Store) []string {
	t.Helper()
	names, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return names
}

func runConformance(t *testing.T, bt backendUnderTest) {
	feed := FeedSeedName(strings.Repeat("ab", 32))

	t.Run("RoundTrip", func(t *testing.T) {
		s := bt.open(t)
		cases := []struct {
			name  string
			value []byte
		}{
			{"empty", nil},
			{"one-byte", []byte{0}},
			{"all-byte-values", allBytes()},
			{"nul-and-newlines", []byte("a\x00b\nc\r\n:dv1:")},
			{"invalid-utf8", []byte{0xff, 0xfe, 0xc3, 0x28}},
			{feed, randBytes(t, 32)},
			{NameP2PIdentity, randBytes(t, 68)},
			{NameLNDMacaroon, randBytes(t, 300)},
			{NameLNDTLSCert, randBytes(t, 4000)}, // several keyring items
			{"big/max-size", randBytes(t, MaxValueSize)},
		}
		for _, c := range cases {
			mustSet(t, s, c.name, c.value)
		}
		for _, c := range cases {
			got := mustGet(t, s, c.name)
			if !bytes.Equal(got, c.value) {
				t.Errorf("Get(%q) = %d bytes, want the %d bytes stored", c.name, len(got), len(c.value))
			}
		}
		want := make([]string, 0, len(cases))
		for _, c := range cases {
			want = append(want, c.name)
		}
		slices.Sort(want)
		if got := mustList(t, s); !slices.Equal(got, want) {
			t.Errorf("List = %q, want %q", got, want)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := bt.open(t)
		seqs := []struct {
			name  string
			sizes []int
		}{
			{"grow", []int{10, 4000}},
			{"shrink", []int{5000, 10}},
			{"shrink-to-empty", []int{3000, 0}},
			{"same-size", []int{32, 32, 32}},
			{"up-down-up", []int{100, 2000, 800, 7000}},
		}
		for _, q := range seqs {
			var last []byte
			for _, n := range q.sizes {
				last = randBytes(t, n)
				mustSet(t, s, "over/"+q.name, last)
			}
			if got := mustGet(t, s, "over/"+q.name); !bytes.Equal(got, last) {
				t.Errorf("%s: Get after overwrites = %d bytes, want the last %d", q.name, len(got), len(last))
			}
		}
		if got := mustList(t, s); len(got) != len(seqs) {
			t.Errorf("List after overwrites = %q, want %d names", got, len(seqs))
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := bt.open(t)
		if _, err := s.Get("missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
		}
		if err := s.Delete("missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(missing) error = %v, want ErrNotFound", err)
		}
		if got := mustList(t, s); len(got) != 0 {
			t.Errorf("List of an empty store = %q", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := bt.open(t)
		mustSet(t, s, "a", []byte("1"))
		mustSet(t, s, "b", randBytes(t, 3000))
		mustSet(t, s, "c", []byte("3"))
		for _, n := range []string{"b", "a"} {
			if err := s.Delete(n); err != nil {
				t.Fatalf("Delete(%q): %v", n, err)
			}
			if _, err := s.Get(n); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) after Delete: %v, want ErrNotFound", n, err)
			}
		}
		if got := mustList(t, s); !slices.Equal(got, []string{"c"}) {
			t.Errorf("List after deletes = %q, want [c]", got)
		}
		if err := s.Delete("c"); err != nil {
			t.Fatal(err)
		}
		if got := mustList(t, s); len(got) != 0 {
			t.Errorf("List after deleting all = %q", got)
		}
		// A deleted name can be set again.
		mustSet(t, s, "b", []byte("again"))
		if got := mustGet(t, s, "b"); string(got) != "again" {
			t.Errorf("Get after re-set = %q", got)
		}
	})

	t.Run("InvalidNames", func(t *testing.T) {
		s := bt.open(t)
		for _, name := range []string{
			"", "/a", "a/", "a//b", ".index", ".hidden/x", "a#1", "a b", "ä", "a\x00b", "a\nb", "a:b",
			strings.Repeat("x", MaxNameLen+1),
		} {
			if err := s.Set(name, []byte("v")); err == nil {
				t.Errorf("Set(%q) succeeded, want an invalid-name error", name)
			}
			if _, err := s.Get(name); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) error = %v, want an invalid-name error", name, err)
			}
			if err := s.Delete(name); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Delete(%q) error = %v, want an invalid-name error", name, err)
			}
		}
		if got := mustList(t, s); len(got) != 0 {
			t.Errorf("List after rejected sets = %q", got)
		}
		long := strings.Repeat("x", MaxNameLen)
		mustSet(t, s, long, []byte("ok"))
		mustGet(t, s, long)
	})

	t.Run("TooLarge", func(t *testing.T) {
		s := bt.open(t)
		mustSet(t, s, "k", []byte("old"))
		if err := s.Set("k", make([]byte, MaxValueSize+1)); err == nil {
			t.Fatal("Set of a value over MaxValueSize succeeded")
		}
		if got := mustGet(t, s, "k"); string(got) != "old" {
			t.Errorf("a rejected Set changed the value to %d bytes", len(got))
		}
	})

	t.Run("Copies", func(t *testing.T) {
		s := bt.open(t)
		v := []byte("secret-value")
		mustSet(t, s, "k", v)
		v[0] = 'X'
		got := mustGet(t, s, "k")
		if string(got) != "secret-value" {
			t.Fatalf("changing the slice given to Set changed the stored value: %q", got)
		}
		got[0] = 'Y'
		if got := mustGet(t, s, "k"); string(got) != "secret-value" {
			t.Fatalf("changing the slice Get returned changed the stored value: %q", got)
		}
	})

	if bt.reopen != nil {
		t.Run("Persists", func(t *testing.T) {
			s := bt.open(t)
			vals := map[string][]byte{feed: randBytes(t, 32), NameLNDTLSCert: randBytes(t, 2500), "gone": []byte("x")}
			for n, v := range vals {
				mustSet(t, s, n, v)
			}
			if err := s.Delete("gone"); err != nil {
				t.Fatal(err)
			}
			delete(vals, "gone")
			s = bt.reopen(t, s)
			for n, v := range vals {
				if got := mustGet(t, s, n); !bytes.Equal(got, v) {
					t.Errorf("after reopening, Get(%q) = %d bytes, want %d", n, len(got), len(v))
				}
			}
			if got := mustList(t, s); !slices.Equal(got, []string{feed, NameLNDTLSCert}) {
				t.Errorf("after reopening, List = %q", got)
			}
		})
	}

	t.Run("Concurrent", func(t *testing.T) {
		s := bt.open(t)
		workers, ops := 8, 20
		if !bt.heavy {
			workers, ops = 4, 5
		}
		var wg sync.WaitGroup
		errc := make(chan error, workers*ops)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ops {
					name := fmt.Sprintf("w%d/k%d", w, i%3)
					val := fmt.Appendf(nil, "value-%d-%d", w, i)
					if err := s.Set(name, val); err != nil {
						errc <- err
						return
					}
					got, err := s.Get(name)
					if err != nil {
						errc <- err
						return
					}
					if !bytes.Equal(got, val) {
						errc <- fmt.Errorf("%s: read %q after writing %q", name, got, val)
						return
					}
					if _, err := s.List(); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		if got := mustList(t, s); len(got) != workers*min(ops, 3) {
			t.Errorf("List after concurrent sets has %d names, want %d", len(got), workers*min(ops, 3))
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s := bt.open(t)
		mustSet(t, s, "k", []byte("v"))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := s.Get("k"); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close: %v, want ErrClosed", err)
		}
		if err := s.Set("k", nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Set after Close: %v, want ErrClosed", err)
		}
		if err := s.Delete("k"); !errors.Is(err, ErrClosed) {
			t.Errorf("Delete after Close: %v, want ErrClosed", err)
		}
		if _, err := s.List(); !errors.Is(err, ErrClosed) {
			t.Errorf("List after Close: %v, want ErrClosed", err)
		}
		if _, err := s.Export([]byte("p"), testKDF); !errors.Is(err, ErrClosed) {
			t.Errorf("Export after Close: %v, want ErrClosed", err)
		}
	})

	t.Run("BackupRoundTrip", func(t *testing.T) {
		src := bt.open(t)
		vals := map[string][]byte{feed: randBytes(t, 32), NameP2PIdentity: randBytes(t, 68), NameLNDTLSCert: randBytes(t, 3000), "empty": {}}
		for n, v := range vals {
			mustSet(t, src, n, v)
		}
		blob, err := src.Export([]byte("backup pass"), testKDF)
		if err != nil {
			t.Fatal(err)
		}
		dst := bt.open(t)
		mustSet(t, dst, "kept", []byte("kept"))
		mustSet(t, dst, feed, []byte("replaced"))
		if _, err := dst.Import(blob, []byte("wrong pass")); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Import with the wrong passphrase: %v, want ErrWrongPassphrase", err)
		}
		if got := mustGet(t, dst, feed); string(got) != "replaced" {
			t.Fatal("a failed Import changed a secret")
		}
		names, err := dst.Import(blob, []byte("backup pass"))
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != len(vals) {
			t.Errorf("Import returned %q, want %d names", names, len(vals))
		}
		for n, v := range vals {
			if got := mustGet(t, dst, n); !bytes.Equal(got, v) {
				t.Errorf("after Import, Get(%q) = %d bytes, want %d", n, len(got), len(v))
			}
		}
		if got := mustGet(t, dst, "kept"); string(got) != "kept" {
			t.Errorf("Import lost a secret it did not contain")
		}
	})
}

func TestConformanceMemory(t *testing.T) {
	runConformance(t, backendUnderTest{
		name:  "memory",
		heavy: true,
		open: func(t *testing.T) *Store {
			s := NewMemory()
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}

func testPass(p string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(p), nil }
}

func fileUnderTest(dir func(t *testing.T) string) backendUnderTest {
	return backendUnderTest{
		name:  "file",
		heavy: true,
		open: func(t *testing.T) *Store {
			s, err := OpenFile(dir(t)+"/secrets.dvs", testPass("correct horse"), testKDF)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		reopen: func(t *testing.T, s *Store) *Store {
			path := s.b.(*fileBackend).path
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := OpenFile(path, testPass("correct horse"), KDFParams{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

func TestConformanceFile(t *testing.T) {
	runConformance(t, fileUnderTest(func(t *testing.T) string { return t.TempDir() }))
}
