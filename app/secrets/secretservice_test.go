package secrets

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"

	"github.com/dazaarvision/dazaar-vision/internal/xtest"
)

// secretService is a private D-Bus session bus with gnome-keyring-daemon on
// it, in temporary HOME and XDG directories, for tests against a real
// Secret Service.
type secretService struct {
	addr    string
	home    string // HOME and XDG directories live under here
	dataDir string // gnome-keyring writes its keyrings here
}

// A bus configuration without service directories, so nothing on the test
// bus is auto-started: the only Secret Service is the one this test starts.
const testBusConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// startSecretService starts the bus and the keyring, points
// DBUS_SESSION_BUS_ADDRESS at the bus for the test, and stops both when the
// test ends. It fails the test (never skips) when they cannot start.
func startSecretService(t *testing.T, password string) *secretService {
	t.Helper()
	for _, bin := range []string{"dbus-daemon", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the keyring tests need %s: install the Debian packages dbus and gnome-keyring (make deps-test): %v", bin, err)
		}
	}
	// A short directory for the bus socket (unix socket paths are limited to
	// 108 bytes; t.TempDir's names can be long).
	sockDir, err := os.MkdirTemp("", "dvbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	home := t.TempDir()
	ss := &secretService{home: home, dataDir: filepath.Join(home, "data")}
	runtimeDir := filepath.Join(home, "run")
	for _, d := range []string{runtimeDir, ss.dataDir, filepath.Join(home, "config"), filepath.Join(home, "cache")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(home, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, testBusConfig, sockDir), 0o600); err != nil {
		t.Fatal(err)
	}

	// Runs after the bus and the keyring have stopped (cleanups run last
	// first): wait for the process-wide connection to notice, while the
	// variable still names the dead bus (an empty one would make the D-Bus
	// library autolaunch a bus), then restore the variable.
	prevAddr, hadAddr := os.LookupEnv("DBUS_SESSION_BUS_ADDRESS")
	envSet := false
	t.Cleanup(func() {
		if envSet {
			waitSessionBusGone()
		}
		if hadAddr {
			os.Setenv("DBUS_SESSION_BUS_ADDRESS", prevAddr)
		} else {
			os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
		}
	})

	// The bus: --nofork keeps it our child, so we can stop it.
	busLog := &xtest.SyncBuffer{}
	bus := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	bus.Stderr = busLog
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatalf("starting dbus-daemon: %v", err)
	}
	busDone := make(chan struct{})
	addrc := make(chan string, 1)
	go func() {
		defer close(busDone)
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		addrc <- strings.TrimSpace(line)
		r.WriteTo(busLog) // drain until the bus exits
		bus.Wait()
	}()
	t.Cleanup(func() {
		bus.Process.Signal(syscall.SIGTERM)
		select {
		case <-busDone:
		case <-time.After(10 * time.Second):
			bus.Process.Kill()
			<-busDone
		}
	})
	select {
	case addr := <-addrc:
		if addr == "" {
			t.Fatalf("dbus-daemon did not start; its output: %s", busLog)
		}
		ss.addr = addr
	case <-time.After(20 * time.Second):
		t.Fatalf("dbus-daemon printed no address within 20 s; its output: %s", busLog)
	}

	// The keyring, unlocked with the password on stdin. --foreground keeps
	// it our child.
	krLog := &xtest.SyncBuffer{}
	kr := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	kr.Env = append(os.Environ(),
		"DBUS_SESSION_BUS_ADDRESS="+ss.addr,
		"HOME="+home,
		"XDG_RUNTIME_DIR="+runtimeDir,
		"XDG_DATA_HOME="+ss.dataDir,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"DISPLAY=", "WAYLAND_DISPLAY=",
	)
	kr.Stdin = strings.NewReader(password)
	kr.Stdout, kr.Stderr = krLog, krLog
	if err := kr.Start(); err != nil {
		t.Fatalf("starting gnome-keyring-daemon: %v", err)
	}
	krDone := make(chan struct{})
	go func() { kr.Wait(); close(krDone) }()
	t.Cleanup(func() {
		kr.Process.Signal(syscall.SIGTERM)
		select {
		case <-krDone:
		case <-time.After(10 * time.Second):
			kr.Process.Kill()
			<-krDone
		}
	})

	// Wait until the keyring owns org.freedesktop.secrets on our bus.
	conn, err := dbus.Connect(ss.addr)
	if err != nil {
		t.Fatalf("connecting to the test bus %s: %v", ss.addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var owned bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.secrets").Store(&owned)
		if err == nil && owned {
			break
		}
		select {
		case <-krDone:
			t.Fatalf("gnome-keyring-daemon exited before serving org.freedesktop.secrets; its output: %s", krLog)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gnome-keyring-daemon did not serve org.freedesktop.secrets within 20 s (last error %v); its output: %s", err, krLog)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The keyring library uses the process-wide session bus connection, which
	// reconnects once the previous test's bus is gone.
	os.Setenv("DBUS_SESSION_BUS_ADDRESS", ss.addr)
	envSet = true
	return ss
}

// waitSessionBusGone waits (up to 10 s) until the process-wide session bus
// connection has noticed that its bus stopped, so its goroutines have ended
// and the next test's connection goes to the next bus.
func waitSessionBusGone() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := dbus.SessionBus()
		if err != nil || !c.Connected() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
