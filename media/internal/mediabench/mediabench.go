// Package mediabench holds media's benchmarks (bench_test.go): VP8 encoding and decoding
// per quality preset, and capture-to-decoded latency, each next to mediadevices' own
// codecs measured in the same run. scripts/bench.d/media.sh runs them for `make bench`
// and prints the ratios.
package mediabench

import (
	"image"
	"sort"
	"time"

	"github.com/pion/mediadevices/pkg/driver"
	_ "github.com/pion/mediadevices/pkg/driver/videotest" // the test camera
	"github.com/pion/mediadevices/pkg/prop"
)

// Frames returns n pictures from mediadevices' videotest driver at w×h (4:2:2, with its
// moving noise), copied so that they can be replayed as fast as an encoder takes them.
func Frames(w, h, n int) ([]*image.YCbCr, error) {
	var d driver.Driver
	for _, c := range driver.GetManager().Query(driver.FilterDeviceType(driver.Camera)) {
		if c.Info().Label == "VideoTest" {
			d = c
		}
	}
	if err := d.Open(); err != nil {
		return nil, err
	}
	defer d.Close()
	r, err := d.(driver.VideoRecorder).VideoRecord(prop.Media{Video: prop.Video{Width: w, Height: h, FrameRate: 1000}})
	if err != nil {
		return nil, err
	}
	out := make([]*image.YCbCr, n)
	for i := range out {
		img, release, err := r.Read()
		if err != nil {
			return nil, err
		}
		y := *img.(*image.YCbCr)
		y.Y, y.Cb, y.Cr = append([]byte(nil), y.Y...), append([]byte(nil), y.Cb...), append([]byte(nil), y.Cr...)
		out[i] = &y
		release()
	}
	return out, nil
}

// Percentile returns the p-th percentile (0 to 100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}
