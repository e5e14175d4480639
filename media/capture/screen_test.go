package capture

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/pion/mediadevices/pkg/prop"
)

// startXvfb starts a real X server on a free display and points $DISPLAY at it for the
// test. make test installs xvfb and x11-apps. -noreset: an X server resets when its last
// client disconnects, and a connection made during the reset fails.
func startXvfb(t *testing.T, w, h int) {
	t.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		t.Fatalf("Xvfb is not installed (make test installs xvfb): %v", err)
	}
	r, wp, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp", "-noreset", "-wr")
	cmd.ExtraFiles = []*os.File{wp}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wp.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
		r.Close()
	}()
	select {
	case d := <-line:
		if d == "" {
			t.Fatal("Xvfb did not start")
		}
		t.Setenv("DISPLAY", ":"+d)
	case <-time.After(20 * time.Second):
		t.Fatal("Xvfb did not report its display")
	}
}

// TestScreenSourceUnderXvfb captures a real X11 screen (Xvfb, white root window with a red
// xlogo window on it), encodes the captures to VP8 and checks the decoded pictures show
// both.
func TestScreenSourceUnderXvfb(t *testing.T) {
	startXvfb(t, 640, 480)
	if _, err := exec.LookPath("xlogo"); err != nil {
		t.Fatalf("xlogo is not installed (make test installs x11-apps): %v", err)
	}
	logo := exec.Command("xlogo", "-geometry", "200x160+40+60", "-bg", "red", "-fg", "red")
	if err := logo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logo.Process.Kill()
		logo.Wait()
	})
	RescanScreens()
	var screen *Device
	for _, d := range Devices() {
		if d.Kind == Screen {
			screen = &d
			break
		}
	}
	if screen == nil {
		t.Fatalf("no screen found on %s; devices %+v", os.Getenv("DISPLAY"), Devices())
	}
	src, err := OpenVideo(*screen, VideoWant{FrameRate: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	enc := &vp8.Builder{Config: vp8.Config{BitRate: 800_000}}
	rc, err := enc.BuildVideoEncoder(src, prop.Media{Video: prop.Video{Width: src.Width, Height: src.Height}})
	if err != nil {
		t.Fatal(err)
	}
	re := rc.(*vp8.ReadEncoder)
	defer re.Close()
	dec, _ := vp8.NewDecoder()
	defer dec.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; ctx.Err() == nil; i++ {
		f, err := re.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		img, err := dec.Decode(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		if img.Rect.Dx() != 640 || img.Rect.Dy() != 480 {
			t.Fatalf("screen picture is %v", img.Rect)
		}
		// Red (BT.601 limited: Y≈81, Cr≈240) inside the window, white (Y≈235) outside.
		in, out := img.YCbCrAt(140, 140), img.YCbCrAt(500, 400)
		if in.Cr > 200 && in.Y < 110 && out.Y > 220 && out.Cr > 118 && out.Cr < 138 {
			t.Logf("frame %d: window Y=%d Cr=%d, root Y=%d", i, in.Y, in.Cr, out.Y)
			return
		}
		// The window may take a few frames to be mapped and drawn.
		time.Sleep(50 * time.Millisecond)
		if i > 100 {
			t.Fatalf("the screen capture never showed the red window: inside %+v outside %+v", in, out)
		}
	}
	t.Fatal("timed out")
}
