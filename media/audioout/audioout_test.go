package audioout

import (
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gen2brain/malgo"
)

// pullRate starts out, lets it run for d and returns how many samples per second it
// pulled.
func pullRate(t *testing.T, out Output, d time.Duration) float64 {
	t.Helper()
	var n atomic.Int64
	if err := out.Start(48000, 2, func(b []float32) {
		if len(b)%2 != 0 {
			t.Errorf("odd buffer of %d samples for 2 channels", len(b))
		}
		for i := range b {
			b[i] = 0.1
		}
		n.Add(int64(len(b) / 2))
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(d)
	out.Close()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// TestSilentPacesAtRealTime checks the silent sink pulls about 48000 frames a second and
// hands what it pulled to the tap.
func TestSilentPacesAtRealTime(t *testing.T) {
	s := NewSilent()
	var mu sync.Mutex
	var tapped int
	s.Tap = func(b []float32) {
		mu.Lock()
		tapped += len(b)
		mu.Unlock()
	}
	rate := pullRate(t, s, time.Second)
	// Paced, not free-running (a shared machine may delay the timer, hence the margin).
	if math.Abs(rate-48000) > 48000*0.5 {
		t.Fatalf("silent sink pulled %.0f frames/s", rate)
	}
	if tapped == 0 {
		t.Fatal("tap saw nothing")
	}
	if err := s.Start(48000, 2, func([]float32) {}); err == nil {
		t.Fatal("started twice")
	}
}

// TestMiniaudioDevice runs the real miniaudio device path on its null backend (this
// machine has no sound card): its own thread pulls at the device's pace.
func TestMiniaudioDevice(t *testing.T) {
	d := NewDeviceWithBackend(BackendNull)
	rate := pullRate(t, d, time.Second)
	if d.Name() != "miniaudio-null" {
		t.Fatalf("backend %q", d.Name())
	}
	if math.Abs(rate-48000) > 48000*0.5 {
		t.Fatalf("miniaudio pulled %.0f frames/s", rate)
	}
}

// TestOpenFallsBackToSilent: with no sound device reachable, Open plays silently instead
// of failing.
func TestOpenFallsBackToSilent(t *testing.T) {
	t.Setenv("PULSE_SERVER", "unix:/nonexistent")
	t.Setenv("ALSA_CONFIG_PATH", "/nonexistent")
	out, err := Open(48000, 1, func([]float32) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if out.Name() != "silent" {
		t.Fatalf("with PulseAudio and ALSA unreachable, Open chose %q", out.Name())
	}
	if out.Latency() <= 0 {
		t.Fatal("no latency")
	}
}

// TestALSABackend plays through miniaudio's ALSA backend (libasound, loaded at run time)
// into ALSA's null device, configured for this test alone: the real ALSA path of a Linux
// desktop without a sound card. (ALSA's null device does not keep time, so only the flow
// of samples is checked here; TestMiniaudioDevice checks the pace.)
func TestALSABackend(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "asound.conf")
	if err := os.WriteFile(conf, []byte("pcm.!default {\n\ttype null\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALSA_CONFIG_PATH", conf)
	d := NewDeviceWithBackend(malgo.BackendAlsa)
	var n atomic.Int64
	if err := d.Start(48000, 2, func(b []float32) { n.Add(int64(len(b))) }); err != nil {
		t.Fatalf("ALSA null device: %v (make deps-run installs libasound2)", err)
	}
	time.Sleep(200 * time.Millisecond)
	d.Close()
	if d.Name() != "alsa" || n.Load() == 0 {
		t.Fatalf("backend %q pulled %d samples", d.Name(), n.Load())
	}
}
