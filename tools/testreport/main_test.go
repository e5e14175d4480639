package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	pass := `{"Action":"pass","Package":"p","Test":"TestA"}` + "\n"
	fail := `{"Action":"output","Package":"p","Test":"TestB","Output":"boom\n"}` + "\n" + `{"Action":"fail","Package":"p","Test":"TestB"}` + "\n"
	skip := `{"Action":"skip","Package":"p","Test":"TestC"}` + "\n"
	cases := []struct {
		name   string
		in     string
		noskip bool
		code   int
		want   string
	}{
		{"all pass", pass, true, 0, "1 passed, 0 failed, 0 skipped"},
		{"a failure", pass + fail, false, 1, "boom"},
		{"skip allowed", pass + skip, false, 0, "1 passed, 0 failed, 1 skipped"},
		{"skip forbidden", pass + skip, true, 1, "tests skipped"},
		{"nothing ran", "", false, 1, "no test ran"},
		{"build error line", "# p\nfoo.go:1: undefined\n" + pass, false, 0, "undefined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(strings.NewReader(c.in), &out, c.noskip, false); code != c.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, c.code, out.String())
			}
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out.String())
			}
		})
	}
}
