package ui

import (
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"go.uber.org/goleak"

	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestScreensLeakNothing opens each screen in one window, lets it work, goes back Home (which
// closes it), and checks that the goroutines it started ended: the wizard (devices listed,
// the test camera's preview), the watch view's paste stage, the watch view on a paid card
// (a viewer session dialling a seller that is not there), Settings, and the live view of a
// free broadcast with the test devices (stopped with its button).
func TestScreensLeakNothing(t *testing.T) {
	defer checkLeaks(t)()
	h := newHarness(t, test.NewTempApp(t), Options{})
	defer h.close()
	h.waitFor("Home's lists", func() bool { return strings.Contains(h.screenText(), "None yet. Go live") })
	base := append(leakOptions(), goleak.IgnoreCurrent())

	home := func() {
		h.u.showHome()
		h.waitFor("Home's lists", func() bool {
			txt := h.screenText()
			return !strings.Contains(txt, "Loading your streams") && !strings.Contains(txt, "Loading the streams you watched")
		})
	}
	screens := []struct {
		name string
		open func()
	}{
		{"go live wizard", func() {
			h.u.showGoLive("")
			g := h.u.cur.(*goLiveScreen)
			h.waitFor("the devices", func() bool { return len(g.video.Options) > 1 })
			test.Tap(g.next)
			for i, o := range g.video.Options {
				if strings.HasPrefix(o, "Test camera") {
					g.video.SetSelectedIndex(i) // starts the preview
				}
			}
			h.pumpFor(time.Second)
		}},
		{"watch: paste", func() {
			h.u.showWatch("")
			h.mustShow("Watch a stream")
			h.pumpFor(200 * time.Millisecond)
		}},
		{"watch: a paid card, seller absent", func() {
			h.u.showWatch(paidCard(t).String())
			h.mustShow("Alice's garden, live", "[Stop watching]")
			h.pumpFor(2 * time.Second)
		}},
		{"settings", func() {
			h.u.showSettings()
			h.pumpFor(500 * time.Millisecond)
		}},
		{"live view", func() {
			h.u.showGoLive("")
			g := h.u.cur.(*goLiveScreen)
			f := session.GoLive{Name: "Leak check", Quality: "low", Price: price.Price{}}
			video, audio := session.Sources()
			for i := range video {
				if video[i].Test {
					f.Video = &video[i]
				}
			}
			for i := range audio {
				if audio[i].Test {
					f.Audio = &audio[i]
				}
			}
			g.startForm(f)
			h.waitFor("the live view", func() bool { _, ok := h.u.cur.(*liveScreen); return ok })
			h.pumpFor(time.Second)
			test.Tap(h.u.cur.(*liveScreen).stopBtn)
			h.waitFor("Home after stopping", func() bool { _, ok := h.u.cur.(*homeScreen); return ok })
		}},
	}
	for _, sc := range screens {
		sc.open()
		home()
		if err := h.settled(base, 30*time.Second); err != nil {
			t.Errorf("after closing the %s: %v", sc.name, err)
			base = append(leakOptions(), goleak.IgnoreCurrent()) // judge the next screen alone
		}
	}
}

// pumpFor runs Fyne's queue for d.
func (h *harness) pumpFor(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		h.pump()
		time.Sleep(10 * time.Millisecond)
	}
}

// settled pumps Fyne's queue until no goroutine but those opts ignore runs, or until d.
func (h *harness) settled(opts []goleak.Option, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		h.pump()
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(end) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
