package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var serviceSeq atomic.Int64

// testService returns a keyring service name no other test uses, so each
// test sees an empty store in the shared keyring.
func testService(t *testing.T) string {
	return fmt.Sprintf("dazaar-vision-test-%d-%d", time.Now().UnixNano(), serviceSeq.Add(1))
}

func openKeyring(t *testing.T, service string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Service: service, Backend: KindKeyring, KeyringTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("opening the keyring store: %v", err)
	}
	if s.Kind() != KindKeyring {
		t.Fatalf("Kind = %s, want keyring", s.Kind())
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestKeyring runs everything that needs the real Secret Service against one
// private D-Bus session bus and gnome-keyring-daemon.
func TestKeyring(t *testing.T) {
	// Registered first, so it runs last: after the bus and keyring have
	// stopped, no goroutine of ours or of the D-Bus library may remain.
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ss := startSecretService(t, "test keyring password")

	t.Run("Conformance", func(t *testing.T) {
		runConformance(t, backendUnderTest{
			name: "keyring",
			open: func(t *testing.T) *Store { return openKeyring(t, testService(t)) },
			reopen: func(t *testing.T, s *Store) *Store {
				svc := s.b.(*keyringBackend).service
				s.Close()
				return openKeyring(t, svc)
			},
		})
	})

	t.Run("Items", func(t *testing.T) {
		svc := testService(t)
		s := openKeyring(t, svc)
		kr := zalandoKeyring{}
		big := randBytes(t, 5*defaultChunk+10) // 6 items
		mustSet(t, s, "cert", big)
		for i := 1; i < 6; i++ {
			item, err := kr.Get(svc, partUser("cert", 0, i))
			if err != nil {
				t.Fatalf("part %d of a 6-part value: %v", i, err)
			}
			if !strings.HasPrefix(item, keyringPartTag) {
				t.Fatalf("part %d = %.10q…, not a part item", i, item)
			}
		}
		// Shrinking deletes the parts no longer needed.
		mustSet(t, s, "cert", []byte("short"))
		for i := 1; i < 6; i++ {
			if _, err := kr.Get(svc, partUser("cert", 0, i)); !errors.Is(err, ErrNotFound) {
				t.Errorf("part %d still in the keyring after shrinking: %v", i, err)
			}
		}
		// Values are base64 in the keyring, never raw.
		raw := []byte{0xff, 0x00, 'r', 'a', 'w'}
		mustSet(t, s, "raw", raw)
		item, err := kr.Get(svc, "raw")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(item, string(raw)) {
			t.Errorf("keyring item holds the raw bytes: %q", item)
		}
		// Delete removes every part.
		mustSet(t, s, "cert", big)
		if err := s.Delete("cert"); err != nil {
			t.Fatal(err)
		}
		users := []string{"cert"}
		for i := 1; i < 6; i++ {
			users = append(users, partUser("cert", 0, i), partUser("cert", 1, i))
		}
		for _, u := range users {
			if _, err := kr.Get(svc, u); !errors.Is(err, ErrNotFound) {
				t.Errorf("item %q still in the keyring after Delete: %v", u, err)
			}
		}
	})

	t.Run("TornValue", func(t *testing.T) {
		// Parts changed or lost behind the store's back: Get must say so,
		// not return garbage.
		svc := testService(t)
		s := openKeyring(t, svc)
		mustSet(t, s, "cert", randBytes(t, 3*defaultChunk))
		kr := zalandoKeyring{}
		if err := kr.Set(svc, partUser("cert", 0, 1), keyringPartTag+"AAAA"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get("cert"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get of a torn value: %v, want ErrCorrupt", err)
		}
		if err := kr.Delete(svc, partUser("cert", 0, 2)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get("cert"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get with a missing part: %v, want ErrCorrupt", err)
		}
		// Setting it again repairs it.
		v := randBytes(t, 3*defaultChunk)
		mustSet(t, s, "cert", v)
		if got := mustGet(t, s, "cert"); !bytes.Equal(got, v) {
			t.Error("re-set value does not round-trip")
		}
		// An item some other program left under our service is reported,
		// not misread.
		if err := kr.Set(svc, "foreign", "plain text"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get("foreign"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get of a foreign item: %v, want ErrCorrupt", err)
		}
	})

	t.Run("OpenAutoPrefersKeyring", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(context.Background(), Options{
			Service:      testService(t),
			FallbackPath: filepath.Join(dir, "secrets.dvs"),
			Passphrase: func() ([]byte, error) {
				t.Error("passphrase asked although the keyring is reachable")
				return nil, errors.New("no")
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Kind() != KindKeyring || !strings.Contains(s.Description(), "Secret Service") {
			t.Errorf("Open chose %s (%s), want the keyring", s.Kind(), s.Description())
		}
		if files := filesUnder(t, dir); len(files) != 0 {
			t.Errorf("Open with a reachable keyring wrote %q", files)
		}
	})

	t.Run("BackupAcrossBackends", func(t *testing.T) {
		vals := map[string][]byte{
			FeedSeedName(strings.Repeat("0f", 32)): randBytes(t, 32),
			NameP2PIdentity:                        randBytes(t, 68),
			NameLNDMacaroon:                        randBytes(t, 257),
			NameLNDTLSCert:                         randBytes(t, 1900),
		}
		file := func(t *testing.T) *Store {
			return fileUnderTest(func(t *testing.T) string { return t.TempDir() }).open(t)
		}
		kring := func(t *testing.T) *Store { return openKeyring(t, testService(t)) }
		mem := func(t *testing.T) *Store { s := NewMemory(); t.Cleanup(func() { s.Close() }); return s }
		for _, c := range []struct {
			name     string
			from, to func(t *testing.T) *Store
		}{
			{"keyring-to-file", kring, file},
			{"file-to-keyring", file, kring},
			{"memory-to-keyring", mem, kring},
			{"keyring-to-memory", kring, mem},
			{"file-to-memory", file, mem},
		} {
			t.Run(c.name, func(t *testing.T) {
				from, to := c.from(t), c.to(t)
				for n, v := range vals {
					mustSet(t, from, n, v)
				}
				blob, err := from.Export([]byte("backup passphrase"), testKDF)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := to.Import(blob, []byte("backup passphrase")); err != nil {
					t.Fatal(err)
				}
				for n, v := range vals {
					if got := mustGet(t, to, n); !bytes.Equal(got, v) {
						t.Errorf("%s: %q differs after the round trip", c.name, n)
					}
				}
				if got := mustList(t, to); len(got) != len(vals) {
					t.Errorf("%s: List = %q", c.name, got)
				}
			})
		}
	})

	t.Run("NoPlaintextOnDisk", func(t *testing.T) {
		s := openKeyring(t, testService(t))
		secrets := plaintextSecrets(t)
		for i, v := range secrets {
			mustSet(t, s, fmt.Sprintf("scan/%d", i), v)
		}
		// gnome-keyring writes the login keyring when items change.
		time.Sleep(200 * time.Millisecond)
		files := filesUnder(t, ss.home)
		if len(files) == 0 {
			t.Fatalf("gnome-keyring wrote nothing under %s", ss.home)
		}
		assertNoPlaintext(t, ss.home, secrets)
	})
}

// TestOpenKeyringUnreachable covers a machine with no D-Bus session bus: the
// real keyring code path must say so (and not autolaunch a bus).
func TestOpenKeyringUnreachable(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus-here"))
	if _, err := Open(context.Background(), Options{Service: "dv-test", Backend: KindKeyring, KeyringTimeout: 10 * time.Second}); err == nil {
		t.Fatal("Open of the keyring with a dead session bus succeeded")
	}
	dir := t.TempDir()
	s, err := Open(context.Background(), Options{Service: "dv-test", FallbackPath: filepath.Join(dir, "s.dvs"), Passphrase: testPass("p"), KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Kind() != KindFile || !strings.Contains(s.Reason(), "keyring") {
		t.Errorf("Open chose %s, reason %q; want the file because no keyring is reachable", s.Kind(), s.Reason())
	}
}
