package session

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

const liveChildEnv = "DV_SESSION_LIVE_CHILD"

// liveChild goes live in data directory dir with the test devices, saving its record every
// 200 ms, prints "live <stream ID>" and broadcasts until it is killed.
func liveChild(dir string) {
	recordEvery = 200 * time.Millisecond
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	d, err := OpenDataDir(dir)
	if err != nil {
		fail(err)
	}
	video, err := capture.TestDevice(capture.Camera)
	if err != nil {
		fail(err)
	}
	audio, err := capture.TestDevice(capture.Microphone)
	if err != nil {
		fail(err)
	}
	b, err := NewBroadcaster(BroadcasterConfig{Data: d, Secrets: secrets.NewMemory(), Name: "  killed  ", Preset: broadcast.Low,
		Video: &video, Audio: &audio, Price: price.Price{}, Network: loopback, Logger: log})
	if err != nil {
		fail(err)
	}
	if err := b.Start(context.Background()); err != nil {
		fail(err)
	}
	fmt.Printf("live %s\n", b.ID())
	select {}
}

// TestMyStreamsWhileLiveAndKilled lists my streams while one is live in another process and after
// that process was killed (kill -9, so no clean stop wrote stream.json): the list shows what the
// feed holds, read without disturbing the writer, and the record saved while live holds blocks.
func TestMyStreamsWhileLiveAndKilled(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), liveChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	idc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "live "); ok {
				idc <- id
			}
		}
		close(idc)
	}()
	var id string
	select {
	case id = <-idc:
	case <-time.After(2 * time.Minute):
	}
	if id == "" {
		t.Fatalf("the broadcaster did not go live: %s", stderr.String())
	}
	d, _ := OpenDataDir(dir)
	feedDir := filepath.Join(d.streamDir(id), "feed")
	head := func() feed.Head {
		t.Helper()
		h, err := feed.ReadHead(feedDir)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	list := func() StreamRecord {
		t.Helper()
		mine, err := d.MyStreams()
		if err != nil || len(mine) != 1 || mine[0].ID != id {
			t.Fatalf("my streams: %+v %v", mine, err)
		}
		return mine[0]
	}
	waitFor(t, "blocks in the live feed", time.Minute, func() bool { return head().Length >= 10 })

	// Live: between the heads read just before and just after.
	before := head()
	r := list()
	after := head()
	if r.Blocks < before.Length || r.Blocks > after.Length || r.Bytes < before.ByteLength || r.Bytes > after.ByteLength {
		t.Fatalf("listed while live: %d blocks, %d bytes; the feed held %d–%d blocks, %d–%d bytes",
			r.Blocks, r.Bytes, before.Length, after.Length, before.ByteLength, after.ByteLength)
	}
	if r.Name != "killed" {
		t.Fatalf("title %q, want it trimmed", r.Name)
	}
	// The record itself is saved while live.
	waitFor(t, "stream.json saved while live", time.Minute, func() bool {
		rec, err := d.Stream(id)
		return err == nil && rec.Blocks > 0
	})
	// The writer went on appending while it was listed.
	n := head().Length
	waitFor(t, "appends after the list", time.Minute, func() bool { return head().Length > n })

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	final := head()
	if r := list(); r.Blocks != final.Length || r.Bytes != final.ByteLength || r.Blocks == 0 {
		t.Fatalf("listed after kill -9: %d blocks, %d bytes; the feed holds %d blocks, %d bytes", r.Blocks, r.Bytes, final.Length, final.ByteLength)
	}
	if rec, err := d.Stream(id); err != nil || rec.Blocks == 0 || rec.Blocks > final.Length {
		t.Fatalf("stream.json after kill -9: %+v %v (the feed holds %d blocks)", rec, err, final.Length)
	}
}
