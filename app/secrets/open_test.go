package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fakeKeyring is an in-memory keyring for fault injection. It enforces the
// tightest platform limit on an item (Windows: 2560 bytes), so the item
// format is checked to fit everywhere.
type fakeKeyring struct {
	mu      sync.Mutex
	items   map[string]string
	err     error                   // returned by every call when set
	block   chan struct{}           // every call waits for it when set
	setHook func(user string) error // fails a Set when it returns an error
}

const windowsItemLimit = 2560

func newFakeKeyring() *fakeKeyring { return &fakeKeyring{items: map[string]string{}} }

func (f *fakeKeyring) wait() error {
	if f.block != nil {
		<-f.block
	}
	return f.err
}

func (f *fakeKeyring) Set(service, user, password string) error {
	if err := f.wait(); err != nil {
		return err
	}
	if f.setHook != nil {
		if err := f.setHook(user); err != nil {
			return err
		}
	}
	if len(password) > windowsItemLimit {
		return fmt.Errorf("item of %d bytes is over the platform limit", len(password))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[service+"\x00"+user] = password
	return nil
}

func (f *fakeKeyring) Get(service, user string) (string, error) {
	if err := f.wait(); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.items[service+"\x00"+user]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

func (f *fakeKeyring) Delete(service, user string) error {
	if err := f.wait(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := service + "\x00" + user
	if _, ok := f.items[k]; !ok {
		return ErrNotFound
	}
	delete(f.items, k)
	return nil
}

// TestConformanceKeyringFormat runs the suite over the keyring backend's
// item format with platform item limits enforced (the real Secret Service
// runs the same suite in TestKeyring).
func TestConformanceKeyringFormat(t *testing.T) {
	kr := newFakeKeyring()
	n := 0
	runConformance(t, backendUnderTest{
		name:  "keyring-format",
		heavy: true,
		open: func(t *testing.T) *Store {
			n++
			s, err := Open(context.Background(), Options{Service: "svc" + strconv.Itoa(n), Backend: KindKeyring, keyring: kr})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		reopen: func(t *testing.T, s *Store) *Store {
			svc := s.b.(*keyringBackend).service
			s.Close()
			s, err := Open(context.Background(), Options{Service: svc, Backend: KindKeyring, keyring: kr})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

func TestOpenChoosesBackend(t *testing.T) {
	down := errors.New("org.freedesktop.DBus.Error.ServiceUnknown")
	cases := []struct {
		name       string
		backend    Kind
		keyringErr error
		fileExists bool
		keyringHas bool // the keyring already holds a secret of the service
		noFallback bool
		noService  bool
		want       Kind
		wantErr    string
	}{
		{name: "auto uses the keyring", want: KindKeyring},
		{name: "auto keeps an existing file", fileExists: true, want: KindFile},
		{name: "auto keeps a keyring with secrets", keyringHas: true, want: KindKeyring},
		{name: "auto prefers a keyring with secrets to a file", keyringHas: true, fileExists: true, want: KindKeyring},
		{name: "auto uses an existing file when the keyring is down", keyringErr: down, fileExists: true, want: KindFile},
		{name: "auto falls back to a new file", keyringErr: down, want: KindFile},
		{name: "auto with neither", keyringErr: down, noFallback: true, wantErr: "no OS keyring is reachable"},
		{name: "auto without a service name", noService: true, want: KindFile},
		{name: "keyring forced but down", backend: KindKeyring, keyringErr: down, wantErr: "keyring is not available"},
		{name: "keyring forced over an existing file", backend: KindKeyring, fileExists: true, want: KindKeyring},
		{name: "file forced", backend: KindFile, want: KindFile},
		{name: "file forced without a path", backend: KindFile, noFallback: true, wantErr: "no path"},
		{name: "memory", backend: KindMemory, want: KindMemory},
		{name: "unknown backend", backend: Kind("floppy"), wantErr: "unknown secrets backend"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kr := newFakeKeyring()
			if c.keyringHas {
				ks, err := Open(context.Background(), Options{Service: "dazaar-vision", Backend: KindKeyring, keyring: kr})
				if err != nil {
					t.Fatal(err)
				}
				mustSet(t, ks, NameP2PIdentity, []byte("id"))
				ks.Close()
			}
			kr.err = c.keyringErr
			path := filepath.Join(t.TempDir(), "secrets.dvs")
			if c.fileExists {
				createAt(t, path)
			}
			o := Options{Service: "dazaar-vision", FallbackPath: path, Passphrase: testPass("pw"), Backend: c.backend, KDF: testKDF, keyring: kr}
			if c.noFallback {
				o.FallbackPath = ""
			}
			if c.noService {
				o.Service = ""
			}
			s, err := Open(context.Background(), o)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Open error = %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Kind() != c.want {
				t.Fatalf("Open chose %s, want %s", s.Kind(), c.want)
			}
			if s.Description() == "" || s.Reason() == "" {
				t.Errorf("Description %q, Reason %q: the UI needs both", s.Description(), s.Reason())
			}
			if c.keyringErr != nil && c.want == KindFile && !strings.Contains(s.Reason(), down.Error()) {
				t.Errorf("Reason %q does not say why the keyring was not used", s.Reason())
			}
			// The store works.
			mustSet(t, s, "k", []byte("v"))
			if got := mustGet(t, s, "k"); string(got) != "v" {
				t.Errorf("Get = %q", got)
			}
		})
	}
}

func createAt(t *testing.T, path string) {
	t.Helper()
	s, err := OpenFile(path, testPass("pw"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestOpenKeyringTimeout: a keyring that never answers (a prompt nobody
// sees) must not hang Open; the probe goroutine ends when the keyring does.
func TestOpenKeyringTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	kr := newFakeKeyring()
	kr.block = make(chan struct{})
	path := filepath.Join(t.TempDir(), "secrets.dvs")
	start := time.Now()
	s, err := Open(context.Background(), Options{Service: "dv", FallbackPath: path, Passphrase: testPass("pw"), KDF: testKDF, KeyringTimeout: 50 * time.Millisecond, keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Kind() != KindFile || !strings.Contains(s.Reason(), "did not answer") {
		t.Errorf("Open chose %s (%q) with a silent keyring", s.Kind(), s.Reason())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, Options{Service: "dv", FallbackPath: filepath.Join(t.TempDir(), "x"), Passphrase: testPass("pw"), keyring: kr}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
	close(kr.block) // the keyring answers at last: the probe goroutines end
}

func TestKeyringReachableWithoutBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	_, statErr := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus")
	err := keyringReachable()
	if statErr != nil && err == nil {
		t.Error("keyringReachable found a session bus where there is none")
	}
	if statErr == nil && err != nil {
		t.Errorf("keyringReachable missed the user's session bus: %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), "D-Bus") {
		t.Errorf("error %q does not say what is missing", err)
	}
}

// TestNoSecretsInLogs runs every operation, good and bad, with debug
// logging captured, and looks for the values in the log.
func TestNoSecretsInLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secrets := plaintextSecrets(t)
	for _, kind := range []Kind{KindFile, KindKeyring, KindMemory} {
		path := filepath.Join(t.TempDir(), "s.dvs")
		o := Options{Service: "dv", FallbackPath: path, Passphrase: testPass("pw"), Backend: kind, KDF: testKDF, Logger: log, keyring: newFakeKeyring()}
		s, err := Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range secrets {
			mustSet(t, s, "k"+strconv.Itoa(i), v)
			mustGet(t, s, "k"+strconv.Itoa(i))
		}
		s.Set("bad name", secrets[0])
		s.Set("big", append(bytes.Clone(secrets[0]), make([]byte, MaxValueSize)...))
		blob, err := s.Export([]byte("bp"), testKDF)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Import(blob, []byte("wrong")); err != nil {
			log.Info("import failed", "err", err)
		}
		if _, err := s.Import(blob, []byte("bp")); err != nil {
			t.Fatal(err)
		}
		mustList(t, s)
		s.Delete("k0")
		s.Close()
		if kind == KindFile {
			if _, err := Open(context.Background(), Options{FallbackPath: path, Passphrase: testPass("nope"), Backend: KindFile, Logger: log}); err != nil {
				log.Error("open failed", "err", err)
			}
		}
	}
	if buf.Len() == 0 {
		t.Fatal("nothing was logged: the test would not see a leak")
	}
	for i, v := range secrets {
		for _, form := range leakForms(v) {
			if bytes.Contains(buf.Bytes(), form) {
				t.Errorf("secret %d appears in the log", i)
			}
		}
	}
	if !strings.Contains(buf.String(), "secret stored") {
		t.Errorf("expected events missing from the log:\n%s", buf.String())
	}
}

// TestKeyringCrashSafe fails every keyring write in turn while a secret is
// added and while a multi-part secret is overwritten: whatever fails, the
// old value (or the new one) still reads, List names only secrets that
// read, and a retry succeeds.
func TestKeyringCrashSafe(t *testing.T) {
	for _, op := range []string{"add", "overwrite"} {
		t.Run(op, func(t *testing.T) {
			for failAt := 1; ; failAt++ {
				if done := keyringFailOnce(t, op, failAt); done {
					return
				}
			}
		})
	}
}

// keyringFailOnce runs op with the failAt-th keyring write failing; done is
// true when op needed fewer writes than that (every position was covered).
func keyringFailOnce(t *testing.T, op string, failAt int) (done bool) {
	kr := newFakeKeyring()
	s, err := Open(context.Background(), Options{Service: "dv", Backend: KindKeyring, keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Enough names that the index takes several items.
	var names []string
	for i := range 20 {
		n := FeedSeedName(strings.Repeat(string(rune('a'+i)), 64))
		names = append(names, n)
		mustSet(t, s, n, []byte{byte(i)})
	}
	oldCert, newCert := randBytes(t, 3000), randBytes(t, 2500)
	mustSet(t, s, NameLNDTLSCert, oldCert)
	calls := 0
	kr.setHook = func(string) error {
		calls++
		if calls == failAt {
			return errors.New("crash")
		}
		return nil
	}
	if op == "add" {
		err = s.Set("new/secret", randBytes(t, 2000))
	} else {
		err = s.Set(NameLNDTLSCert, newCert)
	}
	kr.setHook = nil
	if err == nil && calls >= failAt {
		t.Fatalf("failAt %d: Set succeeded although a write failed", failAt)
	}
	listed := mustList(t, s)
	for _, n := range listed {
		if _, err := s.Get(n); err != nil {
			t.Fatalf("failAt %d: listed %q does not read: %v", failAt, n, err)
		}
	}
	if len(listed) < len(names)+1 {
		t.Fatalf("failAt %d: List lost names: %d of %d", failAt, len(listed), len(names)+1)
	}
	cert := mustGet(t, s, NameLNDTLSCert)
	switch {
	case bytes.Equal(cert, newCert):
		if op == "overwrite" && err != nil && calls < failAt {
			t.Fatalf("failAt %d: new value visible but Set failed early", failAt)
		}
	case bytes.Equal(cert, oldCert):
		if op == "overwrite" && err == nil {
			t.Fatalf("failAt %d: Set succeeded but the old value reads", failAt)
		}
	default:
		t.Fatalf("failAt %d: the certificate reads as neither the old nor the new value", failAt)
	}
	if err == nil {
		return true
	}
	// A retry succeeds.
	if op == "add" {
		mustSet(t, s, "new/secret", []byte("retry"))
	} else {
		mustSet(t, s, NameLNDTLSCert, newCert)
	}
	return false
}
