package e2e

import (
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testCameraLuma is the luma of the picture mediadevices' test camera (videotest) draws at
// w×h outside its noise corner: seven colour bars at 75 % over the top three quarters, a grey
// ramp under the left five sevenths. The noise corner (bottom right) is marked false in mask.
func testCameraLuma(w, h int) (luma []byte, mask []bool) {
	bars := [7]uint16{235, 210, 170, 145, 107, 82, 41}
	luma, mask = make([]byte, w*h), make([]bool, w*h)
	barsEnd, rampEnd := h*3/4, w*5/7
	for y := range h {
		for x := range w {
			i := y*w + x
			switch {
			case y < barsEnd:
				luma[i], mask[i] = uint8(bars[x*7/w]*75/100), true
			case x < rampEnd:
				luma[i], mask[i] = uint8(x*255/rampEnd), true
			}
		}
	}
	return luma, mask
}

// videoPSNR decodes every tenth picture of a WebM file with ffmpeg (grey, the stored size)
// and returns each one's luma PSNR against the test camera's picture, in dB; mirrored, against
// that picture flipped left to right (a control: the same bars in the wrong places).
func videoPSNR(t *testing.T, file string, mirrored bool) []float64 {
	t.Helper()
	probe, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
		"-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var w, h int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(probe)), "%d,%d", &w, &h); err != nil || w <= 0 || h <= 0 {
		t.Fatalf("ffprobe said %q", probe)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", file, "-vf", `select=not(mod(n\,10))`, "-fps_mode", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "gray", "-")
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", file, err, stderr.Bytes())
	}
	ref, mask := testCameraLuma(w, h)
	if mirrored {
		for y := range h {
			slices.Reverse(ref[y*w : (y+1)*w])
			slices.Reverse(mask[y*w : (y+1)*w])
		}
	}
	var out []float64
	for len(raw) >= w*h {
		pic := raw[:w*h]
		raw = raw[w*h:]
		var se float64
		var n int
		for i, in := range mask {
			if in {
				d := float64(pic[i]) - float64(ref[i])
				se += d * d
				n++
			}
		}
		mse := se / float64(n)
		out = append(out, 10*math.Log10(255*255/math.Max(mse, 1e-9)))
	}
	return out
}

// checkTestCamera fails t unless the pictures in file are the test camera's: every sampled
// picture at least min dB, their median at least median dB, and the median at least 10 dB
// above the same pictures' against the mirrored test picture (so the figure tells the right
// picture from a wrong one on this content and bit rate).
func checkTestCamera(t *testing.T, file string, min, median float64) {
	t.Helper()
	ps, ctl := videoPSNR(t, file, false), videoPSNR(t, file, true)
	if len(ps) < 3 {
		t.Fatalf("only %d pictures sampled from %s", len(ps), file)
	}
	s := slices.Clone(ps)
	slices.Sort(s)
	slices.Sort(ctl)
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(strconv.FormatFloat(p, 'f', 1, 64) + " ")
	}
	t.Logf("luma PSNR against the test camera, every 10th picture (dB): %s; against it mirrored: median %.1f", b.String(), ctl[len(ctl)/2])
	if s[0] < min || s[len(s)/2] < median || s[len(s)/2]-ctl[len(ctl)/2] < 10 {
		t.Fatalf("the watched video is not the broadcaster's test camera: PSNR lowest %.1f dB (want ≥ %.0f), median %.1f (want ≥ %.0f, and ≥ 10 above the mirrored picture's %.1f)",
			s[0], min, s[len(s)/2], median, ctl[len(ctl)/2])
	}
}
