// Package windows holds the Windows packaging (build.sh, installer.nsi, libvpx.sh) and its
// test, which runs the installer and the installed app under wine.
package windows

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

const (
	installDir = `C:\Program Files\Dazaar Vision`
	uninstKey  = `HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\vision.dazaar.app`
)

// TestInstallerUnderWine builds the installer (or takes it from the cache when nothing it is
// built from has changed), installs it silently into a new wine prefix, checks what it put
// where (files, signatures, Start-menu entry, Add/Remove Programs entry), runs the installed
// programs (--version, selftest, the window under Xvfb), uninstalls, and runs stream/feed's
// Windows boot-identity tests, restarting the wineserver (wine's "reboot") between runs.
func TestInstallerUnderWine(t *testing.T) {
	top, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// The test's own set-up: what the build and wine need (nothing when installed already).
	run(t, top, nil, 10*time.Minute, "make", "-s", "deps-windows-test")
	for _, tool := range []string{"wine", "wineserver", "Xvfb", "import", "osslsigncode", "x86_64-w64-mingw32-gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing after make deps-windows-test: %v", tool, err)
		}
	}
	version := fyneVersion(t, top)
	cache := toolsCache(t)
	setup := installer(t, top, cache, version)
	w := newWine(t, cache)

	// Install.
	start := time.Now()
	w.run(t, 5*time.Minute, setup, "/S")
	w.wait(t)
	t.Logf("silent install: %v", time.Since(start).Round(time.Millisecond))
	inst := w.unix(installDir)
	for _, f := range []string{"DazaarVision.exe", "dazaar-vision.exe", "uninstall.exe"} {
		p := filepath.Join(inst, f)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("the installer did not install %s: %v", f, err)
		}
		// Signed with build.sh's test certificate (the uninstaller through !uninstfinalize).
		out, err := exec.Command("osslsigncode", "verify", "-CAfile", filepath.Join(cache, "windows-test-signing", "cert.pem"), "-in", p).CombinedOutput()
		if err != nil {
			t.Fatalf("%s is not signed with the test certificate: %v\n%s", f, err, out)
		}
		t.Logf("installed %s: %d bytes, signature verified", f, fi.Size())
	}
	lnk := filepath.Join(w.prefix, "drive_c", "ProgramData", "Microsoft", "Windows", "Start Menu", "Programs", "Dazaar Vision.lnk")
	if _, err := os.Stat(lnk); err != nil {
		t.Fatalf("no Start-menu entry: %v", err)
	}
	reg := w.output(t, time.Minute, "reg", "query", uninstKey)
	for _, want := range []string{"DisplayName", "Dazaar Vision", "DisplayVersion", version, "UninstallString", "uninstall.exe"} {
		if !strings.Contains(reg, want) {
			t.Fatalf("the Add/Remove Programs entry lacks %q:\n%s", want, reg)
		}
	}

	// The command-line program: --version, then the self-test.
	cli := installDir + `\dazaar-vision.exe`
	versionTook := func() time.Duration {
		start := time.Now()
		got := strings.TrimSpace(w.output(t, time.Minute, cli, "--version"))
		took := time.Since(start)
		if got != "dazaar-vision "+version {
			t.Fatalf("--version printed %q, want %q (FyneApp.toml)", got, "dazaar-vision "+version)
		}
		return took
	}
	cold := versionTook()                     // no wineserver ran: wine's own start-up included
	w.wait(t)                                 // that server ends (3 s after its last program) ...
	w.run(t, time.Minute, "wineserver", "-p") // ... and one that stays starts
	var took []time.Duration
	for i := 0; i < 5; i++ {
		took = append(took, versionTook())
	}
	slices.Sort(took)
	t.Logf("start-up under wine: process start to --version answered: %v with wine starting (wineserver and services), "+
		"median %v (min %v, max %v, 5 runs) with the wineserver running", cold.Round(time.Millisecond),
		took[2].Round(time.Millisecond), took[0].Round(time.Millisecond), took[4].Round(time.Millisecond))
	self := w.output(t, 5*time.Minute, cli, "selftest", "-timeout", "4m")
	t.Logf("selftest:\n%s", self)
	if !strings.Contains(self, "self-test passed") {
		t.Fatalf("the self-test did not pass:\n%s", self)
	}

	// The window: the GUI program under Xvfb, drawn.
	windowUnderWine(t, w)

	// Uninstall: everything goes but what the user stored.
	w.kill(t) // ends the persistent wineserver, so that wait below returns
	w.run(t, 2*time.Minute, installDir+`\uninstall.exe`, "/S")
	w.wait(t) // the uninstaller runs from a copy in %TEMP% and returns at once
	for _, f := range []string{"DazaarVision.exe", "dazaar-vision.exe", "uninstall.exe"} {
		if _, err := os.Stat(filepath.Join(inst, f)); !os.IsNotExist(err) {
			t.Fatalf("%s is still there after uninstalling (%v)", f, err)
		}
	}
	if _, err := os.Stat(lnk); !os.IsNotExist(err) {
		t.Fatalf("the Start-menu entry is still there after uninstalling (%v)", err)
	}
	if out, _, err := runWithTimeout(w.cmd(context.Background(), "reg", "query", uninstKey), time.Minute); err == nil {
		t.Fatalf("the Add/Remove Programs entry is still there after uninstalling:\n%s", out)
	}

	bootIDUnderWine(t, top, w)
}

// windowUnderWine starts DazaarVision.exe on a new Xvfb display and waits for the Home window
// to be drawn, reporting the time from process start.
func windowUnderWine(t *testing.T, w *wine) {
	display := xvfb(t, 1280, 800)
	home := t.TempDir()
	// A new wineserver, so that wine's desktop process starts on this display: the figure
	// includes wine's start-up, as when a person opens the app.
	w.kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := w.cmd(ctx, installDir+`\DazaarVision.exe`, "-v", "-data-dir", winPath(filepath.Join(home, "data")),
		"-secrets", "file", "-secrets-file", winPath(filepath.Join(home, "secrets.enc")))
	cmd.Env = append(cmd.Env, "DISPLAY="+display, "DAZAAR_VISION_PASSPHRASE=wine test passphrase", "FYNE_SCALE=1")
	logf, err := os.Create(filepath.Join(home, "stderr.txt")) // a file: see runWithTimeout
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	stderr := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		w.kill(t)
		<-exited
	}()
	for {
		img := screenshot(t, display)
		if colours(img) > 50 {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("DazaarVision.exe exited (%v) before drawing its window; it said:\n%s", err, stderr())
		case <-ctx.Done():
			t.Fatalf("the window was never drawn under wine; the app said:\n%s", stderr())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("start-up under wine: process start to window drawn: %v (including screenshot time)", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // the lists load
	img := screenshot(t, display)
	if n := colours(img); n < 50 {
		t.Fatalf("the window under wine has %d colours: nothing was drawn", n)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err == nil {
		p := filepath.Join(os.TempDir(), "dv-wine-home.png")
		if os.WriteFile(p, buf.Bytes(), 0o644) == nil {
			t.Logf("screenshot: %s", p)
		}
	}
	if m := regexp.MustCompile(`window started.*`).FindString(stderr()); m != "" {
		t.Logf("the app's log: %s", m)
	}
}

// bootIDUnderWine runs stream/feed's Windows tests, cross-compiled, under wine: twice on one
// wineserver (one boot: the same identity), then after restarting it (a new boot: another).
func bootIDUnderWine(t *testing.T, top string, w *wine) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "feed.test.exe")
	build := exec.Command("go", "test", "-c", "-o", exe, "./stream/feed")
	build.Dir = top
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cross-compiling stream/feed's tests: %v\n%s", err, out)
	}
	w.kill(t)
	idOf := func(name string) string {
		out := filepath.Join(dir, name)
		cmd := w.cmd(context.Background(), winPath(exe), "-test.run", "Windows", "-test.v", "-test.count", "1")
		cmd.Env = append(cmd.Env, "DV_BOOTID_OUT="+winPath(out))
		cmd.Dir = dir
		stdout, stderr, err := runWithTimeout(cmd, 2*time.Minute)
		b := append(stdout, stderr...)
		if err != nil || !strings.Contains(string(b), "--- PASS: TestBootIDWindows") || !strings.Contains(string(b), "--- PASS: TestUncleanExitSameBootWindows") {
			t.Fatalf("stream/feed's Windows tests under wine: %v\n%s", err, b)
		}
		id, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(id)
	}
	// One boot: a persistent wineserver for both runs.
	w.run(t, time.Minute, "wineserver", "-p")
	a, b := idOf("a"), idOf("b")
	if a != b {
		t.Fatalf("two processes on one boot got two boot identities: %q and %q", a, b)
	}
	w.kill(t)
	c := idOf("c")
	w.kill(t)
	if c == a {
		t.Fatalf("the boot identity %q did not change when the wineserver restarted", a)
	}
	t.Logf("boot identity under wine: %s twice on one wineserver, %s after a restart", a, c)
}

// wine is one wine prefix, made for the test.
type wine struct {
	prefix string
	env    []string
}

// newWine makes a wine prefix (a copy of a cached, booted one) with the ProcessPrng stand-in
// that Go programs need under wine 8.
func newWine(t *testing.T, cache string) *wine {
	ver, err := exec.Command("wine", "--version").Output()
	if err != nil {
		t.Fatalf("wine --version: %v", err)
	}
	home := t.TempDir()
	w := &wine{prefix: filepath.Join(home, "prefix")}
	w.env = append(os.Environ(), "HOME="+home, "WINEPREFIX="+w.prefix, "WINEDEBUG=-all",
		"WINEDLLOVERRIDES=mscoree,mshtml=", "WINEARCH=win64", "DISPLAY=", "WAYLAND_DISPLAY=", "LANG=en_US.UTF-8")
	t.Cleanup(func() { w.kill(t) })

	tmpl := filepath.Join(cache, "wineprefix-"+strings.TrimSpace(string(ver)))
	if _, err := os.Stat(filepath.Join(tmpl, ".complete")); err != nil {
		start := time.Now()
		os.RemoveAll(tmpl)
		tw := &wine{prefix: tmpl + ".tmp", env: append(slices.Clone(w.env), "WINEPREFIX="+tmpl+".tmp")}
		os.RemoveAll(tw.prefix)
		tw.run(t, 5*time.Minute, "wineboot", "--init")
		tw.wait(t)
		if err := os.WriteFile(filepath.Join(tw.prefix, ".complete"), ver, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tw.prefix, tmpl); err != nil {
			t.Fatal(err)
		}
		t.Logf("made the wine prefix template %s in %v", tmpl, time.Since(start).Round(time.Millisecond))
	}
	// A copy but for system32 (630 MB of wine's DLLs, only read), whose files are links to the
	// template's: 2 s instead of 17.
	if err := os.MkdirAll(w.prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	copyPrefix := exec.Command("sh", "-c", `tar -C "$1" --exclude=./drive_c/windows/system32 -cf - . | tar -C "$2" -xf - &&
		cp -as "$1/drive_c/windows/system32" "$2/drive_c/windows/system32"`, "sh", tmpl, w.prefix)
	if out, err := copyPrefix.CombinedOutput(); err != nil {
		t.Fatalf("copying the wine prefix: %v\n%s", err, out)
	}
	shim := filepath.Join(w.prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	os.Remove(shim) // a link into the template, if wine ever ships one
	if out, err := exec.Command("x86_64-w64-mingw32-gcc", "-O2", "-shared", "-o", shim, "wine/bcryptprimitives.c", "-ladvapi32").CombinedOutput(); err != nil {
		t.Fatalf("building the ProcessPrng stand-in: %v\n%s", err, out)
	}
	return w
}

func (w *wine) cmd(ctx context.Context, args ...string) *exec.Cmd {
	name, args := "wine", args
	if args[0] == "wineserver" || args[0] == "wineboot" {
		name, args = args[0], args[1:]
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = slices.Clone(w.env)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs a program under wine (or wineserver, wineboot) and fails the test if it fails.
// Its output is not kept: a wineserver it starts lives on and would hold a pipe open.
func (w *wine) run(t *testing.T, timeout time.Duration, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := w.cmd(ctx, args...).Run(); err != nil {
		t.Fatalf("wine %s: %v", strings.Join(args, " "), err)
	}
}

// output runs a program under wine and returns its standard output.
func (w *wine) output(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, stderr, err := runWithTimeout(w.cmd(context.Background(), args...), timeout)
	if err != nil {
		t.Fatalf("wine %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// wait waits until every program in the prefix has ended and the wineserver with them.
func (w *wine) wait(t *testing.T) {
	t.Helper()
	w.run(t, 3*time.Minute, "wineserver", "-w")
}

// kill ends every program in the prefix and its wineserver (wine's "shut down").
func (w *wine) kill(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.cmd(ctx, "wineserver", "-k").Run() // fails when no server runs: nothing to end
	w.run(t, time.Minute, "wineserver", "-w")
}

// unix turns C:\path into the prefix's file.
func (w *wine) unix(p string) string {
	rest, ok := strings.CutPrefix(p, `C:\`)
	if !ok {
		panic("not a C: path: " + p)
	}
	return filepath.Join(append([]string{w.prefix, "drive_c"}, strings.Split(rest, `\`)...)...)
}

// winPath names a file of this machine as wine's programs see it (Z: is /).
func winPath(p string) string { return "Z:" + strings.ReplaceAll(p, "/", `\`) }

// runWithTimeout runs cmd (a copy, with a deadline) and returns what it wrote to stdout and
// stderr. Both go to files, not pipes: a wineserver that wine starts on the way inherits them
// and lives on, and a pipe would stay open until it ends.
func runWithTimeout(cmd *exec.Cmd, timeout time.Duration) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env, c.Dir, c.WaitDelay = cmd.Env, cmd.Dir, 10*time.Second
	outF, err := os.CreateTemp("", "dv-wine-out-")
	if err != nil {
		return nil, nil, err
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp("", "dv-wine-err-")
	if err != nil {
		return nil, nil, err
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	c.Stdout, c.Stderr = outF, errF
	err = c.Run()
	stdout, _ = os.ReadFile(outF.Name())
	stderr, _ = os.ReadFile(errF.Name())
	return stdout, stderr, err
}

// installer returns the installer for the tree as it is: from the cache when everything it is
// built from (the build's Go files, go.mod, go.sum, FyneApp.toml, assets, packaging/windows,
// the Go and wine versions) is unchanged, otherwise built by build.sh. Reading those files
// here also tells `go test`'s result cache when to run this test again.
func installer(t *testing.T, top, cache, version string) string {
	if p := os.Getenv("DV_WINDOWS_INSTALLER"); p != "" {
		// An installer built beforehand (by make package-windows in CI, say).
		t.Logf("installer from DV_WINDOWS_INSTALLER: %s", p)
		return checkedInstaller(t, p)
	}
	key := buildKey(t, top)
	dir := filepath.Join(cache, "windows-installer", key)
	name := "DazaarVision-" + version + "-windows-amd64-setup.exe"
	setup := filepath.Join(dir, name)
	if _, err := os.Stat(setup); err == nil {
		t.Logf("installer from the cache (%s)", dir)
	} else {
		os.RemoveAll(filepath.Join(cache, "windows-installer")) // keep one
		start := time.Now()
		tmp := dir + ".tmp"
		out := run(t, top, []string{"DV_SIGN_PFX=", "DV_SIGN_PASS="}, 30*time.Minute, "packaging/windows/build.sh", tmp)
		if err := os.Rename(tmp, dir); err != nil {
			t.Fatal(err)
		}
		t.Logf("built the installer in %v:\n%s", time.Since(start).Round(time.Second), out)
	}
	return checkedInstaller(t, setup)
}

// checkedInstaller checks the installer's .sha256 and returns its name as wine sees it.
func checkedInstaller(t *testing.T, setup string) string {
	name := filepath.Base(setup)
	fi, err := os.Stat(setup)
	if err != nil {
		t.Fatalf("no installer: %v", err)
	}
	sum, err := os.ReadFile(setup + ".sha256")
	if err != nil {
		t.Fatalf("no checksum beside the installer: %v", err)
	}
	b, err := os.ReadFile(setup)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	if want := hex.EncodeToString(h[:]) + "  " + name + "\n"; string(sum) != want {
		t.Fatalf("%s.sha256 says %q, want %q", name, sum, want)
	}
	t.Logf("installer %s: %d bytes", name, fi.Size())
	return winPath(setup)
}

// buildKey hashes what the Windows build reads.
func buildKey(t *testing.T, top string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", runtime.Version())
	var files []string
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, p)
		if d.IsDir() {
			switch {
			case rel == ".":
				return nil
			case strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "testdata" ||
				d.Name() == "node_modules" || rel == "dist" || rel == "docs":
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go"),
			rel == "go.mod", rel == "go.sum", rel == "FyneApp.toml",
			strings.HasPrefix(rel, "assets/"),
			strings.HasPrefix(rel, "packaging/windows/") && !strings.HasSuffix(p, "_test.go"):
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(top, f))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// fyneVersion is FyneApp.toml's [Details] Version, the one place the version is written.
func fyneVersion(t *testing.T, top string) string {
	b, err := os.ReadFile(filepath.Join(top, "FyneApp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?ms)^\[Details\].*?^Version *= *"([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("FyneApp.toml has no [Details] Version")
	}
	return string(m[1])
}

func toolsCache(t *testing.T) string {
	if c := os.Getenv("DV_TOOLS_CACHE"); c != "" {
		return c
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(home, ".cache", "dazaar-vision", "tools") // the Makefile's default
}

// run runs a command in dir and fails the test if it fails; it returns the output.
func run(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func xvfb(t *testing.T, w, h int) string { return xtest.Xvfb(t, w, h) }

func screenshot(t *testing.T, display string) image.Image { return xtest.Screenshot(t, display) }

func colours(img image.Image) int { return xtest.Colours(img, img.Bounds()) }
