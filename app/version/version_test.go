package version

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "devel"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true, "v1.2.3"},
		{"devel, no VCS", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "devel"},
		{"devel, clean tree", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "5d3d2113c0ffee00112233445566778899aabbcc"}, {Key: "vcs.modified", Value: "false"}}}, true, "devel-5d3d2113c0ff"},
		{"devel, edited tree", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "5d3d211"}, {Key: "vcs.modified", Value: "true"}}}, true, "devel-5d3d211+dirty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.ok); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	old := Version
	defer func() { Version = old }()
	Version = "9.8.7"
	if got := String(); got != "9.8.7" {
		t.Fatalf("stamped: got %q", got)
	}
	Version = ""
	if got := String(); !strings.HasPrefix(got, "devel") && !strings.HasPrefix(got, "v") {
		t.Fatalf("unstamped: got %q", got)
	}
}

func TestFromTOML(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"details", "Website = \"x\"\n[Details]\nName = \"A\"\nVersion = \"1.2.3\"\nBuild = 4\n", "1.2.3"},
		{"spaces and comment", "[Details]\n  Version   =   \"0.1.0\"  # the release\n", "0.1.0"},
		{"other section only", "[Release]\nVersion = \"9\"\n", ""},
		{"after another section", "[Release]\nVersion = \"9\"\n[Details]\nVersion = \"2.0.0\"\n", "2.0.0"},
		{"missing", "[Details]\nName = \"A\"\n", ""},
		{"crlf", "[Details]\r\nVersion = \"3.1.4\"\r\n", "3.1.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromTOML(tc.toml); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The repository's own FyneApp.toml names a version (the one place it is written).
func TestRepositoryTOML(t *testing.T) {
	b, err := os.ReadFile("../../FyneApp.toml")
	if err != nil {
		t.Fatal(err)
	}
	v := FromTOML(string(b))
	if v == "" || strings.ContainsAny(v, " \"'") {
		t.Fatalf("FyneApp.toml's [Details] Version is %q", v)
	}
}

// FromTOML never panics, and what it returns is text of its input.
func FuzzFromTOML(f *testing.F) {
	f.Add("[Details]\nVersion = \"0.1.0\"\n")
	f.Add("[Details]\nVersion = \"")
	f.Add("[Details]\nVersion = 1 # x\n")
	f.Fuzz(func(t *testing.T, s string) {
		if v := FromTOML(s); !strings.Contains(s, v) {
			t.Fatalf("%q is not in the input", v)
		}
	})
}
