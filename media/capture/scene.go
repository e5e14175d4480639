package capture

import (
	"context"
	"image"
	"io"
	"time"

	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"

	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
)

// sceneLabel is the test scene's driver label: a camera-like moving picture (a panning
// textured background, soft discs crossing it, sensor noise), for trying the app and
// measuring it where mediadevices' test camera is no camera-like load. Its noise strip
// (random pixels, new every picture) costs an encoder far more than a camera does, so at
// 1280×720 and 2.5 Mbit/s rate control drops a third of its pictures; the scene loses none.
const sceneLabel = "TestScene"

func init() {
	driver.GetManager().Register(&sceneDriver{}, driver.Info{Label: sceneLabel, Name: "Test scene (moving picture)", DeviceType: driver.Camera})
}

// SceneDevice returns the test scene, a second test camera (see sceneLabel).
func SceneDevice() (Device, error) {
	for _, d := range Devices() {
		if IsScene(d) {
			return d, nil
		}
	}
	return Device{}, ErrNoDevice
}

// IsScene says whether d is the test scene.
func IsScene(d Device) bool { return d.Label == sceneLabel }

// sceneDriver draws each picture when it is due (about 0.4 ms at 1280×720).
type sceneDriver struct {
	cancel context.CancelFunc
	done   <-chan struct{}
}

func (d *sceneDriver) Open() error {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, ctx.Done()
	return nil
}

func (d *sceneDriver) Close() error {
	if d.cancel != nil {
		d.cancel()
	}
	return nil
}

func (d *sceneDriver) Properties() []prop.Media {
	return []prop.Media{{Video: prop.Video{Width: 1280, Height: 720, FrameFormat: frame.FormatI420, FrameRate: 30}}}
}

// VideoRecord starts the scene at p's size (even sizes: 4:2:0) and rate; Read waits for
// each picture's time, paced from the first (a late Read does not shift the rest), and
// returns io.EOF once the driver is closed. The picture is reused: valid until the next Read.
func (d *sceneDriver) VideoRecord(p prop.Media) (video.Reader, error) {
	w, h := max(2, p.Width&^1), max(2, p.Height&^1)
	rate := float64(p.FrameRate)
	if rate <= 0 {
		rate = 30
	}
	every := time.Duration(float64(time.Second) / rate)
	scene := testpattern.NewScene(w, h)
	done := d.done
	var img *image.YCbCr
	var start time.Time
	n := 0
	return video.ReaderFunc(func() (image.Image, func(), error) {
		if start.IsZero() {
			start = time.Now()
		}
		due := start.Add(time.Duration(n) * every)
		if late := time.Since(due); late > every {
			n += int(late / every) // a reader that fell behind gets the current picture
			due = start.Add(time.Duration(n) * every)
		}
		t := time.NewTimer(time.Until(due))
		select {
		case <-done:
			t.Stop()
			return nil, func() {}, io.EOF
		case <-t.C:
		}
		img = scene.Frame(n, img)
		n++
		return img, func() {}, nil
	}), nil
}
