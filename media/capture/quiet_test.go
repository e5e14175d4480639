package capture

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// envListChild makes the test binary list the devices and exit: TestListingIsQuiet runs
// it as a child process, since the sound libraries are probed when a program starts.
const envListChild = "DV_CAPTURE_LIST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envListChild) == "1" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug})))
		for _, d := range Devices() {
			fmt.Printf("device %s %q\n", d.Kind, d.Label)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestListingIsQuiet: listing the capture devices prints nothing on stderr, even when
// ALSA's configuration names devices that do not exist (the usual source of "ALSA lib
// ... Unknown PCM" lines at start-up); ALSA's messages go to the debug log instead.
func TestListingIsQuiet(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "noisy.conf")
	// Two hinted PCMs whose slaves do not exist: miniaudio's probe opens them and ALSA
	// complains on stderr.
	noisy := `pcm.!default { type plug slave.pcm "nosuchpcm" hint { show on description "x" } }
pcm.rearx { type plug slave.pcm "cards.pcm.rear" hint { show on description "y" } }
`
	if err := os.WriteFile(conf, []byte(noisy), 0o644); err != nil {
		t.Fatal(err)
	}
	alsa := "/usr/share/alsa/alsa.conf"
	if _, err := os.Stat(alsa); err != nil {
		t.Fatalf("ALSA's configuration is missing (libasound2 installs it): %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	// No PulseAudio server, so that miniaudio probes ALSA even where one runs.
	cmd.Env = append(os.Environ(), envListChild+"=1", "ALSA_CONFIG_PATH="+alsa+":"+conf, "PULSE_SERVER=unix:/nonexistent")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("listing devices: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() != 0 {
		t.Fatalf("listing devices printed on stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "level=DEBUG msg=\"sound system (start-up)\" msg=\"ALSA lib ") {
		t.Fatalf("ALSA's messages did not reach the debug log (did the probe run?):\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "device microphone") {
		t.Fatalf("no microphone listed:\n%s", stdout.String())
	}
}
