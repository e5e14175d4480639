package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCommandHelp: `CMD -h` (and -help, --help, wherever it stands) is help that was asked for:
// the command's own usage line and its flags on stdout, nothing on stderr, exit 0. Before,
// every command printed "Usage of feed streams:" (or "Usage of live:") without its arguments,
// then "dazaar-vision: flag: help requested", and exited 2.
func TestCommandHelp(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv(EnvPassphrase, "")
	t.Setenv(EnvBackupPassphrase, "")
	global := []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	for _, tc := range []struct {
		args []string
		line string // the usage line, the first of the output
		flag string // a flag the output describes ("" for a command without flags)
	}{
		{[]string{"feed", "create", "-h"}, "usage: dazaar-vision feed create [-mode compat|manifest] [-max-block BYTES] DIR", "-max-block"},
		{[]string{"feed", "append", "--help"}, "usage: dazaar-vision feed append [-sync-point] [-lines] DIR FILE...", "-sync-point"},
		{[]string{"feed", "info", "-help"}, "usage: dazaar-vision feed info [-json] DIR", "-json"},
		{[]string{"feed", "verify", "-h"}, "usage: dazaar-vision feed verify DIR", ""},
		{[]string{"feed", "get", "DIR", "-h"}, "usage: dazaar-vision feed get [-raw] DIR INDEX", "-raw"},
		{[]string{"record", "-h"}, "usage: dazaar-vision record [-preset low|medium|high]", "-test-devices"},
		{[]string{"export", "-h"}, "usage: dazaar-vision export [-from T] [-to T] DIR OUT.webm", "-from"},
		{[]string{"live", "-h"}, "usage: dazaar-vision live ", "-resume string"}, // (before: "-resume streams", from a back-quoted word)
		{[]string{"watch", "-h"}, "usage: dazaar-vision watch [-minutes N | -sats N]", "-no-play"},
		{[]string{"watch", "CARD", "--help"}, "usage: dazaar-vision watch [-minutes N | -sats N]", "-no-play"},
		{[]string{"streams", "-h"}, "usage: dazaar-vision streams", ""},
		{[]string{"card", "inspect", "-h"}, "usage: dazaar-vision card inspect [-json] CARD|FILE|-", "-json"},
		{[]string{"ui", "-h"}, "usage: dazaar-vision ui [-lan] [-listen ADDR] [CARD]", "-lan"},
		{[]string{"selftest", "-h"}, "usage: dazaar-vision selftest [-frames N] [-timeout D]", "-frames"},
		{[]string{"secrets", "where", "-h"}, "usage: dazaar-vision secrets where", ""},
		{[]string{"secrets", "export", "--help"}, "usage: dazaar-vision secrets export FILE", ""},
		{[]string{"secrets", "import", "-h"}, "usage: dazaar-vision secrets import FILE", ""},
	} {
		r := run(t, "", append(global, tc.args...)...)
		first, _, _ := strings.Cut(r.out, "\n")
		if r.code != 0 || r.err != "" || !strings.HasPrefix(first, tc.line) || !strings.Contains(r.out, tc.flag) {
			t.Errorf("%q: code %d (want 0)\nstdout: %s\nstderr: %s", tc.args, r.code, r.out, r.err)
		}
	}
	if _, err := os.Stat("--help"); err == nil {
		t.Error(`secrets export --help wrote a backup named "--help"`)
	}
}

// TestGroupHelp: `card -h`, `feed --help`, `secrets help` list the group's subcommands (their
// lines of the usage text) on stdout and exit 0; before, "unknown card subcommand "-h"".
func TestGroupHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"card", "-h"}, []string{"card inspect [-json] CARD|FILE|-   a card's stream"}},
		{[]string{"card", "help"}, []string{"card inspect"}},
		{[]string{"feed", "--help"}, []string{"feed create [-mode compat|manifest]", "make a feed; its signing key", "feed append", "(- reads stdin; -lines makes each line a block)", "feed info", "feed verify", "feed get [-raw] DIR INDEX"}},
		{[]string{"feed", "help"}, []string{"feed create", "feed get"}},
		{[]string{"secrets", "-h"}, []string{"secrets where ", "secrets export FILE", "secrets import FILE"}},
		{[]string{"secrets", "help"}, []string{"secrets where"}},
	} {
		r := run(t, "", tc.args...)
		ok := r.code == 0 && r.err == "" && strings.HasPrefix(r.out, "usage: dazaar-vision "+tc.args[0]+" ")
		for _, w := range tc.want {
			ok = ok && strings.Contains(r.out, w)
		}
		for _, other := range []string{"  card ", "  feed ", "  secrets ", "  live ", "Desktop app"} {
			if other != "  "+tc.args[0]+" " {
				ok = ok && !strings.Contains(r.out, other)
			}
		}
		if !ok {
			t.Errorf("%q: code %d (want 0)\nstdout: %s\nstderr: %s", tc.args, r.code, r.out, r.err)
		}
	}
}

// TestUsageNamesTheCommand: a usage error names the command as typed ("streams", not "feed
// streams"), and a flag error shows the command's usage line, not Go's "Usage of live:".
func TestUsageNamesTheCommand(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"streams", "x"}, `unexpected "x"; usage: streams` + "\n"},
		{[]string{"live", "x"}, `unexpected "x"; usage: live`},
		{[]string{"record"}, "usage: record ["},
		{[]string{"export", "DIR"}, "usage: export [-from T]"},
		{[]string{"selftest", "x"}, "usage: selftest ["},
		{[]string{"feed", "verify"}, "usage: feed verify DIR"},
		{[]string{"feed", "get", "DIR"}, "usage: feed get [-raw] DIR INDEX"},
		{[]string{"live", "-nope"}, "usage: dazaar-vision live "},
		{[]string{"streams", "-nope"}, "usage: dazaar-vision streams\n"},
	} {
		r := run(t, "", append([]string{"-data-dir", tmp}, tc.args...)...)
		if r.code != 2 || r.out != "" || !strings.Contains(r.err, tc.wantErr) || strings.Contains(r.err, "Usage of") || strings.Contains(r.err, "feed "+tc.args[0]) {
			t.Errorf("%q: code %d (want 2)\nstdout: %s\nstderr: %s", tc.args, r.code, r.out, r.err)
		}
	}
}

// TestSecretsArguments: the secrets subcommands check their arguments before opening the
// store (no passphrase is asked for a mistyped command), refuse extra words and unknown
// flags, and take a file named like a flag after "--". Before, `secrets export --help`
// wrote a backup named "--help" and `secrets where extra` was accepted.
func TestSecretsArguments(t *testing.T) {
	tmp := t.TempDir()
	t.Chdir(tmp)
	sec := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	t.Setenv(EnvPassphrase, "")
	t.Setenv(EnvBackupPassphrase, "")
	if err := os.WriteFile("card.txt", []byte("dazaar1qexample\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		env              bool // the passphrases in the environment
		args             []string
		code             int
		wantOut, wantErr string
	}{
		{"where takes no argument", false, []string{"where", "extra"}, 2, "", `unexpected "extra"; usage: secrets where`},
		{"export needs a file", false, []string{"export"}, 2, "", "usage: secrets export FILE"},
		{"export takes one file", false, []string{"export", "a", "b"}, 2, "", `unexpected "b"`},
		{"import needs a file", false, []string{"import"}, 2, "", "usage: secrets import FILE"},
		{"import, an unknown flag", false, []string{"import", "-x"}, 2, "", "flag provided but not defined: -x"},
		{"export, an unknown flag", true, []string{"export", "-x"}, 2, "", "flag provided but not defined: -x"},
		{"export --help", true, []string{"export", "--help"}, 0, "usage: dazaar-vision secrets export FILE", ""},
		{"export to a file named -x", true, []string{"export", "--", "-x"}, 0, "backed up 0 secrets to -x", ""},
		{"import from a file named -x", true, []string{"import", "--", "-x"}, 0, "restored 0 secrets", ""},
		{"where", true, []string{"where"}, 0, "chosen on the command line", ""},
		// A file that is not a backup is refused before any passphrase is asked (before: both
		// passphrases, then "secret file is damaged or was altered: … (bad magic)").
		{"import a card", false, []string{"import", "card.txt"}, 1, "", "card.txt: not a Dazaar Vision backup"},
		{"import the secrets file", false, []string{"import", "secrets.enc"}, 1, "", "secrets.enc: not a Dazaar Vision backup (it is a secrets file"},
	} {
		if tc.env {
			t.Setenv(EnvPassphrase, "store pass")
			t.Setenv(EnvBackupPassphrase, "backup pass")
		}
		r := run(t, "", append(append(sec, "secrets"), tc.args...)...)
		t.Setenv(EnvPassphrase, "")
		t.Setenv(EnvBackupPassphrase, "")
		if r.code != tc.code || !strings.Contains(r.out, tc.wantOut) || !strings.Contains(r.err, tc.wantErr) ||
			strings.Contains(r.err, "Passphrase") || (tc.code != 0) != (r.out == "") {
			t.Errorf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", tc.name, r.code, tc.code, r.out, r.err)
		}
		if tc.wantErr != "" && strings.Count(r.err, tc.wantErr) > 1 { // (before: a flag error twice)
			t.Errorf("%s: said more than once:\n%s", tc.name, r.err)
		}
	}
	for _, f := range []string{"--help", "a", "b"} {
		if _, err := os.Stat(filepath.Join(tmp, f)); err == nil {
			t.Errorf("a backup named %q was written", f)
		}
	}
}

// lockedBuffer is a bytes.Buffer for Run's output while other goroutines may log; cancel, when
// set, is called once the output holds a card (the stream is live).
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	cancel context.CancelFunc
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(p)
	if l.cancel != nil && strings.Contains(l.b.String(), "dzv1") {
		l.cancel()
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInterrupted: Ctrl-C before a command got going (the run's context cancelled, the error
// wrapping context.Canceled) is one line, "dazaar-vision: interrupted", and exit 130, not
// "cannot go live: cannot start networking: p2p: start: context canceled" and exit 1. A
// command that ends normally on the interrupt (live once live, streams) still exits 0, and
// an error of its own is still reported as one.
func TestInterrupted(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	tmp := t.TempDir()
	global := []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	live := []string{"live", "-video", "test", "-audio", "test", "-preset", "low", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0"}
	for _, tc := range []struct {
		name     string
		args     []string
		whenLive bool // interrupt once the card is printed, not before the start
		code     int
		wantOut  string
		wantErr  string
	}{
		{"live, interrupted while starting", live, false, 130, "", "dazaar-vision: interrupted\n"},
		{"live, interrupted once live", live, true, 0, "stopped after", ""},
		{"streams", []string{"streams"}, false, 0, "My streams:", ""},
		{"an error of its own", []string{"feed", "info", filepath.Join(tmp, "none")}, false, 1, "", "no feed in"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errb lockedBuffer
		if tc.whenLive {
			out.cancel = cancel
		} else {
			cancel()
		}
		code := Run(ctx, append(global, tc.args...), strings.NewReader(""), &out, &errb)
		cancel()
		if code != tc.code || !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errb.String(), tc.wantErr) ||
			strings.Contains(errb.String(), "context canceled") || (code == 130) != strings.Contains(errb.String(), "interrupted") {
			t.Errorf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", tc.name, code, tc.code, out.String(), errb.String())
		}
	}
}
