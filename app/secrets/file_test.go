package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// filesUnder lists the regular files below dir.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasSuffix(p, ".lock") {
			files = append(files, p) // (the store's lock file stays, empty: see change)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// plaintextSecrets are random values distinctive enough that finding any
// 12-byte window of them, raw, base64 or hex, means plaintext leaked.
func plaintextSecrets(t *testing.T) [][]byte {
	return [][]byte{randBytes(t, 32), randBytes(t, 68), randBytes(t, 900), randBytes(t, 2000)}
}

// leakForms returns the ways a secret could appear in text or on disk.
func leakForms(v []byte) [][]byte {
	w := v[:16]
	return [][]byte{
		w,
		[]byte(base64.StdEncoding.EncodeToString(v)[:20]),
		[]byte(base64.RawURLEncoding.EncodeToString(v)[:20]),
		[]byte(hex.EncodeToString(w)),
		[]byte(strings.ToUpper(hex.EncodeToString(w))),
	}
}

// findPlaintext returns "file: secret i" for every file below dir that holds
// a secret in any leak form.
func findPlaintext(t *testing.T, dir string, secrets [][]byte) []string {
	t.Helper()
	var hits []string
	for _, f := range filesUnder(t, dir) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range secrets {
			for _, form := range leakForms(v) {
				if bytes.Contains(data, form) {
					hits = append(hits, fmt.Sprintf("%s: secret %d", f, i))
					break
				}
			}
		}
	}
	return hits
}

func assertNoPlaintext(t *testing.T, dir string, secrets [][]byte) {
	t.Helper()
	for _, h := range findPlaintext(t, dir, secrets) {
		t.Errorf("plaintext on disk: %s", h)
	}
}

// TestPlaintextScanFindsLeaks checks the scanner itself: each leak form
// planted in a file is found.
func TestPlaintextScanFindsLeaks(t *testing.T) {
	v := randBytes(t, 64)
	for i, form := range leakForms(v) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "leak"), append(append([]byte("prefix "), form...), " suffix"...), 0o600); err != nil {
			t.Fatal(err)
		}
		if hits := findPlaintext(t, dir, [][]byte{v}); len(hits) != 1 {
			t.Errorf("leak form %d not found: %q", i, hits)
		}
	}
}

func createTestFile(t *testing.T, vals map[string][]byte) (path string, image []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "secrets.dvs")
	s, err := OpenFile(path, testPass("right"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range vals {
		mustSet(t, s, n, v)
	}
	s.Close()
	image, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, image
}

func TestFileModeAndHeader(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "secrets.dvs")
	s, err := OpenFile(path, testPass("pw"), KDFParams{Time: 2, MemoryKiB: 512, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "k", []byte("v"))
	s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
		}
	}
	if files := filesUnder(t, dir); len(files) != 1 {
		t.Errorf("files left in the directory: %q (temporary files must be gone)", files)
	}
	data, _ := os.ReadFile(path)
	e, err := parseEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if e.kdf != (KDFParams{Time: 2, MemoryKiB: 512, Threads: 2}) || e.purpose != purposeStore {
		t.Errorf("header kdf %+v purpose %d", e.kdf, e.purpose)
	}
	// A second file gets a different salt.
	_, other := createTestFile(t, nil)
	e2, _ := parseEnvelope(other)
	if e2.salt == e.salt {
		t.Error("two files share a salt")
	}
}

func TestFileDefaultKDF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.dvs")
	s, err := OpenFile(path, testPass("pw"), KDFParams{})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "k", []byte("v"))
	s.Close()
	data, _ := os.ReadFile(path)
	e, err := parseEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if e.kdf != DefaultKDF {
		t.Errorf("new file's KDF = %+v, want DefaultKDF %+v", e.kdf, DefaultKDF)
	}
	s, err = OpenFile(path, testPass("pw"), KDFParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := mustGet(t, s, "k"); string(got) != "v" {
		t.Errorf("Get = %q", got)
	}
}

func TestFileBadOpen(t *testing.T) {
	vals := map[string][]byte{"feed/aa/seed": randBytes(t, 32), NameLNDTLSCert: randBytes(t, 700)}
	_, good := createTestFile(t, vals)
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 0x01
		return b
	}
	setU32 := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[off:], v)
		return b
	}
	cases := []struct {
		name string
		data []byte
		pass string
		want error
	}{
		{"wrong passphrase", good, "wrong", ErrWrongPassphrase},
		{"empty passphrase", good, "", ErrEmptyPassphrase},
		{"magic", flip(0), "right", ErrCorrupt},
		{"version", flip(6), "right", ErrCorrupt},
		{"purpose", flip(7), "right", ErrCorrupt},
		{"backup purpose", func() []byte { b := bytes.Clone(good); b[7] = purposeBackup; return b }(), "right", ErrCorrupt},
		{"kdf time changed", setU32(8, 2), "right", ErrWrongPassphrase},
		{"kdf time huge", setU32(8, 1<<30), "right", ErrCorrupt},
		{"kdf memory huge", setU32(12, 1<<31), "right", ErrCorrupt},
		{"kdf threads zero", func() []byte { b := bytes.Clone(good); b[16] = 0; return b }(), "right", ErrCorrupt},
		{"salt length", flip(17), "right", ErrCorrupt},
		{"salt", flip(20), "right", ErrWrongPassphrase},
		{"nonce", flip(40), "right", ErrCorrupt},
		{"key check", flip(60), "right", ErrWrongPassphrase},
		{"length field", flip(headerLen - 1), "right", ErrCorrupt},
		{"length huge", setU32(headerLen-4, 1<<31), "right", ErrCorrupt},
		{"ciphertext", flip(headerLen + 3), "right", ErrCorrupt},
		{"tag", flip(len(good) - 1), "right", ErrCorrupt},
		{"truncated to nothing", nil, "right", ErrCorrupt},
		{"truncated in header", good[:headerLen/2], "right", ErrCorrupt},
		{"truncated after header", good[:headerLen], "right", ErrCorrupt},
		{"truncated by one", good[:len(good)-1], "right", ErrCorrupt},
		{"extended by one", append(bytes.Clone(good), 0), "right", ErrCorrupt},
		{"not ours", []byte("-----BEGIN CERTIFICATE-----\nMIIB..."), "right", ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secrets.dvs")
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenFile(path, testPass(c.pass), testKDF)
			if !errors.Is(err, c.want) {
				t.Fatalf("OpenFile: %v, want %v", err, c.want)
			}
			if err.Error() == "" || !strings.Contains(err.Error(), c.want.Error()) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, c.data) {
				t.Error("a failed open changed the file")
			}
			if files := filesUnder(t, filepath.Dir(path)); len(files) != 1 {
				t.Errorf("a failed open left files: %q", files)
			}
		})
	}
}

func TestFileOversized(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.dvs")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	asked := false
	_, err = OpenFile(path, func() ([]byte, error) { asked = true; return []byte("x"), nil }, testKDF)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenFile of an oversized file: %v, want ErrCorrupt", err)
	}
	if asked {
		t.Error("the passphrase was asked for a file that cannot be ours")
	}
}

func TestFilePassphrasePrompt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.dvs")
	cancelled := errors.New("user cancelled")
	if _, err := OpenFile(path, func() ([]byte, error) { return nil, cancelled }, testKDF); !errors.Is(err, cancelled) {
		t.Errorf("prompt error not passed on: %v", err)
	}
	if _, err := OpenFile(path, testPass(""), testKDF); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty passphrase: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a cancelled open created the file")
	}
	// The slice returned by the prompt is wiped after use.
	buf := []byte("passphrase")
	s, err := OpenFile(path, func() ([]byte, error) { return buf, nil }, testKDF)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Errorf("passphrase buffer not wiped: %q", buf)
	}
}

// TestFileFailedWriteKeepsOld injects a failure just before the rename: the
// old file stays as it was and the store keeps its old contents.
func TestFileFailedWriteKeepsOld(t *testing.T) {
	path, before := createTestFile(t, map[string][]byte{"a": []byte("1")})
	s, err := OpenFile(path, testPass("right"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("disk full")
	testHookBeforeRename = func() error { return boom }
	t.Cleanup(func() { testHookBeforeRename = nil })
	if err := s.Set("b", []byte("2")); !errors.Is(err, boom) {
		t.Fatalf("Set with a failing write: %v", err)
	}
	if err := s.Delete("a"); !errors.Is(err, boom) {
		t.Fatalf("Delete with a failing write: %v", err)
	}
	testHookBeforeRename = nil
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed write changed the file")
	}
	if files := filesUnder(t, filepath.Dir(path)); len(files) != 1 {
		t.Errorf("a failed write left files: %q", files)
	}
	if _, err := s.Get("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed Set is visible: %v", err)
	}
	if got := mustGet(t, s, "a"); string(got) != "1" {
		t.Errorf("a failed Delete lost the value: %q", got)
	}
	// And the store still works afterwards.
	mustSet(t, s, "b", []byte("2"))
}

// TestFileChangedOnDisk: two instances on one file (two windows, or a window and the command
// line) do not undo each other's writes: each merges the other's secrets before writing its
// own. A file made anew with another passphrase is not merged.
func TestFileChangedOnDisk(t *testing.T) {
	path, _ := createTestFile(t, nil)
	a, err := OpenFile(path, testPass("right"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenFile(path, testPass("right"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustSet(t, b, "from-b", []byte("b"))
	mustSet(t, a, "from-a", []byte("a"))
	if got := mustGet(t, a, "from-b"); string(got) != "b" {
		t.Errorf("a does not see b's secret after merging: %q", got)
	}
	if err := b.Delete("from-a"); err != nil {
		t.Fatalf("b deleting a's secret: %v", err)
	}
	c, err := OpenFile(path, testPass("right"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := mustList(t, c); len(got) != 1 || got[0] != "from-b" {
		t.Errorf("file holds %q, want [from-b]", got)
	}

	// The file made anew under another passphrase: a's write is refused, the file kept.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	d, err := OpenFile(path, testPass("other"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustSet(t, d, "from-d", []byte("d"))
	if err := a.Set("late", []byte("x")); !errors.Is(err, ErrChangedOnDisk) {
		t.Fatalf("Set over a file made anew: %v, want ErrChangedOnDisk", err)
	}
	if got := mustList(t, d); len(got) != 1 || got[0] != "from-d" {
		t.Errorf("the new file holds %q", got)
	}
}

// Two instances writing at once (two Go live started together) keep every secret.
func TestFileConcurrentInstances(t *testing.T) {
	path, _ := createTestFile(t, nil)
	var stores []*Store
	for range 2 {
		s, err := OpenFile(path, testPass("right"), testKDF)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 20 {
				if err := s.Set(fmt.Sprintf("s%d/%d", i, k), []byte{byte(k)}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c, err := OpenFile(path, testPass("right"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := mustList(t, c); len(got) != 40 {
		t.Fatalf("%d secrets kept of 40", len(got))
	}
}

func TestFileNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets.dvs")
	s, err := OpenFile(path, testPass("pw"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	secrets := plaintextSecrets(t)
	for i, v := range secrets {
		mustSet(t, s, "scan/"+string(rune('a'+i)), v)
	}
	blob, err := s.Export([]byte("backup"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteBackupFile(filepath.Join(dir, "backup.dvb"), blob); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "scan/z", []byte("after backup"))
	s.Close()
	assertNoPlaintext(t, dir, secrets)
	if len(filesUnder(t, dir)) != 2 {
		t.Errorf("files: %q, want the store and the backup", filesUnder(t, dir))
	}
}

func TestFileChangePassphrase(t *testing.T) {
	path, _ := createTestFile(t, map[string][]byte{"k": []byte("v")})
	s, err := OpenFile(path, testPass("right"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	// A failed write keeps the old passphrase working.
	testHookBeforeRename = func() error { return errors.New("disk full") }
	err = s.ChangePassphrase([]byte("new"), testKDF)
	testHookBeforeRename = nil
	if err == nil {
		t.Fatal("ChangePassphrase succeeded with a failing write")
	}
	mustSet(t, s, "k2", []byte("v2")) // still written with the old key
	if _, err := OpenFile(path, testPass("right"), testKDF); err != nil {
		t.Fatalf("old passphrase after a failed change: %v", err)
	}
	if err := s.ChangePassphrase(nil, testKDF); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty new passphrase: %v", err)
	}
	if err := s.ChangePassphrase([]byte("new"), testKDF); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "k3", []byte("v3"))
	s.Close()
	if _, err := OpenFile(path, testPass("right"), testKDF); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("old passphrase after the change: %v", err)
	}
	s, err = OpenFile(path, testPass("new"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := mustList(t, s); len(got) != 3 {
		t.Errorf("after the change List = %q", got)
	}
	if err := NewMemory().ChangePassphrase([]byte("x"), testKDF); !errors.Is(err, ErrNotFile) {
		t.Errorf("ChangePassphrase on memory: %v", err)
	}
}
