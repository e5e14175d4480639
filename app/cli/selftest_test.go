package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestSelftest(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string // lines the output must hold, in order
		err  string
	}{
		{"passes", []string{"selftest", "-frames", "4"}, 0,
			[]string{"self-test: ", "ok  VP8: 4 pictures from the test camera (320×240)", "ok  libp2p: 4 blocks", "self-test passed"}, ""},
		{"too few frames", []string{"selftest", "-frames", "1"}, 2, nil, "-frames 1: choose 2 to 300"},
		{"extra argument", []string{"selftest", "now"}, 2, nil, "usage: selftest"},
		{"no time", []string{"selftest", "-timeout", "1ns"}, 1, nil, "self-test failed: network: did not finish within 1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(t.Context(), append([]string{"-data-dir", t.TempDir()}, tc.args...), strings.NewReader(""), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			rest := out.String()
			for _, want := range tc.out {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", want, out.String())
				}
				rest = rest[i+len(want):]
			}
			if !strings.Contains(errb.String(), tc.err) {
				t.Fatalf("stderr lacks %q:\n%s", tc.err, errb.String())
			}
		})
	}
}
