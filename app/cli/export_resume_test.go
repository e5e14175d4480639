package cli

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// A resumed stream has one header per run, each run's timeline starting at zero. Its export
// holds the runs back to back: the second run's header is not a damaged block, and its
// pictures and sound are not laid over the first run's (which lost most of the second run's
// pictures to the first's timeline, and gave a file as long as the longer run). A third run
// at another picture size ends the file, saying so (the file's track would have had the first
// run's size).
func TestExportResumedStream(t *testing.T) {
	t.Setenv(EnvPassphrase, "pw")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := t.TempDir()
	cfg := testBroadcastConfig(t, root, broadcast.Low)
	for run := 0; run < 3; run++ {
		if run == 2 {
			cfg.Preset = broadcast.Medium // another picture size: the file cannot hold this run
		}
		b, err := session.NewBroadcaster(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		target := b.Snapshot().Blocks + 40
		for b.Snapshot().Blocks < target {
			if ctx.Err() != nil {
				t.Fatalf("run %d: only %d blocks", run+1, b.Snapshot().Blocks)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := b.Stop(); err != nil {
			t.Fatal(err)
		}
		cfg.Resume, cfg.Name = b.ID(), ""
		cfg.Network.Listen = nil // a resumed stream listens where its card says
	}
	dir := filepath.Join(root, "streams", cfg.Resume, "feed")

	// Each run's length on its own timeline, from the feed.
	f, err := feed.Open(dir, feed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var runs []time.Duration
	var units []int  // per run
	var third uint64 // the third run's header
	for i := uint64(0); i < f.Length(); i++ {
		b, err := f.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		if block.KindOf(b) == block.KindHeader {
			runs = append(runs, 0)
			units = append(units, 0)
			if len(runs) == 3 {
				third = i
			}
			continue
		}
		m, err := block.DecodeMedia(b)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		for _, u := range m.Units {
			runs[len(runs)-1] = max(runs[len(runs)-1], u.PTS+u.Duration)
		}
		units[len(units)-1] += len(m.Units)
	}
	f.Close()
	if len(runs) != 3 {
		t.Fatalf("the feed holds %d runs, want 3", len(runs))
	}

	out := filepath.Join(t.TempDir(), "both.webm")
	r := run(t, "", "export", dir, out)
	if r.code != 0 || !strings.Contains(r.out, "(2 runs of a resumed stream, back to back)") ||
		!strings.Contains(r.out, " 0 damaged blocks") || strings.Contains(r.err, "damaged") ||
		!strings.Contains(r.out, fmt.Sprintf("the export ends at block %d: the broadcaster resumed the stream there with another picture size", third)) {
		t.Fatalf("export: code %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	ffmpegClean(t, out)
	probe := func(what string) []float64 {
		o, err := exec.Command("ffprobe", "-v", "error", "-show_entries", what, "-of", "csv=p=0", out).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", what, err)
		}
		var v []float64
		for _, l := range strings.Fields(string(o)) {
			x, err := strconv.ParseFloat(strings.Trim(l, ","), 64)
			if err != nil {
				t.Fatalf("ffprobe %s: %q", what, o)
			}
			v = append(v, x)
		}
		return v
	}
	// The file starts at the first key frame and pictures sit on the frame grid: half a
	// second of slack, far less than either run.
	both := (runs[0] + runs[1]).Seconds()
	if d := probe("format=duration"); len(d) != 1 || d[0] < both-0.5 || d[0] > both+0.5 {
		t.Fatalf("the export lasts %v s; the runs last %v and %v", d, runs[0], runs[1])
	}
	pts := probe("packet=pts_time")
	after := 0
	for _, p := range pts {
		if p >= runs[0].Seconds()-0.001 {
			after++
		}
	}
	// Every unit of the second run is written after the first run's end (a few sound
	// packets at its start may wait for the first picture).
	if after < units[1]*9/10 {
		t.Fatalf("%d of %d packets come after the first run's end (%v); the second run has %d units", after, len(pts), runs[0], units[1])
	}
}
