package export

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/block"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
)

var (
	recOnce sync.Once
	recFeed *memfeed.Feed
	recErr  error
)

// recording is a 3.5 s stream from the test drivers, key frames every second, shared by
// the tests.
func recording(t *testing.T) *memfeed.Feed {
	t.Helper()
	recOnce.Do(func() {
		preset := broadcast.Medium
		preset.KeyFrameInterval = time.Second
		vd, _ := capture.TestDevice(capture.Camera)
		ad, _ := capture.TestDevice(capture.Microphone)
		vs, err := capture.OpenVideo(vd, capture.VideoWant{Width: 640, Height: 480, FrameRate: 30})
		if err != nil {
			recErr = err
			return
		}
		as, err := capture.OpenAudio(ad, capture.AudioWant{SampleRate: 48000, Channels: 1})
		if err != nil {
			recErr = err
			return
		}
		recFeed = memfeed.New()
		b, err := broadcast.New(broadcast.Config{Preset: preset, Video: vs, Audio: as, Sink: recFeed, Description: "export test"})
		if err != nil {
			recErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
		defer cancel()
		recErr = b.Run(ctx)
		recFeed.Close()
	})
	if recErr != nil {
		t.Fatal(recErr)
	}
	return recFeed
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed (make test installs ffmpeg): %v", name, err)
	}
}

type probe struct {
	Streams []struct {
		CodecName  string `json:"codec_name"`
		CodecType  string `json:"codec_type"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe rejects the file: %v\n%s", err, out)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

// ffmpegDecode decodes the file (from seek, when given) and fails on any message.
func ffmpegDecode(t *testing.T, path string, seek string) {
	t.Helper()
	args := []string{"-nostdin", "-v", "error", "-xerror"}
	if seek != "" {
		args = append(args, "-ss", seek)
	}
	args = append(args, "-i", path, "-f", "null", "-")
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

type progressLog struct {
	mu    sync.Mutex
	calls [][2]uint64
}

func (p *progressLog) Progress(done, total uint64) {
	p.mu.Lock()
	p.calls = append(p.calls, [2]uint64{done, total})
	p.mu.Unlock()
}

func TestExportWholeStream(t *testing.T) {
	requireTool(t, "ffprobe")
	feed := recording(t)
	path := filepath.Join(t.TempDir(), "whole.webm")
	prog := &progressLog{}
	res, err := ToFile(context.Background(), feed, path, Options{Progress: prog})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	p := ffprobe(t, path)
	if !strings.Contains(p.Format.FormatName, "webm") || len(p.Streams) != 2 {
		t.Fatalf("ffprobe: %+v", p)
	}
	v, a := p.Streams[0], p.Streams[1]
	if v.CodecName != "vp8" || v.Width != 640 || v.Height != 480 || a.CodecName != "opus" || a.SampleRate != "48000" || a.Channels != 1 {
		t.Fatalf("streams: %+v", p.Streams)
	}
	dur, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if dur < 2.5 || dur > 4 {
		t.Fatalf("duration %v s, recorded about 3.5 s", dur)
	}
	ffmpegDecode(t, path, "")
	ffmpegDecode(t, path, "2.2")
	cues := readCues(t, path)
	if len(cues) < 3 {
		t.Fatalf("cues %v: want one per key frame (every second)", cues)
	}
	// Progress: increasing, ends at total.
	last := prog.calls[len(prog.calls)-1]
	if last[0] != last[1] || last[1] != feed.Len()-1 {
		t.Fatalf("last progress %v, %d blocks", last, feed.Len()-1)
	}
	for i := 1; i < len(prog.calls); i++ {
		if prog.calls[i][0] < prog.calls[i-1][0] {
			t.Fatal("progress went backwards")
		}
	}
	var buf bytes.Buffer
	bar := &Bar{W: &buf}
	bar.Progress(50, 100)
	bar.Progress(100, 100)
	if !strings.Contains(buf.String(), " 50% (50/100 blocks)") || !strings.HasSuffix(buf.String(), "100% (100/100 blocks)\n") {
		t.Fatalf("bar: %q", buf.String())
	}
}

func TestExportRange(t *testing.T) {
	requireTool(t, "ffprobe")
	feed := recording(t)
	path := filepath.Join(t.TempDir(), "range.webm")
	res, err := ToFile(context.Background(), feed, path, Options{Range: Range{From: 1500 * time.Millisecond, To: 2500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	// The file starts at the key frame at or before 1.5 s (key frames come every second).
	if res.Start > 1500*time.Millisecond || res.Start < 400*time.Millisecond {
		t.Fatalf("range starts at %v", res.Start)
	}
	want := 2500*time.Millisecond - res.Start
	if res.Duration < want-100*time.Millisecond || res.Duration > want+100*time.Millisecond {
		t.Fatalf("range export lasts %v, want about %v", res.Duration, want)
	}
	ffprobe(t, path)
	ffmpegDecode(t, path, "")
	if _, err := ToFile(context.Background(), feed, path, Options{Range: Range{From: time.Hour}}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("range past the end: %v", err)
	}
}

// TestExportSkipsDamage: a damaged block is skipped, the picture resumes at the next key
// frame, and the file is still clean.
func TestExportSkipsDamage(t *testing.T) {
	requireTool(t, "ffmpeg")
	src := recording(t)
	feed := memfeed.New()
	n := src.Len()
	for i := uint64(0); i < n; i++ {
		b, _ := src.Block(context.Background(), i)
		if i == n/2 {
			b = append([]byte(nil), b[:len(b)-3]...)
		}
		feed.Append(context.Background(), b, src.IsSync(i))
	}
	path := filepath.Join(t.TempDir(), "damaged.webm")
	res, err := ToFile(context.Background(), feed, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.DamagedBlocks != 1 {
		t.Fatalf("%d damaged blocks reported", res.DamagedBlocks)
	}
	ffmpegDecode(t, path, "")

	// A stream with a broken header is refused plainly and leaves no file.
	bad := memfeed.New()
	bad.Append(context.Background(), []byte("garbage"), true)
	p2 := filepath.Join(t.TempDir(), "bad.webm")
	if _, err := ToFile(context.Background(), bad, p2, Options{}); !errors.Is(err, block.ErrNotMedia) && !errors.Is(err, block.ErrTruncated) {
		t.Fatalf("bad header: %v", err)
	}
	if _, err := os.Stat(p2); !os.IsNotExist(err) {
		t.Fatal("a failed export left a file behind")
	}
}

// readCues walks the file's EBML to its Cues and checks each points at a Cluster.
func readCues(t *testing.T, path string) []uint64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vint := func(b []byte, keepMarker bool) (uint64, int) {
		l := 1
		for l <= 8 && b[0]&(0x80>>(l-1)) == 0 {
			l++
		}
		v := uint64(b[0])
		if !keepMarker {
			v &= uint64(0xff >> l)
		}
		for i := 1; i < l; i++ {
			v = v<<8 | uint64(b[i])
		}
		return v, l
	}
	type elem struct {
		id         uint64
		start, end int // data
	}
	children := func(start, end int) []elem {
		var out []elem
		for p := start; p < end; {
			id, n := vint(data[p:], true)
			size, m := vint(data[p+n:], false)
			out = append(out, elem{id, p + n + m, p + n + m + int(size)})
			p += n + m + int(size)
		}
		return out
	}
	top := children(0, len(data))
	seg := top[1]
	if seg.id != 0x18538067 {
		t.Fatalf("second element %x is not a Segment", seg.id)
	}
	var cuePos []uint64
	for _, e := range children(seg.start, seg.end) {
		if e.id != 0x1C53BB6B {
			continue
		}
		for _, cp := range children(e.start, e.end) {
			for _, f := range children(cp.start, cp.end) {
				if f.id != 0xB7 {
					continue
				}
				for _, g := range children(f.start, f.end) {
					if g.id == 0xF1 {
						var v uint64
						for _, c := range data[g.start:g.end] {
							v = v<<8 | uint64(c)
						}
						cuePos = append(cuePos, v)
						at := seg.start + int(v)
						if binary.BigEndian.Uint32(data[at:]) != 0x1F43B675 {
							t.Fatalf("cue at %d does not point at a Cluster", v)
						}
					}
				}
			}
		}
	}
	return cuePos
}

// TestRetimeBursts: pictures read back to back by a busy machine are moved back onto
// the frame cadence, never later than stamped, and the file decodes cleanly in ffmpeg.
func TestRetimeBursts(t *testing.T) {
	ms := time.Millisecond
	stamps := []time.Duration{0, 33 * ms, 66 * ms, 140 * ms, 141 * ms, 166 * ms, 200 * ms}
	want := []time.Duration{0, 33 * ms, 66 * ms, 100 * ms, 133 * ms, 166 * ms, 200 * ms}
	var pending []block.Unit
	for _, s := range stamps {
		pending = append(pending, block.Unit{Track: block.Video, PTS: s})
	}
	last := time.Duration(-ms)
	for i := range pending {
		got := retime(pending, i, 33*ms, last)
		if got != want[i] {
			t.Fatalf("picture %d stamped %v: written at %v, want %v", i, stamps[i], got, want[i])
		}
		pending[i].PTS, last = got, got
	}

	// A 30 fps stream whose pictures were read in pairs, 1 ms apart, with gaps between.
	requireTool(t, "ffmpeg")
	enc, err := vp8.NewEncoder(vp8.Config{Width: 160, Height: 120, KeyFrameInterval: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	h := &block.Header{Start: time.Now(), Video: &block.VideoParams{Codec: block.CodecVP8, Width: 160, Height: 120, FrameRateNum: 30, FrameRateDen: 1}}
	hb, _ := h.MarshalBinary()
	feed := memfeed.New()
	feed.Append(context.Background(), hb, true)
	img := testpattern.Bars(160, 120)
	for i := 0; i < 60; i++ {
		f, err := enc.Encode(img)
		if err != nil {
			t.Fatal(err)
		}
		pts := time.Duration(i/2)*2*time.Second/30 + time.Duration(i%2)*ms // 30 fps, read in pairs
		m := &block.Media{Seq: uint64(i + 1), Units: []block.Unit{{Track: block.Video, Key: f.Key, PTS: pts, Duration: 33 * ms, Payload: f.Data}}}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		feed.Append(context.Background(), b, f.Key)
	}
	path := filepath.Join(t.TempDir(), "bursts.webm")
	if _, err := ToFile(context.Background(), feed, path, Options{}); err != nil {
		t.Fatal(err)
	}
	ffmpegDecode(t, path, "")
}
