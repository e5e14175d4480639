package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/feed/feedtest"
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
	// With a duration it stops by itself: it says so, not "interrupt to stop".
	if !strings.Contains(r.err, "; stops after 2s (interrupt to stop sooner)\n") {
		t.Fatalf("record -duration 2s does not say it stops after it:\n%s", r.err)
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
	ffmpegClean(t, out)
	if r := run(t, "", "export", "-from", "1h", dir, filepath.Join(tmp, "none.webm")); r.code != 1 {
		t.Fatalf("export of an empty range: %d %s", r.code, r.err)
	}
	exportEdges(t, tmp, dir, out)
	exportWords(t, tmp, dir)
	exportToStdout(t, tmp, dir)
}

// exportWords: an export that cannot be made says why in words, once: a range past the end
// names the stream's length, and a copy missing blocks (a watched stream the viewer joined
// late or left) says it holds only part of the stream and which block is missing, not
// "export failed: export: reading block 1: feed: block 1: block is not stored here".
func exportWords(t *testing.T, tmp, dir string) {
	w, err := feed.Open(dir, feed.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	n := w.Length()
	var head, tail []uint64 // the first half of the blocks; the header and the second half
	for i := uint64(0); i < n; i++ {
		if i < n/2 {
			head = append(head, i)
		} else {
			tail = append(tail, i)
		}
	}
	tail = append([]uint64{0}, tail...)
	startMissing := sparseFeedCopy(t, w, tail)
	endMissing := sparseFeedCopy(t, w, head)
	w.Close()
	out := filepath.Join(tmp, "words.webm")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"a range past the end", []string{"-from", "10m", dir, out}, []string{"nothing to export from 10m0s on: the stream is ", "s long"}},
		{"a range past the end, both ends", []string{"-from", "1h", "-to", "2h", dir, out}, []string{"nothing to export between 1h0m0s and 2h0m0s: the stream is "}},
		// (Before: "the stream is 0.3s long", from the blocks read before the export stopped.)
		{"a range before the first picture", []string{"-to", "1ms", dir, out}, []string{"nothing to export before 1ms: the stream's first picture is at "}},
		{"a folder as the output", []string{dir, tmp}, []string{"export failed: " + tmp + " is a folder"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, "", append([]string{"export"}, c.args...)...)
			if r.code != 1 || strings.Contains(r.err, "export: ") || strings.Contains(r.err, "not stored here") {
				t.Fatalf("code %d (want 1), stderr:\n%s", r.code, r.err)
			}
			for _, want := range c.want {
				if !strings.Contains(r.err, want) {
					t.Errorf("%q does not say %q", r.err, want)
				}
			}
		})
	}
	if r := run(t, "", "export", "-to", "300ms", endMissing, out); r.code != 0 {
		t.Fatalf("export -to of the part a copy holds: %d %s", r.code, r.err)
	}
	// A copy with gaps exports what it holds, joined (before: refused at its first missing
	// block, with advice to watch the stream again, which a resumed stream's earlier runs
	// cannot follow); a stream's folder, as streams lists them, is taken for its feed's.
	folder := filepath.Join(t.TempDir(), "stream")
	if err := os.MkdirAll(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(endMissing, filepath.Join(folder, "feed")); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "export", folder, out)
	if want := fmt.Sprintf(" to %d, the missing blocks left out", n/2-1); r.code != 0 || !strings.Contains(r.out, "this copy has gaps: it exported the stored blocks ") || !strings.Contains(r.out, want) {
		t.Fatalf("a copy without its end, by its stream's folder: code %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	ffmpegClean(t, out)
	// The 2 s recording has one key frame, at its start: a copy without it has nothing to play.
	r = run(t, "", "export", startMissing, out)
	if r.code != 1 || !strings.Contains(r.err, "nothing to export: no key frame of this stream was received yet") {
		t.Fatalf("a copy without its start: code %d\nstderr: %s", r.code, r.err)
	}
}

// sparseFeedCopy is a reader of w's stream holding only the blocks held, each verified, in a
// directory of its own.
func sparseFeedCopy(t *testing.T, w *feed.Feed, held []uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "copy")
	if err := feedtest.SparseCopy(t, w, dir, held).Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// exportToStdout: "-" as the output is stdout, as with watch -o -: WebM that ffprobe reads
// comes out there, every message goes to stderr, and no file named "-" is written.
func exportToStdout(t *testing.T, tmp, dir string) {
	t.Chdir(tmp)
	r := run(t, "", "export", "-to", "1s", dir, "-")
	if r.code != 0 || !strings.HasPrefix(r.out, "\x1a\x45\xdf\xa3") || !strings.Contains(r.err, "to stdout") {
		t.Fatalf("export DIR -: code %d, %d bytes on stdout starting %q\nstderr: %s", r.code, len(r.out), r.out[:min(len(r.out), 16)], r.err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "-")); !os.IsNotExist(err) {
		t.Fatalf("export DIR - wrote a file named -: %v", err)
	}
	piped := filepath.Join(tmp, "piped.webm")
	if err := os.WriteFile(piped, []byte(r.out), 0o644); err != nil {
		t.Fatal(err)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", piped).CombinedOutput()
	if err != nil || !strings.Contains(string(probe), "vp8") || !strings.Contains(string(probe), "opus") {
		t.Fatalf("ffprobe on what export DIR - wrote: %v\n%s", err, probe)
	}
	ffmpegClean(t, piped)
}

// exportEdges: the progress goes to stderr, which is no terminal here: plain lines, no
// carriage returns, 100 % once; the file has the mode the umask gives (0644 under 022);
// a negative -from, an output in a missing folder and an output that is a folder are
// refused with messages naming what is wrong (never the temporary file), before the
// export runs.
func exportEdges(t *testing.T, tmp, dir, out string) {
	old := syscall.Umask(0o022)
	r := run(t, "", "export", dir, out)
	syscall.Umask(old)
	if r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.err)
	}
	if strings.Contains(r.err, "\r") || strings.Count(r.err, "100%") != 1 {
		t.Fatalf("progress on a non-terminal stderr: %q", r.err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("exported file: %v, mode %v, want 0644 under umask 022", err, fi.Mode().Perm())
	}
	missing := filepath.Join(tmp, "no", "such", "out.webm")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"export", "-from", "-3s", dir, filepath.Join(tmp, "neg.webm")}, []string{"-from", "negative"}},
		{[]string{"export", "-from", "2s", "-to", "1s", dir, filepath.Join(tmp, "back.webm")}, []string{"-to 1s must come after -from 2s"}},
		{[]string{"export", "-from", "0:02", "-to", "0:01", dir, filepath.Join(tmp, "back.webm")}, []string{"-to 1s must come after -from 2s"}}, // the clock form, as watch -from takes it
		{[]string{"export", "-from", "1x", dir, filepath.Join(tmp, "back.webm")}, []string{"a time into the stream is written 1m30s or 1:30"}},
		{[]string{"export", dir, missing}, []string{missing, "does not exist"}},
		{[]string{"export", dir, tmp}, []string{tmp, "is a folder"}},
	} {
		r := run(t, "", c.args...)
		if r.code == 0 {
			t.Fatalf("%v: accepted", c.args)
		}
		for _, w := range c.want {
			if !strings.Contains(r.err, w) {
				t.Errorf("%v: %q does not say %q", c.args, r.err, w)
			}
		}
		if strings.Contains(r.err, ".tmp") || strings.Contains(r.err, "%") {
			t.Errorf("%v: %q names the temporary file or started the export", c.args, r.err)
		}
	}
	for _, name := range []string{"neg.webm", "back.webm"} {
		if _, err := os.Stat(filepath.Join(tmp, name)); !os.IsNotExist(err) {
			t.Errorf("%s was written", name)
		}
	}
}

// TestRecordSources: record's -source and -audio choices reach the devices: the screen
// of a real X server (Xvfb, started here) without sound, sound alone, and nothing at all
// refused.
func TestRecordSources(t *testing.T) {
	t.Setenv(EnvPassphrase, "pw")
	tmp := t.TempDir()
	sec := []string{"-secrets", "file", "-secrets-file", filepath.Join(tmp, "s.enc")}
	if r := run(t, "", append(sec, "record", "-source", "none", "-audio", "none", filepath.Join(tmp, "x"))...); r.code == 0 || !strings.Contains(r.err, "nothing to record") {
		t.Fatalf("record nothing: %d %s", r.code, r.err)
	}
	if r := run(t, "", append(sec, "record", "-source", "window", filepath.Join(tmp, "x"))...); r.code == 0 || !strings.Contains(r.err, "camera, screen or none") {
		t.Fatalf("record -source window: %d %s", r.code, r.err)
	}

	t.Setenv("DISPLAY", xtest.Xvfb(t, 320, 240))
	screen := filepath.Join(tmp, "screen")
	r := run(t, "", append(sec, "record", "-source", "screen", "-audio", "none", "-preset", "low", "-duration", "2s", screen)...)
	if r.code != 0 || !strings.Contains(r.err, "screen") {
		t.Fatalf("record -source screen: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.err, "(320x240 at ") { // the screen's size, not the preset's (before: 640x360)
		t.Errorf("record -source screen names another size: %s", r.err)
	}
	sound := filepath.Join(tmp, "sound")
	if r := run(t, "", append(sec, "record", "-source", "none", "-test-devices", "-duration", "1s", sound)...); r.code != 0 {
		t.Fatalf("record -source none: %d\n%s", r.code, r.err)
	}
	for _, c := range []struct{ dir, want string }{{screen, "vp8,320,240\n"}, {sound, "opus,0,0\n"}} {
		out := filepath.Join(tmp, filepath.Base(c.dir)+".webm")
		r := run(t, "", "export", c.dir, out)
		if r.code != 0 {
			t.Fatalf("export %s: %d %s", c.dir, r.code, r.err)
		}
		if c.dir == sound && !strings.Contains(r.out+r.err, " of sound (from ") {
			t.Errorf("a sound-only export is not said to be sound: %q", r.out+r.err)
		}
		probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", out).CombinedOutput()
		got := strings.ReplaceAll(string(probe), ",,", ",0,0")
		if strings.Count(got, "\n") == 1 && strings.HasPrefix(got, "opus") {
			got = "opus,0,0\n"
		}
		if err != nil || got != c.want {
			t.Fatalf("%s: ffprobe says %q (%v), want %q", c.dir, probe, err, c.want)
		}
		ffmpegClean(t, out)
	}
	// A recording under half a second keeps its sound (before: 0 audio packets, the
	// microphone's first, held window dropped at the stop, and half of what the encoders
	// handed over after it).
	short := filepath.Join(tmp, "short")
	if r := run(t, "", append(sec, "record", "-test-devices", "-duration", "300ms", short)...); r.code != 0 {
		t.Fatalf("record -duration 300ms: %d\n%s", r.code, r.err)
	}
	r = run(t, "", "export", short, short+".webm")
	m := regexp.MustCompile(`(\d+) audio packets`).FindStringSubmatch(r.out + r.err)
	if r.code != 0 || m == nil {
		t.Fatalf("export of a 300 ms recording: %d\n%s%s", r.code, r.out, r.err)
	}
	if n, _ := strconv.Atoi(m[1]); n < 5 {
		t.Errorf("a 300 ms recording exported with %d audio packets: %s", n, r.out+r.err)
	}
	ffmpegClean(t, short+".webm")
}

// ffmpegClean decodes the file with ffmpeg, which must have nothing to say.
func ffmpegClean(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("ffmpeg -xerror on %s: %v\n%s", path, err, out)
	}
}
