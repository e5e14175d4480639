// Package version is the app's version, stamped into the binary at link time from one place:
// FyneApp.toml's [Details] Version (the Makefile and the packaging targets pass it with
// -ldflags "-X github.com/dazaarvision/dazaar-vision/app/version.Version=...").
package version

import (
	"runtime/debug"
	"strings"
)

// Version is set by the linker. A plain `go build` leaves it empty and String falls back to
// what the Go toolchain recorded (module version, or "devel" and the VCS revision).
var Version string

// String is the version to show: the stamped one, or a "devel" one that says where it was
// built from.
func String() string {
	if Version != "" {
		return Version
	}
	return fromBuildInfo(debug.ReadBuildInfo())
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "devel-" + rev + modified
}

// FromTOML returns the [Details] Version of a FyneApp.toml (the packaging targets and the
// tests read the one place the version is written through it).
func FromTOML(toml string) string {
	section := ""
	for _, line := range strings.Split(toml, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "Details" || strings.TrimSpace(k) != "Version" {
			continue
		}
		v = strings.TrimSpace(v)
		if i := strings.Index(v, "#"); i >= 0 && !strings.HasPrefix(v, `"`) {
			v = strings.TrimSpace(v[:i])
		}
		if len(v) >= 2 && v[0] == '"' {
			if j := strings.IndexByte(v[1:], '"'); j >= 0 {
				return v[1 : j+1]
			}
		}
		return v
	}
	return ""
}
