package export

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	recOnce  sync.Once
	recFeed  *memfeed.Feed
	recErr   error
	recStats broadcast.Stats
	recFirst time.Duration // capture time of the first picture
)

// recMedia is how much video the shared recording holds after its first picture.
const recMedia = 3500 * time.Millisecond

// recording is a stream from the test drivers holding recMedia of video after its first
// picture, key frames every second, shared by the tests. It records until the stream
// holds that much, not for a fixed wall time, so that a busy machine (a camera slow to
// start, fewer pictures a second) still gives the tests the stream they expect.
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
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for ctx.Err() == nil {
				<-tick.C
				if recFirst == 0 && b.Stats().VideoFrames > 0 {
					recFirst = firstVideo(recFeed)
				}
				if st := b.Stats(); recFirst > 0 && st.LastVideoPTS >= recFirst+recMedia && st.LastAudioPTS >= recFirst+recMedia {
					cancel()
				}
			}
		}()
		recErr = b.Run(ctx)
		cancel()
		<-watched
		if recErr == nil && recFirst == 0 {
			recErr = errors.New("no picture recorded in a minute")
		}
		recStats = b.Stats()
		recFeed.Close()
	})
	if recErr != nil {
		t.Fatal(recErr)
	}
	return recFeed
}

// feedUnits returns every unit of the stream in f.
func feedUnits(t *testing.T, f *memfeed.Feed) []block.Unit {
	t.Helper()
	var out []block.Unit
	for i := uint64(1); i < f.Len(); i++ {
		b, _ := f.Block(context.Background(), i)
		m, err := block.DecodeMedia(b)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		out = append(out, m.Units...)
	}
	return out
}

// firstVideo is the capture time of the first picture in f (0 until there is one).
func firstVideo(f *memfeed.Feed) time.Duration {
	for i := uint64(1); i < f.Len(); i++ {
		b, _ := f.Block(context.Background(), i)
		m, err := block.DecodeMedia(b)
		if err != nil {
			continue
		}
		for _, u := range m.Units {
			if u.Track == block.Video {
				return max(u.PTS, time.Nanosecond)
			}
		}
	}
	return 0
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
	// The file runs from the first picture to the end of the newest unit recorded.
	units := feedUnits(t, feed)
	var end, maxStep time.Duration
	lastV := time.Duration(-1)
	for _, u := range units {
		end = max(end, u.PTS+u.Duration)
		if u.Track == block.Video {
			if lastV >= 0 {
				maxStep = max(maxStep, u.PTS-lastV)
			}
			lastV = u.PTS
		}
	}
	dur, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if want := end - recFirst; dur < recMedia.Seconds() || math.Abs(dur-want.Seconds()) > 0.1 {
		t.Fatalf("duration %v s, recorded %v from the first picture (at least %v)", dur, want, recMedia)
	}
	ffmpegDecode(t, path, "")
	ffmpegDecode(t, path, "2.2")
	checkPackets(t, path, recStats)
	cues := readCues(t, path)
	times := keyFrameTimes(t, path)
	if len(cues) != 4 || len(times) != 4 {
		t.Fatalf("cues %v at %v ms: want one per key frame (every second of %v)", cues, times, recMedia)
	}
	// A key frame comes with the first picture a second after the previous one: on a busy
	// machine that delivers few pictures, up to one picture interval later.
	for i := 1; i < len(times); i++ {
		if d := time.Duration(times[i]-times[i-1]) * time.Millisecond; d < 950*time.Millisecond || d > time.Second+maxStep+50*time.Millisecond {
			t.Fatalf("cue points at %v ms: key frames every second of capture time (pictures up to %v apart)", times, maxStep)
		}
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
	if n := len(prog.calls); n > 1 && prog.calls[n-2] == last {
		t.Fatalf("the end reported twice: %v", prog.calls)
	}
}

// TestBar: on a terminal the bar redraws one line; elsewhere it writes plain lines every
// 10 %, without carriage returns; 100 % is written once either way.
func TestBar(t *testing.T) {
	on, off := true, false
	for _, c := range []struct {
		term *bool
		want string
	}{
		{&off, "  0% (0/100 blocks)\n 10% (10/100 blocks)\n 50% (50/100 blocks)\n100% (100/100 blocks)\n"},
		{nil, "  0% (0/100 blocks)\n 10% (10/100 blocks)\n 50% (50/100 blocks)\n100% (100/100 blocks)\n"}, // a buffer is no terminal
		{&on, "\r[          ]   0% (0/100 blocks)\r[          ]   1% (1/100 blocks)\r[#         ]  10% (10/100 blocks)\r[#         ]  11% (11/100 blocks)\r[#####     ]  50% (50/100 blocks)\r[##########] 100% (100/100 blocks)\n"},
	} {
		var buf bytes.Buffer
		bar := &Bar{W: &buf, Width: 10, Terminal: c.term}
		for _, d := range []uint64{0, 1, 10, 11, 50, 100, 100} {
			bar.Progress(d, 100)
		}
		if buf.String() != c.want {
			t.Errorf("terminal %v: bar wrote %q, want %q", c.term, buf.String(), c.want)
		}
	}
}

func TestExportRange(t *testing.T) {
	requireTool(t, "ffprobe")
	feed := recording(t)
	path := filepath.Join(t.TempDir(), "range.webm")
	// Times count from the stream's start; the first picture comes when the camera
	// delivers it, so the range is placed after it: 1.2 s to 2.2 s into the pictures.
	from, to := recFirst+1200*time.Millisecond, recFirst+2200*time.Millisecond
	res, err := ToFile(context.Background(), feed, path, Options{Range: Range{From: from, To: to}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first picture at %v; %+v", recFirst, res)
	// The file starts at the key frame at or before From (key frames come every second of
	// capture time from the first picture, so at about 1 s) and ends with the last unit
	// before To.
	wantStart, end := time.Duration(-1), time.Duration(0)
	for _, u := range feedUnits(t, feed) {
		if u.Track == block.Video && u.Key && u.PTS <= from {
			wantStart = u.PTS
		}
	}
	for _, u := range feedUnits(t, feed) {
		if u.PTS >= wantStart && u.PTS < to {
			end = max(end, u.PTS+u.Duration)
		}
	}
	if res.Start != wantStart {
		t.Fatalf("range from %v starts at %v, want the key frame at or before it, %v (first picture at %v)", from, res.Start, wantStart, recFirst)
	}
	if want := end - res.Start; (res.Duration - want).Abs() > 50*time.Millisecond {
		t.Fatalf("range export lasts %v, want %v (to the end of the last unit before %v)", res.Duration, want, to)
	}
	ffprobe(t, path)
	ffmpegDecode(t, path, "")
	checkPackets(t, path, recStats)
	if _, err := ToFile(context.Background(), feed, path, Options{Range: Range{From: time.Hour}}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("range past the end: %v", err)
	}
}

// packet is one packet as ffprobe reads it from a file.
type packet struct {
	stream   int
	pts, dur time.Duration
}

func packets(t *testing.T, path string) []packet {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time,duration_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var ps []packet
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		st, _ := strconv.Atoi(f[0])
		pts, _ := strconv.ParseFloat(f[1], 64)
		dur, _ := strconv.ParseFloat(f[2], 64)
		ps = append(ps, packet{st, time.Duration(pts * 1e9).Round(time.Millisecond), time.Duration(dur * 1e9).Round(time.Millisecond)})
	}
	return ps
}

// checkPackets reads the file's packets back with ffprobe: video timestamps strictly
// increase at the container's 1 ms resolution, at least a frame period apart; audio
// packets never overlap, and the gaps between them are no more than the sound the
// broadcaster counted as lost (plus a millisecond of rounding each).
func checkPackets(t *testing.T, path string, st broadcast.Stats) {
	t.Helper()
	ps := packets(t, path)
	last := map[int]packet{}
	var gaps time.Duration
	n := 0
	for _, p := range ps {
		prev, ok := last[p.stream]
		last[p.stream] = p
		if !ok {
			continue
		}
		switch p.stream {
		case 0: // video
			if p.pts-prev.pts < 33*time.Millisecond {
				t.Fatalf("pictures at %v and %v: less than a frame period (33 ms) apart", prev.pts, p.pts)
			}
		case 1: // audio
			end := prev.pts + prev.dur
			if p.pts < end {
				t.Fatalf("audio packet at %v overlaps the one at %v (%v long)", p.pts, prev.pts, prev.dur)
			}
			if p.pts > end {
				gaps += p.pts - end
				n++
			}
		}
	}
	t.Logf("%d packets; audio gaps %d, %v; lost while recording: %d, %v", len(ps), n, gaps, st.AudioGaps, st.AudioLost)
	if gaps > st.AudioLost+time.Duration(n)*time.Millisecond {
		t.Fatalf("audio has %v of gaps in %d places; the broadcaster lost %v", gaps, n, st.AudioLost)
	}
}

// keyFrameTimes returns the times of the key frames ffprobe finds, in milliseconds.
func keyFrameTimes(t *testing.T, path string) []int64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-skip_frame", "nokey", "-show_entries", "frame=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var ms []int64
	for _, line := range strings.Fields(string(out)) {
		v, _ := strconv.ParseFloat(strings.TrimSuffix(line, ","), 64)
		ms = append(ms, int64(v*1000+0.5))
	}
	return ms
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

	// 30 fps streams whose pictures a busy machine read in pairs 1 ms apart, or in a burst
	// of six within 5 ms after a 200 ms stall: the files decode cleanly in ffmpeg, with
	// every picture at least a frame period after the previous one.
	requireTool(t, "ffmpeg")
	for name, stamp := range map[string]func(i int) time.Duration{
		"pairs": func(i int) time.Duration { return time.Duration(i/2)*2*time.Second/30 + time.Duration(i%2)*ms },
		"stall": func(i int) time.Duration {
			if i%12 < 6 {
				return time.Duration(i) * time.Second / 30
			}
			// Pictures 6 to 11 of every 12 arrive together, just before 11 was due.
			return time.Duration(i-i%12+11)*time.Second/30 - time.Duration(11-i%12)*ms
		},
	} {
		enc, err := vp8.NewEncoder(vp8.Config{Width: 160, Height: 120, KeyFrameInterval: 30})
		if err != nil {
			t.Fatal(err)
		}
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
			m := &block.Media{Seq: uint64(i + 1), Units: []block.Unit{{Track: block.Video, Key: f.Key, PTS: stamp(i), Duration: 33 * ms, Payload: f.Data}}}
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			feed.Append(context.Background(), b, f.Key)
		}
		enc.Close()
		path := filepath.Join(t.TempDir(), name+".webm")
		if _, err := ToFile(context.Background(), feed, path, Options{}); err != nil {
			t.Fatal(err)
		}
		ffmpegDecode(t, path, "")
		checkPackets(t, path, broadcast.Stats{})
	}
}

// countingSource counts the blocks read from it.
type countingSource struct {
	BlockSource
	reads int
}

func (c *countingSource) Block(ctx context.Context, i uint64) ([]byte, error) {
	c.reads++
	return c.BlockSource.Block(ctx, i)
}

// TestToFileEdges: an output that is a folder, or in a folder that does not exist, and a
// range before the start are refused before anything is read, naming the output (never
// the temporary file); a written file has the mode the user's umask gives new files.
func TestToFileEdges(t *testing.T) {
	src := &countingSource{BlockSource: recording(t)}
	dir := t.TempDir()
	for _, c := range []struct {
		name, path string
		rng        Range
		want       []string
	}{
		{"folder", dir, Range{}, []string{dir, "is a folder"}},
		{"missing folder", filepath.Join(dir, "no", "such", "out.webm"), Range{}, []string{filepath.Join(dir, "no", "such", "out.webm"), "does not exist"}},
		{"negative from", filepath.Join(dir, "neg.webm"), Range{From: -3 * time.Second}, []string{"before the stream's start"}},
		{"negative to", filepath.Join(dir, "neg.webm"), Range{To: -time.Second}, []string{"before the stream's start"}},
		{"backwards", filepath.Join(dir, "back.webm"), Range{From: 2 * time.Second, To: time.Second}, []string{"ends", "before it starts"}},
	} {
		src.reads = 0
		_, err := ToFile(context.Background(), src, c.path, Options{Range: c.rng})
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), ".tmp") {
			t.Errorf("%s: %q names the temporary file", c.name, err)
		}
		if src.reads != 0 {
			t.Errorf("%s: %d blocks read before refusing", c.name, src.reads)
		}
	}
	// Modes follow the umask, like any other new file of the user's.
	for _, c := range []struct{ umask, want os.FileMode }{{0o022, 0o644}, {0o027, 0o640}} {
		old := syscall.Umask(int(c.umask))
		path := filepath.Join(dir, fmt.Sprintf("mode-%o.webm", c.umask))
		_, err := ToFile(context.Background(), src, path, Options{Range: Range{To: recFirst + 500*time.Millisecond}})
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.want {
			t.Errorf("umask %03o: export has mode %v, want %v", c.umask, fi.Mode().Perm(), c.want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

// TestRangeAcrossReordering: on a busy machine a picture can reach the stream after sound
// captured later (its encoding took a while). A range still starts at the key frame at
// or before From, and holds every unit before To, wherever they sit in the stream.
func TestRangeAcrossReordering(t *testing.T) {
	ms := time.Millisecond
	enc, err := vp8.NewEncoder(vp8.Config{Width: 160, Height: 120, KeyFrameInterval: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	type arrival struct {
		at time.Duration
		u  block.Unit
	}
	var units []arrival
	img := testpattern.Bars(160, 120)
	for i := 0; i < 60; i++ { // 2 s of pictures, key frames every 10 (333 ms)
		f, err := enc.Encode(img)
		if err != nil {
			t.Fatal(err)
		}
		pts := time.Duration(i) * time.Second / 30
		units = append(units, arrival{pts + 150*ms, block.Unit{Track: block.Video, Key: f.Key, PTS: pts, Duration: 33 * ms, Payload: f.Data}})
	}
	for i := 0; i < 100; i++ { // 2 s of sound
		pts := time.Duration(i) * 20 * ms
		units = append(units, arrival{pts + 20*ms, block.Unit{Track: block.Audio, PTS: pts, Duration: 20 * ms, Payload: []byte{0xfc, 0xff, 0xfe}}})
	}
	slices.SortStableFunc(units, func(a, b arrival) int { return cmp.Compare(a.at, b.at) })
	h := &block.Header{Start: time.Now(),
		Video: &block.VideoParams{Codec: block.CodecVP8, Width: 160, Height: 120, FrameRateNum: 30, FrameRateDen: 1},
		Audio: &block.AudioParams{Codec: block.CodecOpus, SampleRate: 48000, Channels: 1, FrameDuration: 20 * ms}}
	hb, _ := h.MarshalBinary()
	feed := memfeed.New()
	feed.Append(context.Background(), hb, true)
	for i, a := range units {
		m := &block.Media{Seq: uint64(i + 1), Units: []block.Unit{a.u}}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		feed.Append(context.Background(), b, a.u.Key)
	}
	res, err := ToFile(context.Background(), feed, filepath.Join(t.TempDir(), "r.webm"), Options{Range: Range{From: 1050 * ms, To: 1500 * ms}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Start != time.Second || res.VideoFrames != 15 || res.AudioPackets != 25 {
		t.Fatalf("range 1.05 s to 1.5 s: %+v; want the key frame at 1 s, 15 pictures and 25 sound packets", res)
	}
}

// TestLateRangeOfLongSoundOnlyStream: a range near the end of a long stream without video
// costs about what reading the stream costs. Before, every unit before the range was kept
// and each new one searched them all: quadratic (2 m 14 s for one second at the end of two
// hours). Timed against exporting the whole stream, in the same run: the whole export
// writes every unit, the late range only reads them.
func TestLateRangeOfLongSoundOnlyStream(t *testing.T) {
	const ms = time.Millisecond
	h := &block.Header{Start: time.Now(),
		Audio: &block.AudioParams{Codec: block.CodecOpus, SampleRate: 48000, Channels: 1, FrameDuration: 20 * ms}}
	hb, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	feed := memfeed.New()
	feed.Append(context.Background(), hb, true)
	payload := make([]byte, 80)
	payload[0] = 0xfc          // an Opus packet's TOC: one 20 ms frame
	const units = 20 * 60 * 50 // 20 minutes
	for i, seq := 0, uint64(1); i < units; i, seq = i+5, seq+1 {
		m := &block.Media{Seq: seq}
		for k := range 5 {
			m.Units = append(m.Units, block.Unit{Track: block.Audio, PTS: time.Duration(i+k) * 20 * ms, Duration: 20 * ms, Payload: payload})
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		feed.Append(context.Background(), b, true)
	}
	dir := t.TempDir()
	best := func(rng Range) time.Duration {
		d := time.Duration(math.MaxInt64)
		for range 3 {
			t0 := time.Now()
			if _, err := ToFile(context.Background(), feed, filepath.Join(dir, "a.webm"), Options{Range: rng}); err != nil {
				t.Fatal(err)
			}
			d = min(d, time.Since(t0))
		}
		return d
	}
	end := time.Duration(units) * 20 * ms
	whole := best(Range{})
	late := best(Range{From: end - 2*time.Second, To: end - time.Second})
	t.Logf("whole stream %v, its last seconds but one %v", whole, late)
	if late > 2*whole {
		t.Fatalf("one second at the end took %v, the whole stream %v", late, whole)
	}
}

// TestEarlyRangeKeepsTheLateFirstSound: the broadcaster holds the microphone's first half
// second until it is measured, so that sound reaches the stream with the picture of about
// 0.5 s, after blocks holding only pictures. A range ending in the first 0.3 s still has its
// sound. Before, the export stopped at the first block a reorder window past To: one
// audio packet in 50 ms of range instead of the six from its key frame on.
func TestEarlyRangeKeepsTheLateFirstSound(t *testing.T) {
	const ms = time.Millisecond
	h := &block.Header{Start: time.Now(),
		Video: &block.VideoParams{Codec: block.CodecVP8, Width: 64, Height: 48, FrameRateNum: 30, FrameRateDen: 1},
		Audio: &block.AudioParams{Codec: block.CodecOpus, SampleRate: 48000, Channels: 1, FrameDuration: 20 * ms}}
	hb, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f := memfeed.New()
	f.Append(context.Background(), hb, true)
	opusPkt := []byte{0xfc, 1, 2, 3}
	vp8Pkt := func(key bool) []byte {
		if key {
			return []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 64, 0, 48, 0} // a key frame's header, 64x48
		}
		return []byte{0x11, 0x02, 0x00}
	}
	seq := uint64(1)
	add := func(units ...block.Unit) {
		b, err := (&block.Media{Seq: seq, Units: units}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		f.Append(context.Background(), b, units[0].Key)
		seq++
	}
	pic := func(i int) block.Unit {
		return block.Unit{Track: block.Video, Key: i == 0, PTS: 34*ms + time.Duration(i)*100*ms/3, Duration: 33 * ms, Payload: vp8Pkt(i == 0)}
	}
	snd := func(k int) block.Unit {
		return block.Unit{Track: block.Audio, PTS: time.Duration(k) * 20 * ms, Duration: 20 * ms, Payload: opusPkt}
	}
	for i := range 15 { // the pictures of the first half second, alone
		add(pic(i))
	}
	first := []block.Unit{pic(15)}
	for k := range 25 { // the first window's sound, with the picture of 0.534 s
		first = append(first, snd(k))
	}
	add(first...)
	for i, k := 16, 25; i < 60; i++ { // then each picture with the sound up to it
		us := []block.Unit{pic(i)}
		for ; snd(k).PTS <= pic(i).PTS; k++ {
			us = append(us, snd(k))
		}
		add(us...)
	}
	res, err := ToFile(context.Background(), f, filepath.Join(t.TempDir(), "early.webm"), Options{Range: Range{From: 100 * ms, To: 150 * ms}})
	if err != nil {
		t.Fatal(err)
	}
	// From the key frame at 34 ms to 150 ms: the packets at 40 to 140 ms.
	if res.AudioPackets < 6 {
		t.Fatalf("%d audio packets in a range of sound from 34 to 150 ms: %+v", res.AudioPackets, res)
	}
}
