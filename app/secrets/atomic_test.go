package secrets

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWriteAtomicErrorsHideTheTemporaryFile: a failed replacement names the secrets file, never
// atomic's temporary file, and leaves nothing behind; a replaced file is 0600 even if the old
// one was not.
func TestWriteAtomicErrorsHideTheTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	isDir := filepath.Join(dir, "secrets.dvs")
	if err := os.MkdirAll(filepath.Join(isDir, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing directory":     filepath.Join(dir, "missing", "secrets.dvs"),
		"target is a directory": isDir,
	} {
		err := writeAtomic(path, []byte("data"), "secrets file")
		if err == nil {
			t.Fatalf("%s: replaced", name)
		}
		if regexp.MustCompile(regexp.QuoteMeta(path) + `[0-9]+`).MatchString(err.Error()) {
			t.Errorf("%s: the error names the temporary file: %v", name, err)
		}
		if !strings.Contains(err.Error(), "secrets file") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	// A backup written to a directory's path says so, as a backup.
	if err := WriteBackupFile(dir, validBackup(t)); err == nil || !strings.Contains(err.Error(), "is a directory: give the backup a file name") {
		t.Errorf("a backup to a directory: %v", err)
	}
	path := filepath.Join(dir, "loose.dvs")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(path, []byte("new"), "secrets file"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode after replacing: %v %v", st.Mode(), err)
	}
}

// validBackup is an export of a store with one secret.
func validBackup(t *testing.T) []byte {
	t.Helper()
	s := NewMemory()
	if err := s.Set("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	b, err := s.Export([]byte("a long enough backup passphrase"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
