package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type result struct {
	code     int
	out, err string
}

func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestFeedCommands(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	tmp := t.TempDir()
	sec := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	dir := filepath.Join(tmp, "feed")
	file := filepath.Join(tmp, "video.bin")
	os.WriteFile(file, bytes.Repeat([]byte{7}, 5000), 0o600)
	big := filepath.Join(tmp, "big.bin")
	os.WriteFile(big, make([]byte, 2001), 0o600)

	steps := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		wantOut string
		wantErr string
	}{
		{"create", "", append(sec, "feed", "create", "-max-block", "2000", dir), 0, "discovery key:", ""},
		{"create again", "", append(sec, "feed", "create", dir), 1, "", "already exists"},
		{"append lines", "one\ntwo\nthree\n", append(sec, "feed", "append", "-lines", dir, "-"), 0, "length 3", ""},
		{"append too big", "", append(sec, "feed", "append", dir, big), 1, "", "block limit: nothing appended"},
		{"append sync point", "key frame", append(sec, "feed", "append", "-sync-point", dir, "-"), 0, "length 4", ""},
		{"info", "", []string{"feed", "info", dir}, 0, "length:        4", ""},
		{"verify", "", []string{"feed", "verify", dir}, 0, "ok: signature valid for length 4", ""},
		{"get raw", "", []string{"feed", "get", "-raw", dir, "1"}, 0, "two", ""},
		{"get past end", "", []string{"feed", "get", dir, "9"}, 1, "", "does not exist"},
		{"get bad index", "", []string{"feed", "get", dir, "x"}, 2, "", "must be a block number"},
		{"info of nothing", "", []string{"feed", "info", filepath.Join(tmp, "none")}, 1, "", "no feed in"},
		{"append without the key", "x", []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "other.enc"), "feed", "append", dir, "-"}, 1, "", "signing key is not in"},
		{"unknown command", "", []string{"dance"}, 2, "", "unknown command"},
		{"unknown mode", "", append(sec, "feed", "create", "-mode", "v9", filepath.Join(tmp, "f2")), 2, "", "-mode is compat or manifest"},
		{"manifest mode", "", append(sec, "feed", "create", "-mode", "manifest", filepath.Join(tmp, "f3")), 0, "key:", ""},
	}
	for _, s := range steps {
		r := run(t, s.stdin, s.args...)
		if r.code != s.code || !strings.Contains(r.out, s.wantOut) || !strings.Contains(r.err, s.wantErr) {
			t.Fatalf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", s.name, r.code, s.code, r.out, r.err)
		}
	}
	// The proof printed by get verifies: check its shape.
	r := run(t, "", "feed", "get", dir, "3")
	var p struct {
		Value   string
		Upgrade struct {
			Length    uint64
			Signature string
		}
	}
	if err := json.Unmarshal([]byte(r.out), &p); err != nil || p.Upgrade.Length != 4 || len(p.Upgrade.Signature) != 128 {
		t.Fatalf("get output: %v %s", err, r.out)
	}
	// The signing key is not on disk in plaintext: the secrets file does not contain it.
	raw, _ := os.ReadFile(filepath.Join(tmp, "secrets.enc"))
	if bytes.Contains(raw, []byte("feed/")) {
		t.Fatal("secret names in plaintext on disk")
	}
	// Backup and restore into a fresh store, then append with the restored key.
	backup := filepath.Join(tmp, "backup.dvb")
	t.Setenv(EnvBackupPassphrase, "battery staple")
	if r := run(t, "", append(sec, "secrets", "export", backup)...); r.code != 0 {
		t.Fatalf("export: %s", r.err)
	}
	// An earlier backup is not replaced (before: silently overwritten).
	before, _ := os.ReadFile(backup)
	if r := run(t, "", append(sec, "secrets", "export", backup)...); r.code != 1 || !strings.Contains(r.err, "already exists") {
		t.Fatalf("export over a backup: code %d, %s", r.code, r.err)
	}
	if after, _ := os.ReadFile(backup); !bytes.Equal(before, after) {
		t.Fatal("the earlier backup was changed")
	}
	fresh := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "fresh.enc")}
	if r := run(t, "", append(fresh, "secrets", "import", backup)...); r.code != 0 || !strings.Contains(r.out, "restored") {
		t.Fatalf("import: %s %s", r.out, r.err)
	}
	if r := run(t, "after restore", append(fresh, "feed", "append", dir, "-")...); r.code != 0 {
		t.Fatalf("append with restored key: %s", r.err)
	}
	// A wrong passphrase is refused with a clear message and changes nothing.
	t.Setenv(EnvPassphrase, "wrong")
	if r := run(t, "x", append(sec, "feed", "append", dir, "-")...); r.code != 1 || !strings.Contains(r.err, "passphrase") {
		t.Fatalf("wrong passphrase: %d %s", r.code, r.err)
	}
}

// TestParseFlagsAnywhere: a command's flags count wherever they stand (the help shows `watch
// CARD -o - | mpv -`), "-" is an argument, "--" ends the flags, and words beyond a command's
// arguments are refused instead of ignored (before, `watch CARD -o -` played through the
// speakers and wrote nothing to stdout, and `live -name My show` lost "show").
func TestParseFlagsAnywhere(t *testing.T) {
	tests := []struct {
		args     []string
		min, max int
		rest     []string
		out      string
		err      string
	}{
		{args: []string{"CARD", "-o", "-"}, min: 1, max: 1, rest: []string{"CARD"}, out: "-"},
		{args: []string{"-o", "x.webm", "CARD"}, min: 1, max: 1, rest: []string{"CARD"}, out: "x.webm"},
		{args: []string{"-"}, min: 1, max: 1, rest: []string{"-"}},
		{args: []string{"DIR", "a", "-o", "y", "b"}, min: 2, max: -1, rest: []string{"DIR", "a", "b"}, out: "y"},
		{args: []string{"DIR", "--", "-o", "z"}, min: 2, max: -1, rest: []string{"DIR", "-o", "z"}},
		{args: []string{"-name", "My", "show"}, min: 0, max: 0, err: `unexpected "show"`},
		{args: []string{"CARD", "extra"}, min: 1, max: 1, err: `unexpected "extra"`},
		{args: []string{"-o", "x"}, min: 1, max: 1, err: "usage: t"},
		{args: []string{"CARD", "-nope"}, min: 1, max: 1, err: "not defined: -nope"},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		out := fs.String("o", "", "")
		fs.String("name", "", "")
		rest, err := parse(fs, tc.args, tc.min, tc.max, "ARGS")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(rest, tc.rest) || *out != tc.out {
			t.Errorf("%q: %q, -o %q, %v; want %q, -o %q", tc.args, rest, *out, err, tc.rest, tc.out)
		}
	}
}

// Flag values that would be ignored or misread are refused, each saying what it takes, before
// anything is made; messages say a thing once.
func TestFlagValues(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	tmp := t.TempDir()
	global := []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	dir := filepath.Join(tmp, "made")
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		want    string
		notWant string
	}{
		{"record, negative duration", []string{"record", "-test-devices", "-duration", "-3s", dir}, 2, "-duration -3s cannot be negative", ""},
		{"live, negative duration", []string{"live", "-video", "test", "-audio", "test", "-duration", "-3s"}, 2, "-duration -3s cannot be negative", ""},
		{"feed create, negative -max-block", []string{"feed", "create", "-max-block", "-5", dir}, 2, "-max-block is the largest block in bytes, 1 to 1073741824 (default 4194304), not -5", ""},
		{"feed create, -max-block 0", []string{"feed", "create", "-max-block", "0", dir}, 2, "1 to 1073741824", ""},
		{"feed create, -max-block over the limit", []string{"feed", "create", "-max-block", "1073741825", dir}, 2, "1 to 1073741824", ""},
		{"live, unknown -video", []string{"live", "-video", "foo"}, 2, `-video "foo": choose camera, screen, test, scene or none`, ""},
		{"live, unknown -audio", []string{"live", "-video", "test", "-audio", "foo"}, 2, `-audio "foo": choose mic, test or none`, ""},
		{"live, unreadable price", []string{"live", "-price", "abc"}, 2, `-price: cannot read "abc"`, "price: price"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A negative duration used to be taken for none: the command ran until interrupted.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			code := Run(ctx, append(global, tc.args...), strings.NewReader(""), &out, &errb)
			r := result{code, out.String(), errb.String()}
			if r.code != tc.code || !strings.Contains(r.err, tc.want) || tc.notWant != "" && strings.Contains(r.err, tc.notWant) {
				t.Fatalf("code %d (want %d), stderr %q, want it to say %q", r.code, tc.code, r.err, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("%s was made", dir)
			}
		})
	}
}
