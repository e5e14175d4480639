package cli

import (
	"bufio"
	"context"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestWatchToStdout runs `watch CARD -o -` (the command function, in this process) against a
// live broadcaster on loopback, its stdout piped into ffmpeg, as `watch CARD -o - | mpv -`
// does: ffmpeg decodes it without a message, pictures come out while the watch runs, and
// every message went to stderr. With -from, the stream starts at the key frame at or
// before that time, so the held past comes out first.
func TestWatchToStdout(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (make test installs it): %v", err)
	}
	t.Setenv(EnvPassphrase, "correct horse")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	preset := broadcast.Low
	preset.KeyFrameInterval = time.Second
	b := startTestBroadcast(ctx, t, preset)
	cardText := b.Card().String()
	time.Sleep(3 * time.Second)

	tests := []struct {
		name string
		args []string
		// the first picture comes out this early, and this much media is out at once
		wantFrom string
	}{
		{name: "live", args: nil},
		{name: "from 1s", args: []string{"-from", "1s"}, wantFrom: `writing from (\d+(\.\d+)?m?s)`},
	}
	const watchFor = 6 * time.Second
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", "-", "-f", "framecrc", "-")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, _ := cmd.StdoutPipe()
			var ffErr strings.Builder
			cmd.Stderr = &ffErr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var pictures []time.Time
			read := make(chan struct{})
			go func() {
				defer close(read)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "0,") {
						mu.Lock()
						pictures = append(pictures, time.Now())
						mu.Unlock()
					}
				}
			}()
			var errb xtest.SyncBuffer // the log handler and the command write to it from several goroutines
			args := append([]string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc"),
				"watch", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0", "-duration", watchFor.String(), "-o", "-"}, tc.args...)
			started := time.Now()
			code := Run(ctx, append(args, cardText), strings.NewReader(""), stdin, &errb)
			ended := time.Now()
			stdin.Close()
			<-read
			werr := cmd.Wait()
			mu.Lock()
			defer mu.Unlock()
			if code != 0 {
				t.Fatalf("watch exited %d:\n%s", code, errb.String())
			}
			if werr != nil || strings.TrimSpace(ffErr.String()) != "" {
				t.Fatalf("ffmpeg: %v\n%s\nwatch said:\n%s", werr, ffErr.String(), errb.String())
			}
			if !strings.Contains(errb.String(), "Terms:") || !strings.Contains(errb.String(), "wrote ") {
				t.Fatalf("the messages did not go to stderr:\n%s", errb.String())
			}
			if len(pictures) < 20 {
				t.Fatalf("ffmpeg decoded %d pictures\n%s", len(pictures), errb.String())
			}
			// -duration counts from when the session starts, after the secrets file's key
			// derivation (Argon2id, seconds on a loaded machine) and the node: the watch's
			// own 6 s are the last 6 s before it returned.
			watchStart := ended.Add(-watchFor)
			first := pictures[0].Sub(started)
			t.Logf("%s: %d pictures; the first out %v after starting (%v into the 6 s), the watch took %v",
				tc.name, len(pictures), first, pictures[0].Sub(watchStart), ended.Sub(started))
			if pictures[0].After(watchStart.Add(watchFor / 2)) {
				t.Fatalf("the first picture came out %v into a %v watch (%v after starting the command): not live\nwatch said:\n%s",
					pictures[0].Sub(watchStart), watchFor, first, errb.String())
			}
			if tc.wantFrom != "" {
				m := regexp.MustCompile(tc.wantFrom).FindStringSubmatch(errb.String())
				if m == nil {
					t.Fatalf("no start time said:\n%s", errb.String())
				}
				at, _ := time.ParseDuration(m[1])
				if at > time.Second || at < 0 {
					t.Fatalf("-from 1s started at %v", at)
				}
				// The held past comes out at once: more pictures by 1 s after the first than
				// 1 s of the stream holds.
				n := 0
				for _, p := range pictures {
					if p.Sub(pictures[0]) <= time.Second {
						n++
					}
				}
				if n <= preset.FrameRate {
					t.Fatalf("%d pictures came out in the first second from %v: the past was not written first", n, at)
				}
			}
		})
	}
}

// waitBlocks waits until b has appended n blocks (the test fails when ctx ends first).
func waitBlocks(ctx context.Context, t *testing.T, b *session.Broadcaster, n uint64) {
	t.Helper()
	for b.Snapshot().Blocks < n {
		select {
		case <-ctx.Done():
			t.Fatalf("the broadcaster appended only %d blocks: %+v", b.Snapshot().Blocks, b.Snapshot())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startTestBroadcast goes live on loopback with the test camera and microphone, free of
// charge; the broadcaster stops when the test ends.
func startTestBroadcast(ctx context.Context, t *testing.T, preset broadcast.Preset) *session.Broadcaster {
	t.Helper()
	cfg := testBroadcastConfig(t, t.TempDir(), preset)
	cfg.Name, cfg.Description = "pipe", "to stdout"
	b, err := session.NewBroadcaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })
	return b
}

// testBroadcastConfig is a free stream from the test camera and microphone, its data in
// root, listening on loopback.
func testBroadcastConfig(t *testing.T, root string, preset broadcast.Preset) session.BroadcasterConfig {
	t.Helper()
	vd, err := capture.TestDevice(capture.Camera)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := capture.TestDevice(capture.Microphone)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := session.OpenDataDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return session.BroadcasterConfig{Data: sd, Secrets: secrets.NewMemory(), Name: "test", Preset: preset,
		Video: &vd, Audio: &ad, Price: price.Price{},
		Network: session.NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, LAN: true, Public: true}}
}

// TestWatchNoPlayToFile runs `watch -no-play -o FILE` (download only) against a live
// broadcaster: the stream's header is fetched although nothing plays, the blocks are stored
// as they come, and the file written at the end is WebM that ffmpeg decodes without a
// message.
func TestWatchNoPlayToFile(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (make test installs it): %v", err)
	}
	t.Setenv(EnvPassphrase, "correct horse")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	preset := broadcast.Low
	preset.KeyFrameInterval = time.Second
	b := startTestBroadcast(ctx, t, preset)
	// The watch joins a stream already under way: its header was appended long before, and
	// only a viewer that asks for it gets it.
	waitBlocks(ctx, t, b, 60)
	cardText := b.Card().String()
	tmp := t.TempDir()
	out := filepath.Join(tmp, "watched.webm")
	var outb, errb xtest.SyncBuffer
	code := Run(ctx, []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc"),
		"watch", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0", "-duration", "5s", "-no-play", "-o", out, cardText}, strings.NewReader(""), &outb, &errb)
	if code != 0 {
		t.Fatalf("watch -no-play -o exited %d:\n%s\n%s", code, outb.String(), errb.String())
	}
	if !strings.Contains(outb.String(), "wrote ") {
		t.Fatalf("watch did not say it wrote the file:\n%s\n%s", outb.String(), errb.String())
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", out, "-f", "framecrc", "-")
	got, err := cmd.Output()
	var ffErr string
	if ee, ok := err.(*exec.ExitError); ok {
		ffErr = string(ee.Stderr)
	}
	if err != nil || ffErr != "" {
		t.Fatalf("ffmpeg on %s: %v\n%s", out, err, ffErr)
	}
	pictures := 0
	for l := range strings.Lines(string(got)) {
		if strings.HasPrefix(l, "0,") {
			pictures++
		}
	}
	if pictures < 10 {
		t.Fatalf("ffmpeg decoded %d pictures from %s\n%s", pictures, out, outb.String())
	}
	t.Logf("%d pictures in %s; watch said:\n%s", pictures, out, outb.String())
}

// watch refuses contradictory or malformed flags before it reads the card or dials anyone.
func TestWatchUsage(t *testing.T) {
	text := testCard(t).String()
	free := testCard(t)
	free.Price, free.Methods, free.Network = price.Free, nil, ""
	freeText := free.String()
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"minutes and sats", []string{"watch", "-minutes", "5", "-sats", "100", text}, "give -minutes or -sats, not both"},
		{"bad -from", []string{"watch", "-from", "soon", text}, "-from:"},
		{"no card", []string{"watch"}, "usage: watch"},
		// A free stream has no time to buy: the flags would be ignored.
		{"minutes on a free stream", []string{"watch", "-minutes", "5", freeText}, "this stream is free: there is no time to buy"},
		{"sats on a free stream", []string{"watch", "-sats", "100", freeText}, "leave out -minutes, -sats and -method"},
		{"a method on a free stream", []string{"watch", "-method", "lightning", freeText}, "this stream is free"},
		// A method that does not exist is refused as such, whatever the stream's terms.
		{"an unknown method on a free stream", []string{"watch", "-method", "paypal", freeText}, `-method is lightning, onchain or any, not "paypal"`},
		{"an unknown method", []string{"watch", "-method", "paypal", text}, `-method is lightning, onchain or any, not "paypal"`},
		{"negative duration", []string{"watch", "-duration", "-1s", text}, "-duration -1s cannot be negative"},
	}
	for _, tc := range cases {
		r := run(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.err, tc.wantErr) || r.out != "" {
			t.Errorf("%s: code %d (want 2)\nstdout: %s\nstderr: %s", tc.name, r.code, r.out, r.err)
		}
	}
}

// `seek` past the live edge says it follows the live edge instead of naming the edge's time
// as if it were the time asked for; a seek inside the stream names where it starts, and with
// -no-play says that the download (not playback) goes on from there.
func TestWatchSeekPastLive(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse") // stdin is for the commands
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startTestBroadcast(ctx, t, broadcast.Low)
	waitBlocks(ctx, t, b, 30)
	tmp := t.TempDir()
	in, typed := io.Pipe()
	var outb, errb xtest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc"),
			"watch", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0", "-no-play", b.Card().String()}, in, &outb, &errb)
	}()
	say := func(line, want string) {
		t.Helper()
		if _, err := io.WriteString(typed, line+"\n"); err != nil {
			t.Fatal(err)
		}
		for !strings.Contains(outb.String(), want) {
			select {
			case code := <-done:
				t.Fatalf("watch ended (%d) before saying %q:\n%s\n%s", code, want, outb.String(), errb.String())
			case <-ctx.Done():
				t.Fatalf("watch never said %q:\n%s\n%s", want, outb.String(), errb.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	say("seek 1h", "1h0m0s is past the live edge (")
	say("seek 0:00", "downloading from 0s") // -no-play: nothing plays, the download moves
	if strings.Contains(outb.String(), "resumed") {
		t.Fatalf("a stream never resumed is said to be:\n%s", outb.String())
	}
	say("quit", "")
	typed.Close()
	if code := <-done; code != 0 {
		t.Fatalf("watch exited %d:\n%s\n%s", code, outb.String(), errb.String())
	}
}

// `watch -no-play -from T` downloads from T (the key frame at or before it) and says so; before,
// -from was accepted, ignored, and the command said it was playing from T.
func TestWatchNoPlayFrom(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startTestBroadcast(ctx, t, broadcast.Low)
	waitBlocks(ctx, t, b, 30)
	tmp := t.TempDir()
	var outb, errb xtest.SyncBuffer
	code := Run(ctx, []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc"),
		"watch", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0", "-duration", "5s", "-no-play", "-from", "0:00", b.Card().String()},
		strings.NewReader(""), &outb, &errb)
	if code != 0 {
		t.Fatalf("watch -no-play -from exited %d:\n%s\n%s", code, outb.String(), errb.String())
	}
	if !strings.Contains(outb.String(), "downloading from 0s") || strings.Contains(outb.String(), "playing from") {
		t.Fatalf("watch -no-play -from 0:00 said:\n%s", outb.String())
	}
}

// A card with no name and no description: watch shows "(no name)" as card inspect does, and
// no empty line for the description; `streams` then lists the watched stream as "(no name)",
// not as "". The status lines, stderr being no terminal, come as whole lines but not every
// second (the seller, on an unreachable test address, is never reached).
func TestWatchBlankCard(t *testing.T) {
	t.Setenv(EnvPassphrase, "correct horse")
	c := testCard(t)
	c.Name, c.Description, c.Price, c.Methods, c.Network = "", "", price.Free, nil, ""
	tmp := t.TempDir()
	global := []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	r := run(t, "", append(global, "watch", "-lan", "-listen", "/ip4/127.0.0.1/tcp/0", "-no-play", "-duration", "5s", c.String())...)
	if r.code != 0 || !strings.HasPrefix(r.out, "(no name)\nTerms: Free\n") {
		t.Fatalf("watch: code %d\nstdout: %q\nstderr: %s", r.code, r.out, r.err)
	}
	if n := strings.Count(r.err, "downloaded "); n < 1 || n > 7 {
		t.Fatalf("%d status lines in 5 s (want about a line a second, and one more on a change of state):\n%s", n, r.err)
	}
	r = run(t, "", append(global, "streams")...)
	if r.code != 0 || !strings.Contains(r.out, "  (no name)  ") || strings.Contains(r.out, `""`) {
		t.Fatalf("streams: code %d\n%s\n%s", r.code, r.out, r.err)
	}
}

// A number of minutes past what one invoice buys stays past it, whatever its size: `buy
// 4294967297` must not wrap to one minute.
func TestBuyMinutesDoesNotWrap(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want uint32
	}{{0, 0}, {90, 90}, {session.MaxBuyMinutes, session.MaxBuyMinutes}, {session.MaxBuyMinutes + 1, session.MaxBuyMinutes + 1}, {1<<32 + 1, session.MaxBuyMinutes + 1}, {math.MaxUint64, session.MaxBuyMinutes + 1}} {
		if got := buyMinutes(tt.n); got != tt.want {
			t.Errorf("buyMinutes(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// watch reads a card named by a file as card inspect does: at most a card's size (a device
// that never ends is refused, not read into memory), and a directory or a missing file is
// said as such, not as "not a card".
func TestWatchCardFromFile(t *testing.T) {
	tmp := t.TempDir()
	global := []string{"-data-dir", filepath.Join(tmp, "data"), "-secrets", "file", "-secrets-file", filepath.Join(tmp, "secrets.enc")}
	t.Setenv(EnvPassphrase, "correct horse")
	for _, tt := range []struct{ arg, want string }{
		{"/dev/zero", "/dev/zero holds more than 65536 bytes, more than any card"},
		{tmp, "is a directory; give a card, a file holding one, or -"},
		{filepath.Join(tmp, "missing.card"), "and there is no file named"},
	} {
		r := run(t, "", append(global, "watch", "-no-play", tt.arg)...)
		if r.code == 0 || !strings.Contains(r.err, tt.want) {
			t.Errorf("watch %s: code %d, stderr %q; want it to say %q", tt.arg, r.code, r.err, tt.want)
		}
	}
}
