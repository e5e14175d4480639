package ui

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/dazaarvision/dazaar-vision/media/playback"
)

// videoView draws the player's frames: a canvas.Raster whose generator returns the newest
// frame's image (no copy, no new image per frame), kept at the picture's aspect ratio.
//
// ShowFrame runs on the player's goroutine. It parks the frame in pending and asks Fyne's
// goroutine to draw once; while a draw is queued, a newer frame replaces the parked one, which
// is released (counted in Dropped). So at most one draw is queued whatever the frame rate, and
// a window that paints slowly costs the player nothing.
//
// The view measures how long a picture takes from its due time to the screen (the wait for
// Fyne's next paint, then the paint) and tells the player (DisplayLatency), which hands
// pictures over that much early: they are on screen at their time, in step with the sound.
//
// While the window is hidden or minimised (windowHidden, which Run keeps up to date), the
// player decodes no picture (Watched) and a frame that still arrives is released at once, not
// drawn: a minimised window would otherwise go on painting every picture (Fyne does not know
// it is minimised). The sound plays on, and the picture is current again as soon as the
// window is shown.
type videoView struct {
	do     func(func())
	raster *canvas.Raster
	// bars are the black letterbox beside or above and below the picture (before the first
	// picture the first covers the whole area). Only the bars are filled, never the area
	// behind the picture: Fyne draws a rectangle with a per-pixel shader (rounded corners,
	// strokes), and a black rectangle under a 720p picture cost llvmpipe about 0.15 core
	// at 30 pictures a second, more than a third of the drawing (BENCHMARKS.md).
	bars    [2]*canvas.Rectangle
	overlay *widget.Label
	// overlayBg is the band behind overlay's text.
	overlayBg *canvas.Rectangle
	obj       *fyne.Container

	pending atomic.Pointer[playback.Frame]
	closed  atomic.Bool
	shown   atomic.Int64
	dropped atomic.Int64
	hidden  atomic.Int64 // frames not drawn because the window was hidden
	// lead is the display latency the player is told (nanoseconds): a running median of
	// "on screen - due", moved a leadStep towards each new measurement (Fyne's goroutine
	// writes it, the player's reads it).
	lead atomic.Int64

	// Fyne's goroutine only.
	cur     *playback.Frame
	painted *playback.Frame // the frame generate last gave the painter
	w, h    int
	blank   *image.RGBA
}

// windowHidden is set while the app's window is not viewable (minimised or hidden): see
// Run. One window per process; tests that build screens without Run leave it false.
var windowHidden atomic.Bool

// EnvFrameLog names a file that gets a line per picture the video view sees (measurements:
// app/ui's BenchmarkPaintLatency): "h PTS T" when the player handed it over, "d PTS T" when
// it was due on screen (the player hands it over early by DisplayLatency), "g PTS T" when
// the window's paint took it, "p PTS T" once that paint was on screen (the buffers swapped:
// the next turn of Fyne's loop), "x PTS T" replaced by a newer one before it was drawn, "s
// PTS T" not drawn, the window being hidden. PTS is the picture's time in the stream and T
// the wall clock, both in nanoseconds (T since the Unix epoch).
const EnvFrameLog = "DV_UI_FRAME_LOG"

var (
	frameLogOnce sync.Once
	frameLogFile *os.File
)

// openFrameLog opens the frame log once; nil when there is none.
func openFrameLog() *os.File {
	frameLogOnce.Do(func() {
		if name := os.Getenv(EnvFrameLog); name != "" {
			frameLogFile, _ = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		}
	})
	return frameLogFile
}

// frameLog writes one line to the frame log, if there is one: one write a line (O_APPEND),
// from the player's goroutine and Fyne's.
func frameLog(kind byte, pts time.Duration) { frameLogAt(kind, pts, time.Now()) }

// frameLogAt writes a frame log line for time at.
func frameLogAt(kind byte, pts time.Duration, at time.Time) {
	if f := openFrameLog(); f != nil {
		fmt.Fprintf(f, "%c %d %d\n", kind, int64(pts), at.UnixNano())
	}
}

// leadStep is how far one painted picture moves the display latency estimate: at 30
// pictures a second it follows a change of 15 ms within a second, and its noise is this.
// maxLead bounds it (the player bounds it again).
const (
	leadStep = 500 * time.Microsecond
	maxLead  = 100 * time.Millisecond
)

func newVideoView(do func(func())) *videoView {
	v := &videoView{do: do, blank: image.NewRGBA(image.Rect(0, 0, 1, 1))}
	v.raster = canvas.NewRaster(v.generate)
	v.raster.ScaleMode = canvas.ImageScaleFastest
	v.bars[0], v.bars[1] = canvas.NewRectangle(color.Black), canvas.NewRectangle(color.Black)
	v.overlay = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	v.overlay.Wrapping = fyne.TextWrapWord
	// The text sits on a band of the theme's background, so it reads in either theme over
	// a black or a bright picture (the light theme's dark text was grey on the black).
	bg := theme.Color(theme.ColorNameBackground)
	r, g, b, _ := bg.RGBA()
	v.overlayBg = canvas.NewRectangle(color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0xe0})
	v.overlayBg.CornerRadius = theme.InputRadiusSize()
	v.overlay.Hide()
	v.overlayBg.Hide()
	band := container.NewPadded(container.NewStack(v.overlayBg, v.overlay))
	v.obj = newContainer(&aspectLayout{v: v}, v.bars[0], v.bars[1], v.raster, container.NewVBox(layout.NewSpacer(), band, layout.NewSpacer()))
	return v
}

func newContainer(l fyne.Layout, objs ...fyne.CanvasObject) *fyne.Container {
	return &fyne.Container{Layout: l, Objects: objs}
}

// Watched implements playback.Watched: while the window is hidden or minimised the player
// does not decode pictures at all (it decodes the few it kept once the window is shown again).
func (v *videoView) Watched() bool { return !windowHidden.Load() }

// DisplayLatency implements playback.DisplayLatency: how long a picture handed over at its
// due time takes to be on screen here (the median, measured).
func (v *videoView) DisplayLatency() time.Duration { return time.Duration(v.lead.Load()) }

// onScreen moves the display latency estimate after a picture due at due reached the
// screen now (Fyne's goroutine): the median of the lateness seen, one step at a time.
func (v *videoView) onScreen(due, now time.Time) {
	lead := time.Duration(v.lead.Load())
	if now.After(due) {
		lead = min(lead+leadStep, maxLead)
	} else {
		lead = max(lead-leadStep, 0)
	}
	v.lead.Store(int64(lead))
}

// ShowFrame implements playback.FrameSink.
func (v *videoView) ShowFrame(f *playback.Frame) {
	if v.closed.Load() {
		f.Release()
		return
	}
	logged := openFrameLog() != nil
	if logged {
		frameLog('h', f.PTS)
		if !f.Due.IsZero() {
			frameLogAt('d', f.PTS, f.Due)
		}
	}
	if windowHidden.Load() {
		if logged {
			frameLog('s', f.PTS)
		}
		f.Release()
		v.hidden.Add(1)
		return
	}
	if old := v.pending.Swap(f); old != nil {
		if logged {
			frameLog('x', old.PTS)
		}
		old.Release() // a draw is queued and will take f instead
		v.dropped.Add(1)
		return
	}
	v.do(v.draw)
}

// draw shows the parked frame (Fyne's goroutine).
func (v *videoView) draw() {
	f := v.pending.Swap(nil)
	if f == nil {
		return
	}
	if v.closed.Load() {
		f.Release()
		return
	}
	old := v.cur
	v.cur = f
	if b := f.Image.Bounds(); b.Dx() != v.w || b.Dy() != v.h {
		v.w, v.h = b.Dx(), b.Dy()
		v.obj.Refresh()
		v.obj.Layout.Layout(v.obj.Objects, v.obj.Size())
	}
	v.raster.Refresh()
	v.shown.Add(1)
	if old != nil {
		old.Release() // its pixels were uploaded when it was painted
	}
}

func (v *videoView) generate(_, _ int) image.Image {
	if v.cur == nil {
		return v.blank
	}
	if v.cur != v.painted {
		v.painted = v.cur
		pts, due, logged := v.cur.PTS, v.cur.Due, openFrameLog() != nil
		if logged {
			frameLog('g', pts)
		}
		if logged || !due.IsZero() {
			// Runs on Fyne's goroutine after this paint, once the buffers are swapped.
			v.do(func() {
				if logged {
					frameLog('p', pts)
				}
				if !due.IsZero() {
					v.onScreen(due, time.Now())
				}
			})
		}
	}
	return v.cur.Image
}

// setOverlay shows text over the picture (empty hides it).
func (v *videoView) setOverlay(s string) {
	if v.overlay.Text == s {
		return
	}
	v.overlay.SetText(s)
	if s == "" {
		v.overlay.Hide()
		v.overlayBg.Hide()
	} else {
		v.overlay.Show()
		v.overlayBg.Show()
	}
}

// release gives every frame back (Fyne's goroutine); frames arriving later are released at
// once.
func (v *videoView) release() {
	v.closed.Store(true)
	if f := v.pending.Swap(nil); f != nil {
		f.Release()
	}
	if v.cur != nil {
		v.cur.Release()
		v.cur = nil
	}
	v.painted = nil
	v.raster.Refresh()
}

// aspectLayout centres the picture at its aspect ratio between black bars.
type aspectLayout struct{ v *videoView }

func (a *aspectLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
	top, bottom := a.v.bars[0], a.v.bars[1]
	w, h := float32(a.v.w), float32(a.v.h)
	if w == 0 || h == 0 || size.Width == 0 || size.Height == 0 {
		bottom.Resize(fyne.NewSize(0, 0)) // no picture: the first bar is the whole area
		return
	}
	fit := fyne.NewSize(size.Width, size.Width*h/w)
	if fit.Height > size.Height {
		fit = fyne.NewSize(size.Height*w/h, size.Height)
	}
	pos := fyne.NewPos((size.Width-fit.Width)/2, (size.Height-fit.Height)/2)
	a.v.raster.Resize(fit)
	a.v.raster.Move(pos)
	if pos.Y > 0 { // bars above and below
		top.Resize(fyne.NewSize(size.Width, pos.Y))
		bottom.Move(fyne.NewPos(0, pos.Y+fit.Height))
		bottom.Resize(fyne.NewSize(size.Width, size.Height-pos.Y-fit.Height))
	} else { // bars to the left and right
		top.Resize(fyne.NewSize(pos.X, size.Height))
		bottom.Move(fyne.NewPos(pos.X+fit.Width, 0))
		bottom.Resize(fyne.NewSize(size.Width-pos.X-fit.Width, size.Height))
	}
}

func (a *aspectLayout) MinSize([]fyne.CanvasObject) fyne.Size { return fyne.NewSize(320, 180) }
