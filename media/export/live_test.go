package export

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
)

// TestLive writes a running broadcast through Live into ffmpeg's stdin, as `watch -o - |
// ffmpeg -i -` does: ffmpeg decodes it with no message at all, and its first picture comes
// out while the broadcast is still running, seconds before the export ends (compared with
// the export's own end, measured in the same run).
func TestLive(t *testing.T) {
	requireTool(t, "ffmpeg")
	preset := broadcast.Low
	preset.KeyFrameInterval = time.Second
	vd, _ := capture.TestDevice(capture.Camera)
	ad, _ := capture.TestDevice(capture.Microphone)
	vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: preset.Width, Height: preset.Height, FrameRate: float64(preset.FrameRate)})
	if err != nil {
		t.Fatal(err)
	}
	as, err := capture.OpenAudio(ad, capture.AudioWant{SampleRate: 48000, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	feed := memfeed.New()
	b, err := broadcast.New(broadcast.Config{Preset: preset, Video: vs, Audio: as, Sink: feed, Description: "live export test"})
	if err != nil {
		t.Fatal(err)
	}
	bctx, stopB := context.WithCancel(context.Background())
	bdone := make(chan error, 1)
	go func() { bdone <- b.Run(bctx) }()
	defer func() {
		stopB()
		if err := <-bdone; err != nil {
			t.Errorf("broadcast: %v", err)
		}
	}()
	time.Sleep(1500 * time.Millisecond) // join a stream already running, at its newest key frame

	// framecrc prints a line per decoded frame as it goes (null prints nothing to watch).
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", "-", "-f", "framecrc", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var firstPicture time.Time
	var pictures, sounds int
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			mu.Lock()
			switch {
			case strings.HasPrefix(l, "0,"):
				if pictures == 0 {
					firstPicture = time.Now()
				}
				pictures++
			case strings.HasPrefix(l, "1,"):
				sounds++
			}
			mu.Unlock()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	started := time.Now()
	res, err := Live(ctx, feed, stdin, 0, Options{})
	ended := time.Now()
	stdin.Close()
	<-read
	werr := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("live export: %+v; ffmpeg decoded %d pictures and %d sound packets, the first picture %v after starting, %v before the export ended",
		res, pictures, sounds, firstPicture.Sub(started), ended.Sub(firstPicture))
	if werr != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Fatalf("ffmpeg: %v\n%s", werr, stderr.String())
	}
	if pictures != res.VideoFrames || sounds == 0 || pictures < 40 {
		t.Fatalf("ffmpeg decoded %d pictures and %d sound packets of %d and %d written", pictures, sounds, res.VideoFrames, res.AudioPackets)
	}
	// Live: ffmpeg had pictures while most of the export was still to come.
	if firstPicture.IsZero() || ended.Sub(firstPicture) < ended.Sub(started)/2 {
		t.Fatalf("the first picture came out %v after starting, the export took %v: not live", firstPicture.Sub(started), ended.Sub(started))
	}
}
