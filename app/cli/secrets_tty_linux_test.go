package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// openPTY opens a pseudo-terminal: the test types on master, Run reads slave as its stdin.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// runTTY runs the command line with a terminal as stdin and types each answer once its prompt
// is shown and the terminal's echo is off (so a test never types into an echoing terminal by
// racing the prompt). It returns the result and what the terminal echoed back.
func runTTY(t *testing.T, answers []string, args ...string) (result, string) {
	t.Helper()
	master, slave := openPTY(t)
	echoed := &xtest.SyncBuffer{}
	readDone := make(chan struct{})
	go func() { // owned here: ends when the pty is closed after Run returns
		defer close(readDone)
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			echoed.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	out, errb := &xtest.SyncBuffer{}, &xtest.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- Run(context.Background(), args, slave, out, errb) }()
	deadline := time.Now().Add(time.Minute) // a hang, not a timing figure
	for i, a := range answers {
		for strings.Count(errb.String(), ": ") < i+1 || echoOn(t, slave) {
			select {
			case code := <-done:
				t.Fatalf("ended (code %d) before answer %d; stderr: %s", code, i+1, errb.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("prompt %d never came with echo off; stderr: %q", i+1, errb.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		if _, err := master.Write([]byte(a + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	code := <-done
	// With echo back on, a marker echoes after everything typed before it.
	master.Write([]byte("END-OF-TEST\n"))
	for !strings.Contains(echoed.String(), "END-OF-TEST") {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal's echo was left off: %q", echoed.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	slave.Close()
	master.Close()
	<-readDone
	return result{code, out.String(), errb.String()}, echoed.String()
}

func echoOn(t *testing.T, f *os.File) bool {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// Passphrases typed at a terminal are not echoed, and a new backup's passphrase is typed twice:
// two different ones write nothing.
func TestSecretsPassphrasesTypedHidden(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv(EnvPassphrase, "")
	t.Setenv(EnvBackupPassphrase, "")
	sec := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	backup := filepath.Join(tmp, "backup.dvb")

	r, echoed := runTTY(t, []string{"store secret", "backup secret", "backup secrets"}, append(sec, "secrets", "export", backup)...)
	if r.code != 1 || !strings.Contains(r.err, "the two passphrases differ: nothing was written") {
		t.Fatalf("different passphrases: code %d\nstderr: %s", r.code, r.err)
	}
	if _, err := os.Stat(backup); !os.IsNotExist(err) {
		t.Fatalf("a backup was written with mistyped passphrases: %v", err)
	}
	if strings.Contains(echoed, "secret") {
		t.Fatalf("the terminal echoed a passphrase: %q", echoed)
	}

	r, echoed = runTTY(t, []string{"store secret", "backup secret", "backup secret"}, append(sec, "secrets", "export", backup)...)
	if r.code != 0 || !strings.Contains(r.out, "backed up") || !strings.Contains(r.err, "The same passphrase again: ") {
		t.Fatalf("export: code %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	if strings.Contains(echoed, "secret") {
		t.Fatalf("the terminal echoed a passphrase: %q", echoed)
	}
	fresh := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "fresh.enc")}
	r, _ = runTTY(t, []string{"fresh secret", "backup secret"}, append(fresh, "secrets", "import", backup)...)
	if r.code != 0 || !strings.Contains(r.out, "restored") {
		t.Fatalf("import: code %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
}

// A terminal is a terminal; /dev/null is a character device that takes 'watch -o -' video.
func TestIsTerminal(t *testing.T) {
	_, slave := openPTY(t)
	if !isTerminal(slave) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Error("/dev/null is taken for a terminal: 'watch -o - > /dev/null' would be refused")
	}
}
