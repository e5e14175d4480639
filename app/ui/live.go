package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/internal/human"
)

// liveScreen: the card (text, QR, Copy), live figures, the sales list, Stop.
type liveScreen struct {
	u    *UI
	w    worker
	b    *session.Broadcaster
	card card.Card

	root     fyne.CanvasObject
	top      *fyne.Container
	cardText *widget.Entry
	qr       *canvas.Image
	copyBtn  *widget.Button
	stopBtn  *widget.Button
	figures  *widget.Label // all the figures as one text (tests read it)
	values   []*widget.Label
	figBox   *fyne.Container
	sales    *fyne.Container
	shown    []session.Sale // the sales drawn
	status   *widget.Label
	stopping bool
	preview  *videoView // nil: no picture (an audio-only stream, or a test)
}

// showLive shows broadcast b; preview (may be nil) is the video view b draws its pictures in,
// released when b has stopped.
func (u *UI) showLive(b *session.Broadcaster, preview *videoView) {
	l := &liveScreen{u: u, w: newWorker(u), b: b, card: b.Card(), preview: preview}
	l.build()
	u.show(l)
	l.watch()
}

func (l *liveScreen) content() fyne.CanvasObject { return l.root }

// close leaves the screen: a broadcast still running is stopped (on a goroutine: capture and
// the network take a moment to close).
func (l *liveScreen) close() {
	l.w.cancel()
	if !l.stopping {
		l.stopping = true
		l.shutdown(nil)
	}
}

// shutdown stops the broadcast on a goroutine, then, on the UI's goroutine, releases the
// preview (no picture comes after Stop) and calls then (if not nil) with the final figures.
// Every way off the screen goes through it once: Stop broadcasting, a failure, leaving.
func (l *liveScreen) shutdown(then func(session.BroadcastFigures)) {
	b, preview := l.b, l.preview
	l.u.goDo(func() {
		b.Stop()
		f := b.Snapshot()
		l.u.do(func() {
			if preview != nil {
				preview.release()
			}
			if then != nil {
				then(f)
			}
		})
	})
}

func (l *liveScreen) build() {
	c := l.card
	title := c.Name
	if title == "" {
		title = "Your stream"
	}
	head := widget.NewRichTextFromMarkdown("## You are live: " + mdEscape(title))
	terms := widget.NewLabel(c.Terms())
	l.cardText = widget.NewMultiLineEntry()
	l.cardText.SetText(c.String())
	l.cardText.Wrapping = fyne.TextWrapBreak
	l.cardText.SetMinRowsVisible(5)
	l.cardText.OnChanged = func(string) { l.cardText.SetText(c.String()) } // read-only, yet selectable
	l.copyBtn = widget.NewButtonWithIcon("Copy card", theme.ContentCopyIcon(), func() {
		l.u.app.Clipboard().SetContent(c.String())
		l.status.SetText("The card is on the clipboard: send it to your viewers.")
	})
	l.copyBtn.Importance = widget.HighImportance
	l.qr = canvas.NewImageFromResource(nil)
	l.qr.FillMode = canvas.ImageFillContain
	l.qr.ScaleMode = canvas.ImageScalePixels
	l.qr.SetMinSize(fyne.NewSize(240, 240))
	qrNote := widget.NewLabel("")
	if png, err := session.QRPNG(c.String(), 512); err == nil {
		l.qr.Resource = fyne.NewStaticResource("card.png", png)
	} else {
		qrNote.SetText("This card is too long for a QR code: copy its text instead.")
	}
	l.stopBtn = widget.NewButtonWithIcon("Stop broadcasting", theme.MediaStopIcon(), l.stop)
	l.stopBtn.Importance = widget.DangerImportance
	l.figures = widget.NewLabel("")
	names := []string{"State", "Viewers", "Earned", "Uploaded", "Encoder", "Stream"}
	grid := container.New(layout.NewFormLayout())
	for _, n := range names {
		v := widget.NewLabel("…")
		v.Truncation = fyne.TextTruncateEllipsis
		l.values = append(l.values, v)
		grid.Add(widget.NewLabelWithStyle(n, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true}))
		grid.Add(v)
	}
	l.sales = container.NewVBox(widget.NewLabel(noSalesText(c)))
	l.status = wrapLabel("Share the card: anyone who has it can find this stream.")
	cardBox := container.NewVBox(heading("The stream's card"), l.cardText, container.NewHBox(l.copyBtn), container.NewCenter(l.qr), qrNote)
	if l.preview != nil {
		// What viewers see, decoded from the stream as it is appended.
		cardBox.Objects = append([]fyne.CanvasObject{heading("What viewers see"), l.preview.obj}, cardBox.Objects...)
	}
	l.figBox = container.NewVBox(heading("Now"), grid, widget.NewSeparator(), heading("Sales"), l.sales)
	l.top = container.NewHBox(head, layout.NewSpacer(), l.stopBtn)
	top := container.NewVBox(l.top, terms, widget.NewSeparator())
	l.root = container.NewBorder(top, l.status, nil, nil,
		container.NewHSplit(container.NewVScroll(container.NewPadded(cardBox)), container.NewVScroll(container.NewPadded(l.figBox))))
}

func noSalesText(c card.Card) string {
	if c.Price.IsFree() {
		return "A free stream: nothing to sell."
	}
	return "No payments yet."
}

func mdEscape(s string) string {
	r := strings.NewReplacer("*", `\*`, "_", `\_`, "#", `\#`, "[", `\[`, "]", `\]`, "`", "\\`")
	return r.Replace(s)
}

// watch draws the session's figures every second and its events as they come.
func (l *liveScreen) watch() {
	b := l.b
	l.w.goDo(func(ctx context.Context) {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		update := func() {
			f, sales := b.Snapshot(), b.Sales()
			l.u.do(func() {
				if ctx.Err() == nil {
					l.render(f, sales)
				}
			})
		}
		update()
		for {
			select {
			case <-ctx.Done():
				return
			case <-b.Done():
				err := b.Err()
				l.u.do(func() {
					if ctx.Err() == nil {
						l.ended(err)
					}
				})
				return
			case ev := <-b.Events():
				if ev.Kind == session.EventViewer || ev.Kind == session.EventPayment || ev.Kind == session.EventError {
					text := ev.Time.Format("15:04:05 ") + ev.Text
					if ev.Viewer != "" {
						text += " (" + shortID(ev.Viewer) + ")"
					}
					l.u.do(func() {
						if ctx.Err() == nil {
							l.status.SetText(text)
						}
					})
				}
				if ev.Kind == session.EventPayment {
					update()
				}
			case <-t.C:
				update()
			}
		}
	})
}

// render shows the figures and the sales.
func (l *liveScreen) render(f session.BroadcastFigures, sales []session.Sale) {
	earned := f.Earned()
	live := "live"
	if !f.Live {
		live = "stopped"
	} else if !f.Since.IsZero() {
		live = "live for " + human.Duration(time.Since(f.Since))
	}
	vals := []string{live, fmt.Sprintf("%d (paying %d)", f.Viewers, f.Paying), earned, human.Bytes(f.BytesUp),
		fmt.Sprintf("%.0f frames a second, video %.0f kbit/s, sound %.0f kbit/s", f.FPS, f.VideoKbps, f.AudioKbps),
		fmt.Sprintf("%d blocks, %s", f.Blocks, human.Bytes(f.FeedBytes))}
	var all strings.Builder
	for i, v := range vals {
		setLabel(l.values[i], v)
		fmt.Fprintf(&all, "%s: %s\n", []string{"State", "Viewers", "Earned", "Uploaded", "Encoder", "Stream"}[i], v)
	}
	l.figures.Text = all.String()
	if slices.Equal(sales, l.shown) {
		return // a sale that changed state (provisional → settled, revoked) is drawn again
	}
	l.shown = slices.Clone(sales)
	l.sales.RemoveAll()
	if len(sales) == 0 {
		l.sales.Add(widget.NewLabel(noSalesText(l.card)))
		l.figBox.Refresh()
		return
	}
	sales = slices.Clone(sales)
	slices.Reverse(sales) // newest first
	for i, s := range sales {
		if i == 50 {
			l.sales.Add(widget.NewLabel(fmt.Sprintf("… and %d earlier", len(sales)-50)))
			break
		}
		what := fmt.Sprintf("%d sats by %s for %s of video · %s · %v", s.Msat/1000, s.Method, human.Duration(time.Duration(s.Millis)*time.Millisecond), shortID(s.Viewer), s.State)
		if s.AwaitingConfirmation() {
			// Seen, and worth nothing until confirmed (no viewing before a confirmation):
			// not "0 sats for 0 s", which reads as a payment of nothing.
			what = fmt.Sprintf("%s payment seen, waiting for its confirmation · %s", s.Method, shortID(s.Viewer))
		}
		if !s.At.IsZero() {
			what = s.At.Local().Format("Jan 2 15:04") + " · " + what
		}
		if s.Note != "" {
			what += " · " + s.Note
		}
		lb := widget.NewLabel(what)
		lb.Truncation = fyne.TextTruncateEllipsis
		l.sales.Add(lb)
	}
	l.figBox.Refresh()
}

// stop ends the broadcast on a goroutine and goes Home when it has stopped.
func (l *liveScreen) stop() {
	if l.stopping {
		return
	}
	l.stopping = true
	l.stopBtn.Disable()
	l.status.SetText("Stopping: closing the camera and the connections…")
	id := l.b.ID()
	l.shutdown(func(f session.BroadcastFigures) {
		if l.u.cur == l {
			l.u.showHomeWith(fmt.Sprintf("Stopped. The stream holds %d blocks (%s); resume it below under the same card (%s).", f.Blocks, human.Bytes(f.FeedBytes), shortID(id)))
		}
	})
}

// ended: the session stopped by itself (a failure).
func (l *liveScreen) ended(err error) {
	if l.stopping {
		return
	}
	l.stopping = true
	l.stopBtn.Disable()
	msg := "The broadcast stopped."
	if err != nil {
		msg = "The broadcast stopped: " + err.Error()
	}
	l.status.SetText(msg)
	l.values[0].SetText("stopped")
	l.shutdown(nil) // what the session left open, and the preview's last picture
	home := widget.NewButtonWithIcon("Home", theme.HomeIcon(), func() { l.u.showHomeWith(msg) })
	l.top.Add(home)
}
