package ui

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/dazaarvision/dazaar-vision/assets"
	"github.com/dazaarvision/dazaar-vision/internal/human"
)

// homeScreen: Go live and Watch; my streams to resume; recently watched streams.
type homeScreen struct {
	u *UI
	w worker

	root   fyne.CanvasObject
	status *widget.Label // the secret store, or a message from the last screen
	// storeText is what status says of the secret store (replaced when the store's state
	// changes; a message from the last screen is not).
	storeText string
	mine      *fyne.Container
	watched   *fyne.Container
	goLive    *widget.Button
	watch     *widget.Button
	settings  *widget.Button
}

func (u *UI) showHome() { u.showHomeWith("") }

// showHomeWith opens Home with a message (what the last screen did).
func (u *UI) showHomeWith(msg string) {
	h := &homeScreen{u: u, w: newWorker(u)}
	h.build(msg)
	u.show(h)
	h.load()
}

func (h *homeScreen) content() fyne.CanvasObject { return h.root }
func (h *homeScreen) close()                     { h.w.cancel() }

func (h *homeScreen) build(msg string) {
	icon := canvas.NewImageFromResource(assets.Icon)
	icon.FillMode = canvas.ImageFillContain
	icon.SetMinSize(fyne.NewSize(96, 96))
	title := widget.NewRichTextFromMarkdown("# Welcome to **Dazaar** Vision")
	sub := widget.NewLabel("Paid peer-to-peer live video. Choose how you want to use Dazaar Vision.")
	h.goLive = widget.NewButtonWithIcon("Go live", theme.MediaRecordIcon(), func() { h.u.showGoLive("") })
	h.goLive.Importance = widget.HighImportance
	h.watch = widget.NewButtonWithIcon("Watch", theme.MediaPlayIcon(), func() { h.u.showWatch("") })
	h.watch.Importance = widget.HighImportance
	h.settings = widget.NewButtonWithIcon("Settings", theme.SettingsIcon(), func() { h.u.showSettings() })
	h.status = widget.NewLabel(msg)
	h.status.Wrapping = fyne.TextWrapWord
	h.refreshStore()
	h.mine = container.NewVBox(widget.NewLabel("Loading your streams…"))
	h.watched = container.NewVBox(widget.NewLabel("Loading the streams you watched…"))
	head := container.NewBorder(nil, nil, icon, nil, container.NewVBox(title, sub))
	buttons := container.NewHBox(h.goLive, h.watch, layout.NewSpacer(), h.settings)
	lists := container.NewGridWithColumns(2,
		container.NewBorder(heading("My streams"), nil, nil, nil, container.NewVScroll(h.mine)),
		container.NewBorder(heading("Recently watched"), nil, nil, nil, container.NewVScroll(h.watched)))
	h.root = container.NewBorder(container.NewVBox(head, buttons, h.status, widget.NewSeparator()), nil, nil, nil,
		container.NewPadded(lists))
}

// refreshStore shows whether the secret store is open (it is opened on a goroutine at start,
// and again when something needs it after it could not be).
func (h *homeScreen) refreshStore() {
	u := h.u
	if h.status.Text != "" && h.status.Text != h.storeText {
		return // a message from the last screen stays
	}
	switch {
	case u.store != nil:
		h.storeText = "Secrets: " + u.store.Description()
	case u.storeErr != nil:
		h.storeText = storeMessage(u.storeErr)
	default:
		h.storeText = "Opening the secret store…"
	}
	h.status.SetText(h.storeText)
}

func heading(s string) fyne.CanvasObject {
	l := widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	return l
}

type homeLists struct {
	mine    []session.StreamRecord
	watched []session.WatchedRecord
}

// load reads my streams and the watched ones from the data directory off Fyne's goroutine.
func (h *homeScreen) load() {
	async(h.w, func(context.Context) (homeLists, error) {
		var l homeLists
		var err1, err2 error
		l.mine, err1 = h.u.opts.Data.MyStreams()
		l.watched, err2 = h.u.opts.Data.Watched()
		return l, errors.Join(err1, err2)
	}, func(l homeLists, err error) { h.fill(l, err) })
}

func (h *homeScreen) fill(l homeLists, err error) {
	h.mine.RemoveAll()
	h.watched.RemoveAll()
	if len(l.mine) == 0 {
		h.mine.Add(wrapLabel("None yet. Go live, and your streams are listed here to resume under the same card."))
	}
	for _, s := range l.mine {
		id := s.ID
		title := strings.TrimSpace(s.Name)
		if title == "" {
			title = "Untitled stream"
		}
		info := fmt.Sprintf("%s · %s · %s · last live %s", shortID(s.ID), priceText(s.Price), human.Bytes(s.Bytes), ago(s.LastLive))
		b := widget.NewButtonWithIcon("Resume", theme.MediaRecordIcon(), func() { h.u.showGoLive(id) })
		h.mine.Add(row(title, s.Description, info, b))
	}
	if len(l.watched) == 0 {
		h.watched.Add(wrapLabel("None yet. Paste a stream's card into Watch, and it is listed here to open again."))
	}
	for _, w := range l.watched {
		c := w.Card
		title := strings.TrimSpace(w.Name)
		if title == "" {
			title = "Untitled stream"
		}
		terms := ""
		if cd, err := card.Parse(w.Card); err == nil {
			terms = cd.Terms() + " · "
		}
		info := fmt.Sprintf("%s%s stored · watched %s · %s", terms, human.Bytes(w.Bytes), ago(w.LastWatched), invoices(len(w.Purchases)))
		b := widget.NewButtonWithIcon("Watch again", theme.MediaPlayIcon(), func() { h.u.showWatch(c) })
		h.watched.Add(row(title, w.Description, info, b))
	}
	if err != nil {
		h.mine.Add(wrapLabel("Some records could not be read: " + err.Error()))
	}
}

func row(title, desc, info string, b *widget.Button) fyne.CanvasObject {
	t := widget.NewLabelWithStyle(title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	t.Truncation = fyne.TextTruncateEllipsis
	lines := container.NewVBox(t)
	if desc = strings.TrimSpace(desc); desc != "" {
		d := widget.NewLabel(desc)
		d.Truncation = fyne.TextTruncateEllipsis
		lines.Add(d)
	}
	i := widget.NewLabel(info)
	i.Truncation = fyne.TextTruncateEllipsis
	i.Importance = widget.LowImportance
	lines.Add(i)
	return container.NewBorder(nil, widget.NewSeparator(), nil, container.NewCenter(b), lines)
}

func wrapLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Wrapping = fyne.TextWrapWord
	return l
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:8] + "…" + id[len(id)-4:]
	}
	return id
}

func priceText(p string) string {
	if p == "" || p == "free" {
		return "free"
	}
	return p
}

// ago says how long ago t was, roughly.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return t.Format("2 Jan 2006")
}

// invoices says how many invoices were asked for (not how many were paid: the seller knows).
func invoices(n int) string {
	if n == 1 {
		return "1 invoice"
	}
	return fmt.Sprintf("%d invoices", n)
}
