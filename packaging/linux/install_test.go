// Package linux_test checks the Linux installer the way a person meets it: the .deb that
// `make package-linux` makes, installed with apt into a clean Debian root, opens the app's Home
// window.
package linux_test

import (
	"bufio"
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// The tools the test runs; `make deps-test` installs them (packaging/linux/package.mk adds its
// own to APT_TEST).
var tools = []string{"go", cCompiler(), "dpkg-deb", "dpkg-shlibdeps", "rsvg-convert", "appstreamcli",
	"desktop-file-validate", "xz", "lintian", "mmdebstrap", "unshare", "chroot", "Xvfb", "import"}

// cCompiler is the C compiler cgo uses for the build: $CC's program (the Makefile sets clang),
// else gcc, the go command's default.
func cCompiler() string {
	if f := strings.Fields(os.Getenv("CC")); len(f) > 0 {
		return f[0]
	}
	return "gcc"
}

// TestInstalledDebOpensHome builds the .deb with build.sh (the script behind `make
// package-linux`), checks that lintian finds no error in it, installs it with `apt-get install ./file.deb` into a clean Debian root
// (debroot.sh's cached mmdebstrap root under an overlay, so the cache is never written; apt pulls
// the Depends from the root's package lists), and starts the installed /usr/bin/dazaar-vision
// there under Xvfb. The Home window must be drawn (not a uniform picture) and look like the same
// binary's window started outside the root in the same run (the reference): the installed app
// has everything it needs to draw its window. It closes on SIGINT. It logs the start-up time of
// the installed app (process start → window drawn) for BENCHMARKS.md.
func TestInstalledDebOpensHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it mounts an overlay and chroots into a Debian root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: make deps-test installs it", tool)
		}
	}
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	// The .deb, as make package-linux builds it (not the tar.xz: FORMATS=deb).
	t.Setenv("FORMATS", "deb")
	dist := t.TempDir()
	began := time.Now()
	run(ctx, t, filepath.Join(here, "build.sh"), dist)
	debs, _ := filepath.Glob(filepath.Join(dist, "dazaar-vision_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("build.sh made %d .deb files in %s", len(debs), dist)
	}
	deb := debs[0]
	t.Logf("built %s in %v", filepath.Base(deb), time.Since(began).Round(time.Second))

	// lintian: no errors (warnings are logged).
	if out := run(ctx, t, "lintian", "--fail-on", "error", deb); strings.TrimSpace(out) != "" {
		t.Logf("lintian:\n%s", out)
	}

	// The clean root, made once and cached (debroot.sh).
	began = time.Now()
	lower := strings.TrimSpace(lastLine(run(ctx, t, filepath.Join(here, "debroot.sh"))))
	t.Logf("clean Debian root %s ready in %v", lower, time.Since(began).Round(time.Second))
	archives := filepath.Join(filepath.Dir(lower), "archives")

	display := xvfb(t, 1280, 800)
	appArgs := func(home string) []string {
		return []string{"-data-dir", home + "/data", "-secrets", "file", "-secrets-file", home + "/secrets.enc", "-v"}
	}
	appEnv := func(home string) []string {
		return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "XDG_CONFIG_HOME=" + home + "/.config",
			"DAZAAR_VISION_PASSPHRASE=install test passphrase", "DISPLAY=" + display, "LANG=C.UTF-8", "FYNE_SCALE=1"}
	}

	// The reference: the binary inside the .deb, started outside the root.
	x := t.TempDir()
	run(ctx, t, "dpkg-deb", "-x", deb, x)
	refHome := t.TempDir()
	ref := exec.CommandContext(ctx, filepath.Join(x, "usr/bin/dazaar-vision"), appArgs(refHome)...)
	ref.Env = appEnv(refHome)
	refShot, refStart := window(ctx, t, ref, display, nil)
	t.Logf("reference (the same binary outside the root): window drawn %v after start; %s", refStart.drawn, refStart.logged)

	// The installed app, in the clean root.
	work := t.TempDir()
	began = time.Now()
	inRoot := append([]string{"--mount", "--propagation", "private", filepath.Join(here, "installroot.sh"), lower, deb, archives, work,
		"env", "-i"}, appEnv("/root")...)
	inRoot = append(inRoot, "/usr/bin/dazaar-vision")
	inRoot = append(inRoot, appArgs("/root")...)
	app := exec.CommandContext(ctx, "unshare", inRoot...)
	shot, start := window(ctx, t, app, display, func(out string) {
		t.Logf("installed in %v (%s)", time.Since(began).Round(time.Second), strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", "; ")), " "))
	})
	t.Logf("start-up of the installed app: window drawn %v after process start (first screenshot showing it); %s", start.drawn, start.logged)

	if n := colours(shot); n < 50 {
		t.Fatalf("the installed app's screen has %d colours: nothing was drawn", n)
	}
	b := shot.Bounds()
	diff := differs(shot, refShot)
	total := (b.Dx() / 2) * (b.Dy() / 2)
	t.Logf("installed vs reference: %d of %d sampled pixels differ (%.2f %%)", diff, total, 100*float64(diff)/float64(total))
	if diff*100 > total*2 {
		savePNG(t, refShot, "installed-home-reference.png")
		savePNG(t, shot, "installed-home.png")
		t.Fatalf("the installed app's window differs from the reference in %d of %d sampled pixels", diff, total)
	}
	savePNG(t, shot, "installed-home.png")
}

// startup is what a window's start took.
type startup struct {
	drawn  time.Duration // process start → first screenshot showing a window
	logged string        // the app's own "window started" log line (package init → OnStarted)
}

// window starts cmd, waits for its window to be drawn, lets it settle, takes a screenshot and
// closes it with SIGINT, which must end it cleanly. When installed is not nil, cmd is
// installroot.sh: the clock starts when the install has finished and the app is told to start;
// installed gets what the script printed until then.
func window(ctx context.Context, t *testing.T, cmd *exec.Cmd, display string, installed func(string)) (image.Image, startup) {
	t.Helper()
	var stderr xtest.SyncBuffer
	cmd.Stderr = &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	var stdin, stdout *os.File
	if installed != nil {
		// Pipes of our own (not StdinPipe/StdoutPipe): Wait may run while they are read.
		var childIn, childOut *os.File
		var err error
		if childIn, stdin, err = os.Pipe(); err != nil {
			t.Fatal(err)
		}
		if stdout, childOut, err = os.Pipe(); err != nil {
			t.Fatal(err)
		}
		cmd.Stdin, cmd.Stdout = childIn, childOut
		t.Cleanup(func() { stdin.Close(); stdout.Close() })
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	done := false
	t.Cleanup(func() {
		if !done {
			cmd.Process.Signal(os.Interrupt)
			<-exited
		}
	})
	start := time.Now()
	if installed != nil {
		cmd.Stdin.(*os.File).Close()
		cmd.Stdout.(*os.File).Close()
		// The install's output, up to "installed"; then the script waits for a line.
		var said strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() && sc.Text() != "installed" {
			said.WriteString(sc.Text() + "\n")
		}
		if sc.Err() != nil || ctx.Err() != nil || sc.Text() != "installed" {
			t.Fatalf("the install into the clean root did not finish:\n%s\n%s", said.String(), stderr.String())
		}
		go io.Copy(io.Discard, stdout)
		installed(said.String())
		start = time.Now()
		if _, err := io.WriteString(stdin, "start\n"); err != nil {
			t.Fatalf("the install script ended before starting the app: %v\n%s", err, stderr.String())
		}
	}
	var s startup
	for {
		img := screenshot(t, display)
		if colours(img) > 50 {
			s.drawn = time.Since(start).Round(time.Millisecond)
			break
		}
		select {
		case err := <-exited:
			done = true
			t.Fatalf("the app ended before its window was drawn (%v):\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("the window was never drawn; the app said:\n%s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Let the lists load and the store open.
	time.Sleep(2 * time.Second)
	img := screenshot(t, display)
	cmd.Process.Signal(os.Interrupt)
	var err error
	select {
	case err = <-exited:
	case <-time.After(time.Minute):
		t.Fatalf("the app did not end within a minute of SIGINT:\n%s", stderr.String())
	}
	done = true
	if err != nil {
		t.Fatalf("the app did not end cleanly on SIGINT: %v\n%s", err, stderr.String())
	}
	s.logged = regexp.MustCompile(`"?since process start"?=\S+`).FindString(stderr.String())
	if s.logged == "" {
		t.Fatalf("the app did not log its start-up (\"window started\"):\n%s", stderr.String())
	}
	return img, s
}

// run runs a command and returns its standard output; on failure the test ends with its output.
func run(ctx context.Context, t *testing.T, name string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func xvfb(t *testing.T, w, h int) string { return xtest.Xvfb(t, w, h) }

func screenshot(t *testing.T, display string) image.Image { return xtest.Screenshot(t, display) }

func colours(img image.Image) int { return xtest.Colours(img, img.Bounds()) }

// differs counts the pixels (every other one) whose colour differs by more than 16 of 255 in a
// channel between a and b.
func differs(a, b image.Image) int {
	n := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			if far(ar, br) || far(ag, bg) || far(ab, bb) {
				n++
			}
		}
	}
	return n
}

func far(a, b uint32) bool {
	a, b = a>>8, b>>8
	if a > b {
		return a-b > 16
	}
	return b-a > 16
}

// savePNG writes a screenshot to docs/screenshots with DV_UPDATE_SCREENSHOTS=1, else to a
// temporary directory (named in the log).
func savePNG(t *testing.T, img image.Image, name string) {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "dv-install-screenshots")
	if os.Getenv("DV_UPDATE_SCREENSHOTS") != "" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
