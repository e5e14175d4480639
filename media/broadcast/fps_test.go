package broadcast

import (
	"image"
	"testing"
	"time"

	"github.com/pion/mediadevices/pkg/io/video"

	"github.com/dazaarvision/dazaar-vision/media/internal/memfeed"
	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
)

// TestPresetFrameRates measures the encoder's frame rate at each preset from the test
// camera, as it is (its noise strip: random pixels, new every picture) and with a
// camera-like moving scene painted over each picture at the camera's own pace. The
// pictures captured (encoded + dropped by rate control) come at the preset's rate either
// way on a quiet machine (BENCHMARKS.md; a loaded one captures fewer, so the test does not
// bound them from below), so capture pacing and scaling keep up; the scene loses no picture to rate control,
// while the noise strip at Low's 300 kbit/s makes libvpx drop about half (without
// dropping it would spend 1.8× the bit rate even at the coarsest quantizer: see
// BENCHMARKS.md "Media playback"), which is why the test camera shows ~7 fps at Low.
func TestPresetFrameRates(t *testing.T) {
	const secs = 4
	for _, preset := range Presets() {
		for _, source := range []string{"test camera", "scene"} {
			vs, as := openTestSources(t, preset)
			if source == "scene" {
				// A one-second loop drawn beforehand: drawing costs more than capture, at 720p.
				scene := testpattern.NewScene(preset.Width, preset.Height)
				clip := make([]*image.YCbCr, preset.FrameRate)
				for i := range clip {
					clip[i] = scene.Frame(i, nil)
				}
				inner, n := vs.Reader, 0
				vs.Reader = video.ReaderFunc(func() (image.Image, func(), error) {
					img, release, err := inner.Read()
					if err != nil {
						return img, release, err
					}
					if b := img.Bounds(); b.Dx() != preset.Width || b.Dy() != preset.Height {
						t.Errorf("the test camera gave a picture of %v", b)
					}
					release()
					n++
					return clip[n%len(clip)], func() {}, nil // the camera's pace, the scene's picture
				})
			}
			feed := memfeed.New()
			start := time.Now()
			b := run(t, Config{Preset: preset, Video: vs, Audio: as, Sink: feed}, secs*time.Second, nil)
			took := time.Since(start).Seconds()
			st := b.Stats()
			encoded, captured := float64(st.VideoFrames)/took, float64(st.VideoFrames+st.RateDroppedFrames)/took
			t.Logf("%s, %s: encoded %.1f fps, captured %.1f fps (preset %d), rate control dropped %d; video %.0f kbit/s (target %d)",
				preset.Name, source, encoded, captured, preset.FrameRate, st.RateDroppedFrames, float64(st.VideoBytes*8)/took/1000, preset.VideoBitRate/1000)
			// A shared machine may capture fewer pictures (how many depends on its load, so
			// no lower bound here: the figures in BENCHMARKS.md come from a quiet run), never
			// more than the preset's rate.
			if captured > float64(preset.FrameRate)*1.1 {
				t.Errorf("%s, %s: captured %.1f fps, preset %d", preset.Name, source, captured, preset.FrameRate)
			}
			// Rate control keeps a camera-like scene whole: at most 5 % of its pictures
			// dropped (and one, whatever the count), however slowly they came.
			if frames := st.VideoFrames + st.RateDroppedFrames; source == "scene" && st.RateDroppedFrames > max(1, frames/20) {
				t.Errorf("%s: rate control dropped %d of %d pictures of a camera-like scene", preset.Name, st.RateDroppedFrames, frames)
			}
		}
	}
}
