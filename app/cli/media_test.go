package cli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordAndExport goes from the test camera and microphone through VP8 and
// Opus into a signed feed, verifies the feed, and exports it to a WebM file
// that ffprobe reads back with both tracks.
func TestRecordAndExport(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal("ffprobe is needed (Debian package ffmpeg; make test installs it)")
	}
	t.Setenv(EnvPassphrase, "pw")
	tmp := t.TempDir()
	sec := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "s.enc")}
	dir := filepath.Join(tmp, "live")
	r := run(t, "", append(sec, "record", "-test-devices", "-preset", "low", "-duration", "2s", dir)...)
	if r.code != 0 || !strings.Contains(r.out, "recorded") {
		t.Fatalf("record: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if r := run(t, "", "feed", "verify", dir); r.code != 0 {
		t.Fatalf("verify: %s", r.err)
	}
	if r := run(t, "", append(sec, "record", "-test-devices", "-duration", "1s", dir)...); r.code != 1 || !strings.Contains(r.err, "already holds a stream") {
		t.Fatalf("recording over a stream: %d %s", r.code, r.err)
	}
	out := filepath.Join(tmp, "out.webm")
	if r := run(t, "", "export", dir, out); r.code != 0 || !strings.Contains(r.out, "video frames") {
		t.Fatalf("export: %d\n%s\n%s", r.code, r.out, r.err)
	}
	probe, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", out).CombinedOutput()
	if err != nil || !strings.Contains(string(probe), "vp8") || !strings.Contains(string(probe), "opus") {
		t.Fatalf("ffprobe: %v\n%s", err, probe)
	}
	if r := run(t, "", "export", "-from", "1h", dir, filepath.Join(tmp, "none.webm")); r.code != 1 {
		t.Fatalf("export of an empty range: %d %s", r.code, r.err)
	}
}
