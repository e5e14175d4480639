package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets file's passphrase and a backup's are asked for apart: a backup is encrypted with
// its own passphrase (never silently the store's), a weak one is refused before anything is
// written, a wrong one restores nothing, and 'secrets where' says the command line chose the
// backend when it did.
func TestSecretsPassphrases(t *testing.T) {
	tmp := t.TempDir()
	sec := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	fresh := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "fresh.enc")}
	backup := filepath.Join(tmp, "backup.dvb")
	weak := filepath.Join(tmp, "weak.dvb")
	t.Setenv(EnvPassphrase, "")
	t.Setenv(EnvBackupPassphrase, "")
	steps := []struct {
		name             string
		env              map[string]string
		stdin            string
		args             []string
		code             int
		wantOut, wantErr string
	}{
		{"where, passphrase typed", nil, "store pass\n", append(sec, "secrets", "where"), 0,
			"chosen on the command line (-secrets file)", "Passphrase for the secrets file: "},
		{"store passphrase missing", nil, "", append(sec, "secrets", "where"), 1,
			"", "no passphrase for the secrets file (set DAZAAR_VISION_PASSPHRASE or type it)"},
		{"backup passphrase missing", map[string]string{EnvPassphrase: "store pass"}, "", append(sec, "secrets", "export", backup), 1,
			"", "no passphrase for the backup (set DAZAAR_VISION_BACKUP_PASSPHRASE or type it)"},
		{"backup passphrase too short", nil, "store pass\nshort\n", append(sec, "secrets", "export", weak), 1,
			"", "at least 8 characters"},
		{"export, both typed", nil, "store pass\nbackup pass\n", append(sec, "secrets", "export", backup), 0,
			"backed up", "Passphrase for the new backup (not the secrets file's): "},
		{"import with the store's passphrase", nil, "fresh pass\nstore pass\n", append(fresh, "secrets", "import", backup), 1,
			"", "wrong passphrase for this backup: nothing was restored"},
		{"import, both typed", nil, "fresh pass\nbackup pass\n", append(fresh, "secrets", "import", backup), 0,
			"restored", "Passphrase of the backup: "},
		{"import, from the environment", map[string]string{EnvPassphrase: "fresh pass", EnvBackupPassphrase: "backup pass"}, "", append(fresh, "secrets", "import", backup), 0,
			"restored", ""},
		{"export, from the environment", map[string]string{EnvPassphrase: "fresh pass", EnvBackupPassphrase: "backup pass 2"}, "", append(fresh, "secrets", "export", filepath.Join(tmp, "b2.dvb")), 0,
			"backed up", ""},
		// A passphrase over the cap is refused, never cut: a cut one would encrypt a backup
		// that the whole passphrase does not open.
		{"typed backup passphrase too long", map[string]string{EnvPassphrase: "fresh pass"}, strings.Repeat("x", 1025) + "\n", append(fresh, "secrets", "export", weak), 1,
			"", "the passphrase is longer than 1024 bytes"},
		{"backup passphrase too long in the environment", map[string]string{EnvPassphrase: "fresh pass", EnvBackupPassphrase: strings.Repeat("x", 1025)}, "", append(fresh, "secrets", "export", weak), 1,
			"", "$DAZAAR_VISION_BACKUP_PASSPHRASE: the passphrase is longer than 1024 bytes"},
		{"store passphrase too long", nil, strings.Repeat("y", 2000) + "\n", append(sec, "secrets", "where"), 1,
			"", "the passphrase is longer than 1024 bytes"},
		{"backup passphrase of exactly 1024 bytes", map[string]string{EnvPassphrase: "fresh pass"}, strings.Repeat("z", 1024) + "\n", append(fresh, "secrets", "export", filepath.Join(tmp, "b3.dvb")), 0,
			"backed up", ""},
	}
	for _, s := range steps {
		for k, v := range s.env {
			t.Setenv(k, v)
		}
		r := run(t, s.stdin, s.args...)
		for k := range s.env {
			t.Setenv(k, "")
		}
		if r.code != s.code || !strings.Contains(r.out, s.wantOut) || !strings.Contains(r.err, s.wantErr) {
			t.Fatalf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", s.name, r.code, s.code, r.out, r.err)
		}
	}
	if _, err := os.Stat(weak); !os.IsNotExist(err) {
		t.Fatalf("a refused backup was written: %v", err)
	}
}
