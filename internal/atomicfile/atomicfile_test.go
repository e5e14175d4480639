package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		old     string // "" : no file before
		content string
		wantErr string
		is      error
	}{
		{name: "new file", path: filepath.Join(dir, "a"), content: "one"},
		{name: "replaces", path: filepath.Join(dir, "b"), old: "old bytes", content: "new"},
		{name: "missing directory", path: filepath.Join(dir, "no", "such", "c"), content: "x",
			wantErr: filepath.Join(dir, "no", "such", "c") + ": "},
		{name: "target is a directory", path: dir, content: "x", wantErr: "a temporary file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.old != "" {
				if err := os.WriteFile(tc.path, []byte(tc.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(tc.path, strings.NewReader(tc.content), true)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Fatalf("error %v is not %v", err, tc.is)
				}
				// Never the temporary file's own name: the target followed by digits.
				if strings.Contains(err.Error(), filepath.Base(tc.path)+"0") || strings.Contains(err.Error(), filepath.Base(tc.path)+"1") {
					t.Fatalf("error names the temporary file: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(tc.path)
			if err != nil || string(b) != tc.content {
				t.Fatalf("read %q, %v; want %q", b, err, tc.content)
			}
			left, _ := filepath.Glob(tc.path + "*")
			if len(left) != 1 {
				t.Fatalf("temporary files left behind: %v", left)
			}
		})
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing directory: %v", err)
	}
}
