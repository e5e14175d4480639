package journal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestFramesOfAllSizes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	var want [][]byte
	err := WriteAtomically(path, func(w io.Writer) error {
		for _, n := range []int{1, 511, 512, 513, 4096, MaxFrame} {
			p := bytes.Repeat([]byte{byte(n)}, n)
			want = append(want, p)
			if err := AppendFrame(w, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := AppendFrame(io.Discard, make([]byte, MaxFrame+1)); err == nil {
		t.Fatal("oversized frame written")
	}
	if err := AppendFrame(io.Discard, nil); err == nil {
		t.Fatal("empty frame written: it reads as the zeros past a file's end")
	}
	f, _ := os.Open(path)
	defer f.Close()
	var got [][]byte
	end, err := ReadFrames(f, func(b []byte) error { got = append(got, append([]byte(nil), b...)); return nil })
	st, _ := f.Stat()
	if err != nil || end != st.Size() || len(got) != len(want) {
		t.Fatalf("read %d frames to %d of %d: %v", len(got), end, st.Size(), err)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

func FuzzReadFrames(f *testing.F) {
	var b bytes.Buffer
	AppendFrame(&b, []byte("hello"))
	AppendFrame(&b, bytes.Repeat([]byte("x"), 700))
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "j")
		os.WriteFile(path, data, 0o600)
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		end, err := ReadFrames(fh, func([]byte) error { return nil })
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error %v", err)
		}
		if end < 0 || end > int64(len(data)) {
			t.Fatalf("end %d of %d", end, len(data))
		}
	})
}

// The end of a journal after a power loss: zeros past the written end (a file lengthened but
// not written) are a torn tail like a half-written frame, and the frames before them stand;
// zeros with data after them are damage.
func TestTornTails(t *testing.T) {
	var good bytes.Buffer
	AppendFrame(&good, []byte(`{"a":1}`))
	AppendFrame(&good, []byte(`{"b":2}`))
	tests := []struct {
		name    string
		tail    []byte
		corrupt bool
	}{
		{"nothing", nil, false},
		{"a half-written header", []byte{0, 0, 0}, false},
		{"zeros", make([]byte, 4096), false},
		{"one zero header", make([]byte, 8), false},
		{"zeros then data", append(make([]byte, 100), 'x'), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			if err := os.WriteFile(path, append(bytes.Clone(good.Bytes()), tt.tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			frames := 0
			end, err := ReadFrames(f, func([]byte) error { frames++; return nil })
			if tt.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("read: %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil || frames != 2 || end != int64(good.Len()) {
				t.Fatalf("read %d frames to %d (want 2 to %d): %v", frames, end, good.Len(), err)
			}
		})
	}
}

// TestWriteAtomicallyErrorsHideTheTemporaryFile: a failed replacement says which file could not
// be replaced and why, never the name of atomic's temporary file, and leaves no file behind.
func TestWriteAtomicallyErrorsHideTheTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	isDir := filepath.Join(dir, "ledger")
	if err := os.MkdirAll(filepath.Join(isDir, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing directory":     filepath.Join(dir, "missing", "ledger"),
		"target is a directory": isDir,
	} {
		err := WriteAtomically(path, func(w io.Writer) error { return AppendFrame(w, []byte("x")) })
		if err == nil {
			t.Fatalf("%s: replaced", name)
		}
		if regexp.MustCompile(regexp.QuoteMeta(path) + `[0-9]+`).MatchString(err.Error()) {
			t.Errorf("%s: the error names the temporary file: %v", name, err)
		}
		if !strings.Contains(err.Error(), filepath.Base(path)) {
			t.Errorf("%s: the error does not say which file: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	// A failing fill writes nothing.
	boom := errors.New("boom")
	if err := WriteAtomically(filepath.Join(dir, "j"), func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("fill error: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "j")); !os.IsNotExist(err) {
		t.Fatalf("a failed fill created the file: %v", err)
	}
}
