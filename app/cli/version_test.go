package cli

import (
	"testing"

	"github.com/dazaarvision/dazaar-vision/app/version"
)

// `--version`, `-version` and `version` print the stamped version and exit 0.
func TestVersion(t *testing.T) {
	old := version.Version
	version.Version = "1.2.3-test"
	defer func() { version.Version = old }()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"-v", "--version"}} {
		r := run(t, "", args...)
		if r.code != 0 || r.out != "dazaar-vision 1.2.3-test\n" || r.err != "" {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, r.code, r.out, r.err)
		}
	}
}
