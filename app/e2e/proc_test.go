package e2e

import (
	"bufio"
	"context"
	"fmt"
	"github.com/dazaarvision/dazaar-vision/internal/xtest"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dv-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "dazaar-vision")
	build := xtest.GoCommand(context.Background(), "build", "-o", binary, "../..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build the binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// line is one line a process printed, when it arrived.
type line struct {
	text string
	at   time.Time
	err  bool // from stderr
}

// proc is the binary running as a child process, its output read line by line.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []line
	more  chan struct{}
	done  chan struct{}
}

func start(t *testing.T, name, dataDir string, args ...string) *proc {
	t.Helper()
	full := append([]string{"-data-dir", dataDir, "-secrets", "file", "-secrets-file", filepath.Join(dataDir, "secrets.enc")}, args...)
	cmd := exec.Command(binary, full...)
	cmd.Env = append(os.Environ(), "DAZAAR_VISION_PASSPHRASE=e2e test passphrase")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{t: t, name: name, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, _ := cmd.StdoutPipe()
	errp, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range []struct {
		r   io.Reader
		err bool
	}{{out, false}, {errp, true}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(r.r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				p.mu.Lock()
				p.lines = append(p.lines, line{sc.Text(), time.Now(), r.err})
				p.mu.Unlock()
				select {
				case p.more <- struct{}{}:
				default:
				}
			}
		}()
	}
	go func() { wg.Wait(); cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("--- %s output:\n%s", p.name, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.lines {
		if strings.HasPrefix(l.text, "ALSA lib") {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", l.at.Format("15:04:05.000"), l.text)
	}
	return b.String()
}

// wait returns the first line after index from matching re (its submatches), waiting up to d.
func (p *proc) wait(from int, re *regexp.Regexp, d time.Duration) (int, []string, time.Time) {
	p.t.Helper()
	deadline := time.After(d)
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i].text); m != nil {
				at := p.lines[i].at
				p.mu.Unlock()
				return i + 1, m, at
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q", p.name, re)
		case <-deadline:
			p.t.Fatalf("%s did not print %q within %v", p.name, re, d)
		}
	}
}

func (p *proc) send(s string) {
	if _, err := io.WriteString(p.stdin, s+"\n"); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

var storedRE = regexp.MustCompile(`^(\d\d:\d\d:\d\d\.\d\d\d) .* (\d+) blocks stored .* decoded (\d+) frames`)

// stored lists a viewer's status lines: when, blocks stored, frames decoded.
func (p *proc) stored() (at []time.Time, blocks, frames []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if m := storedRE.FindStringSubmatch(l.text); m != nil {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			f, _ := strconv.ParseInt(m[3], 10, 64)
			at, blocks, frames = append(at, l.at), append(blocks, n), append(frames, f)
		}
	}
	return
}

// held waits for the process's first status line and returns the blocks its newest one says
// it stores.
func (p *proc) held(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, b, _ := p.stored(); len(b) > 0 {
			return b[len(b)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no status line in 30 s", p.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firstHeld waits for the process's first status line and returns the blocks it says it stores.
func (p *proc) firstHeld(t *testing.T) int64 {
	t.Helper()
	p.held(t)
	_, b, _ := p.stored()
	return b[0]
}
