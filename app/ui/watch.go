package ui

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/internal/human"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

const (
	methodLightning = "Lightning"
	methodOnChain   = "On-chain bitcoin"
)

// watchScreen: paste a card, then the terms, buying time (presets, calculator, invoice QR
// with Copy and Open in wallet), the video, the countdown, go to start / pause / go live, and
// the seller's reason when it stops sending.
type watchScreen struct {
	u *UI
	w worker

	root fyne.CanvasObject
	body *fyne.Container

	// Pasting a card.
	pasteStage fyne.CanvasObject
	paste      *widget.Entry
	pasteErr   *widget.Label
	clipOffer  *fyne.Container

	// Watching.
	card      card.Card
	v         *session.Viewer
	video     *videoView
	status    *widget.Label
	countdown *widget.Label
	figures   *widget.Label
	pauseBtn  *widget.Button
	startBtn  *widget.Button
	liveBtn   *widget.Button
	topUpBtn  *widget.Button
	stopBtn   *widget.Button
	buyBox    *fyne.Container // the buy panel (scrolls)
	buyPanel  fyne.CanvasObject
	chooser   *fyne.Container // presets and calculator; hidden while an invoice is shown
	minutes   *widget.Entry
	calc      *widget.Label
	method    *widget.Select
	presets   []presetButton // the preset buttons, each with its price
	buyErr    *widget.Label
	invoice   *fyne.Container
	inv       *session.Invoice
	asked     session.BuyRequest // the request of the invoice being asked for or shown
	invQR     *canvas.Image      // the shown invoice's QR, its way to pay, and what replaces
	invPay    *fyne.Container    // them once it expired
	invExpiry *fyne.Container
	expNote   *widget.Label
	renewBtn  *widget.Button
	expired   bool // the shown invoice expired
	buying    bool
	topUp     bool // the buy panel was opened with Top up
	everPaid  bool // paid time was granted at least once (so a refusal means it ran out)
	state     session.ViewState
	lastFigs  session.ViewFigures
	stopping  bool
	lastEvent string
	autoBuy   bool // Options.BuyMinutes was asked for
	payBtn    *widget.Button
	now       func() time.Time // the view's clock (nil: the wall clock); tests move it
}

// showWatch opens the watch view; with a card it starts watching at once.
func (u *UI) showWatch(cardText string) {
	s := &watchScreen{u: u, w: newWorker(u)}
	s.build()
	u.show(s)
	if cardText != "" {
		s.paste.SetText(cardText)
		s.open()
		return
	}
	u.win.Canvas().Focus(s.paste)
	s.offerClipboard()
}

func (s *watchScreen) content() fyne.CanvasObject { return s.root }

func (s *watchScreen) close() {
	s.w.cancel()
	s.stopViewer(nil)
}

func (s *watchScreen) build() {
	s.paste = widget.NewMultiLineEntry()
	s.paste.SetPlaceHolder("Paste a stream's card here (Ctrl+V): dzv1…")
	s.paste.Wrapping = fyne.TextWrapBreak
	s.paste.SetMinRowsVisible(6)
	s.pasteErr = wrapLabel("")
	s.pasteErr.Importance = widget.DangerImportance
	s.clipOffer = container.NewVBox()
	watchBtn := widget.NewButtonWithIcon("Watch", theme.MediaPlayIcon(), s.open)
	watchBtn.Importance = widget.HighImportance
	home := widget.NewButtonWithIcon("Home", theme.HomeIcon(), func() { s.u.showHome() })
	pasteStage := container.NewVBox(
		widget.NewRichTextFromMarkdown("## Watch a stream"),
		widget.NewLabel("A stream's card is the one text its broadcaster shares. Paste it to see the terms and watch."),
		s.paste, container.NewHBox(watchBtn), s.pasteErr, s.clipOffer)
	s.pasteStage = container.NewPadded(pasteStage)
	s.body = container.NewStack(s.pasteStage)
	s.root = container.NewBorder(container.NewHBox(home), nil, nil, nil, s.body)
}

// offerClipboard offers a card found on the clipboard.
func (s *watchScreen) offerClipboard() {
	text := strings.TrimSpace(s.u.app.Clipboard().Content())
	if text == "" || len(text) > 64<<10 {
		return
	}
	c, err := card.Parse(text)
	if err != nil {
		return
	}
	name := c.Name
	if name == "" {
		name = "a stream"
	}
	use := widget.NewButtonWithIcon("Watch it", theme.ContentPasteIcon(), func() {
		s.paste.SetText(text)
		s.open()
	})
	s.clipOffer.Add(widget.NewSeparator())
	s.clipOffer.Add(container.NewBorder(nil, nil, nil, use,
		wrapLabel(fmt.Sprintf("A card is on the clipboard: %s (%s)", name, c.Terms()))))
}

// open parses the pasted card and starts watching.
func (s *watchScreen) open() {
	c, err := card.Parse(s.paste.Text)
	if err != nil {
		s.pasteErr.SetText(cardError(err))
		return
	}
	s.pasteErr.SetText("")
	s.card = c
	s.buildWatching()
	// The card field is gone: let go of the keyboard, or the space bar would type into it
	// instead of pausing (tapping Watch leaves the focus where it was).
	s.u.win.Canvas().Unfocus()
	s.u.withStoreOr(func(store *secrets.Store) {
		if s.w.ctx.Err() != nil || s.stopping {
			return // left while the store opened: no viewer for a screen that is gone
		}
		s.startViewer(store)
	}, s.storeFailed)
}

// storeFailed goes back to the card when the secret store could not be opened (a wrong
// passphrase, or Cancel): watching needs it, and Watch asks for the passphrase again.
func (s *watchScreen) storeFailed(err error) {
	if s.w.ctx.Err() != nil || s.stopping {
		return
	}
	if s.video != nil {
		s.video.release()
		s.video = nil
	}
	s.body.Objects = []fyne.CanvasObject{s.pasteStage}
	s.body.Refresh()
	s.pasteErr.SetText(storeMessage(err) + " Tap Watch to unlock your secrets and watch.")
}

// cardError puts card.Parse's error in a sentence.
func cardError(err error) string {
	return "This card cannot be used: " + err.Error()
}

func (s *watchScreen) buildWatching() {
	c := s.card
	title := c.Name
	if title == "" {
		title = "A stream"
	}
	head := widget.NewRichTextFromMarkdown("## " + mdEscape(title))
	desc := wrapLabel(c.Description)
	terms := widget.NewLabelWithStyle(c.Terms(), fyne.TextAlignLeading, fyne.TextStyle{Italic: true})
	s.stopBtn = widget.NewButtonWithIcon("Stop watching", theme.CancelIcon(), func() { s.stopViewer(func() { s.u.showHome() }) })
	s.video = newVideoView(s.u.do)
	s.video.setOverlay("Looking for the seller…")
	s.status = wrapLabel("Looking for the seller…")
	s.countdown = widget.NewLabelWithStyle("", fyne.TextAlignTrailing, fyne.TextStyle{Monospace: true})
	s.figures = widget.NewLabel("")
	s.figures.Importance = widget.LowImportance
	s.figures.Truncation = fyne.TextTruncateEllipsis
	s.startBtn = widget.NewButtonWithIcon("Go to start", theme.MediaSkipPreviousIcon(), func() { s.control(func(v *session.Viewer) { v.GoToStart() }) })
	s.pauseBtn = widget.NewButtonWithIcon("Pause", theme.MediaPauseIcon(), s.togglePause)
	s.liveBtn = widget.NewButtonWithIcon("Go live", theme.MediaSkipNextIcon(), func() { s.control(func(v *session.Viewer) { v.GoLive() }) })
	s.topUpBtn = widget.NewButtonWithIcon("Top up", theme.ContentAddIcon(), func() { s.topUp = !s.topUp; s.render(s.lastFigs, s.state) })
	controls := container.NewHBox(s.startBtn, s.pauseBtn, s.liveBtn, layout.NewSpacer(), s.countdown, s.topUpBtn)
	bottom := container.NewVBox(controls, s.status, s.figures)
	top := container.NewBorder(nil, nil, nil, s.stopBtn, container.NewVBox(head, terms))
	if c.Description != "" {
		top = container.NewBorder(nil, nil, nil, s.stopBtn, container.NewVBox(head, desc, terms))
	}
	s.buildBuy()
	center := container.NewBorder(nil, nil, nil, s.buyPanel, s.video.obj)
	s.body.Objects = []fyne.CanvasObject{container.NewBorder(top, bottom, nil, nil, center)}
	s.body.Refresh()
	if c.Price.IsFree() {
		s.topUpBtn.Hide()
	}
	s.render(session.ViewFigures{}, session.ViewConnecting)
}

// buildBuy makes the panel that buys time: presets, the calculator and the invoice.
func (s *watchScreen) buildBuy() {
	p := s.card.Price
	s.buyBox = container.NewVBox()
	panel := newContainer(fixedWidth(330), container.NewVScroll(s.buyBox)) // scrolls on a short window
	s.buyPanel = panel
	if p.IsFree() {
		s.buyBox.Hide()
		panel.Hide()
		return
	}
	presets := container.NewGridWithColumns(2)
	for _, pr := range p.Presets(price.DefaultPresetDurations) {
		mins := uint32(pr.Duration / time.Minute)
		b := widget.NewButton(fmt.Sprintf("%s · %d sats", human.Duration(pr.Duration), pr.Sats), func() { s.buy(mins) })
		s.presets = append(s.presets, presetButton{b, pr.Sats})
		presets.Add(b)
	}
	s.minutes = widget.NewEntry()
	s.minutes.SetText("10")
	if only := s.card.Methods; len(only) == 1 && only[0] == card.OnChain {
		// A seller on-chain only: start at an amount it takes.
		if n := session.OnChainMinMinutes(p); n > 10 {
			s.minutes.SetText(strconv.FormatUint(uint64(n), 10))
		}
	}
	s.calc = widget.NewLabel("")
	s.minutes.OnChanged = func(string) { s.updateCalc() }
	s.minutes.OnSubmitted = func(string) { s.buyTyped() }
	get := widget.NewButtonWithIcon("Get invoice", theme.ConfirmIcon(), s.buyTyped)
	get.Importance = widget.HighImportance
	var methods []string
	if slices.Contains(s.card.Methods, card.Lightning) {
		methods = append(methods, methodLightning)
	}
	if slices.Contains(s.card.Methods, card.OnChain) {
		methods = append(methods, methodOnChain)
	}
	s.method = widget.NewSelect(methods, func(string) { s.updateCalc() })
	if len(methods) > 0 {
		s.method.SetSelectedIndex(0)
	}
	if len(methods) < 2 {
		s.method.Hide()
	}
	s.buyErr = wrapLabel("")
	s.buyErr.Importance = widget.DangerImportance
	s.buyErr.Hide()
	s.invoice = container.NewVBox()
	s.updateCalc()
	minutesRow := container.NewBorder(nil, nil, nil, widget.NewLabel("minutes"), s.minutes)
	s.chooser = container.NewVBox(presets, minutesRow, s.calc, s.method, get)
	s.buyBox.Objects = []fyne.CanvasObject{heading("Buy time (you pay only for video delivered)"), s.chooser, s.buyErr, s.invoice}
	s.buyBox.Refresh()
}

// typedMinutes is the calculator's number of minutes.
func (s *watchScreen) typedMinutes() (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s.minutes.Text), 10, 32)
	if err != nil && errors.Is(err, strconv.ErrRange) || err == nil && n > session.MaxBuyMinutes {
		return 0, fmt.Errorf("at most a week (%d minutes) can be bought at once", session.MaxBuyMinutes)
	}
	if err != nil || n == 0 {
		return 0, fmt.Errorf("type a whole number of minutes")
	}
	return uint32(n), nil
}

// presetButton is a preset's button and what it costs.
type presetButton struct {
	b    *widget.Button
	sats uint64
}

// onChainChosen reports whether the invoice asked for will be on-chain (chosen, or the only
// way the seller takes).
func (s *watchScreen) onChainChosen() bool {
	return s.method != nil && s.method.Selected == methodOnChain
}

func (s *watchScreen) updateCalc() {
	if s.calc == nil {
		return // the method's first selection, while the panel is built
	}
	onChain := s.onChainChosen()
	for _, pb := range s.presets {
		// On-chain payments start at a minimum: a preset under it would only be refused.
		if onChain && pb.sats < session.OnChainMinSats {
			pb.b.Disable()
		} else {
			pb.b.Enable()
		}
	}
	n, err := s.typedMinutes()
	if err != nil {
		s.calc.SetText(err.Error())
		return
	}
	sats, err := s.card.Price.CostSats(time.Duration(n) * time.Minute)
	if err != nil {
		s.calc.SetText("That is more than can be paid at once.")
		return
	}
	unit := "minutes"
	if n == 1 {
		unit = "minute"
	}
	text := fmt.Sprintf("%d %s = %d sats", n, unit, sats)
	if onChain && sats < session.OnChainMinSats {
		text += fmt.Sprintf(". On-chain payments start at %d sats: %d minutes", session.OnChainMinSats, session.OnChainMinMinutes(s.card.Price))
	}
	s.calc.SetText(text)
}

func (s *watchScreen) buyTyped() {
	n, err := s.typedMinutes()
	if err != nil {
		s.setBuyErr(err.Error())
		return
	}
	s.buy(n)
}

// buy asks the seller for an invoice for minutes by the chosen method.
func (s *watchScreen) buy(minutes uint32) {
	req := session.BuyRequest{Minutes: minutes}
	if s.method.Selected == methodOnChain {
		req.Method = session.BuyOnChain
	}
	s.request(req)
}

// request asks the seller for an invoice on a goroutine (up to 30 s).
func (s *watchScreen) request(req session.BuyRequest) {
	v := s.v
	if v == nil {
		s.setBuyErr("Not connected to the seller yet: wait a moment, then try again.")
		return
	}
	if s.buying {
		return
	}
	s.buying = true
	s.asked = req
	s.setBuyErr("")
	s.invoice.Objects = []fyne.CanvasObject{widget.NewProgressBarInfinite(), widget.NewLabel("Asking the seller for an invoice…")}
	s.invoice.Refresh()
	async(s.w, func(ctx context.Context) (session.Invoice, error) { return v.Buy(ctx, req) },
		func(inv session.Invoice, err error) {
			s.buying = false
			if err != nil {
				s.invoice.RemoveAll()
				s.setBuyErr(err.Error())
				return
			}
			s.showInvoice(inv)
		})
}

// showInvoice draws the invoice: QR, amount, what it buys, Copy and Open in wallet; and, hidden
// until it expires (render), what replaces them then.
func (s *watchScreen) showInvoice(inv session.Invoice) {
	s.inv, s.expired = &inv, false
	qr := canvas.NewImageFromResource(nil)
	if len(inv.QRPNG) > 0 {
		qr.Resource = fyne.NewStaticResource("invoice.png", inv.QRPNG)
	}
	qr.FillMode = canvas.ImageFillContain
	qr.ScaleMode = canvas.ImageScalePixels
	qr.SetMinSize(fyne.NewSize(180, 180))
	what := fmt.Sprintf("Pay %d sats for %s of video. The invoice expires at %s. %s", inv.Sats, human.Duration(inv.Media),
		inv.Expires.Format("15:04"), startsText(inv))
	text := inv.Bolt11
	if text == "" {
		text = inv.Address
	}
	copyBtn := widget.NewButtonWithIcon("Copy invoice", theme.ContentCopyIcon(), func() {
		s.u.app.Clipboard().SetContent(copyText(inv))
		s.setBuyErr("Copied: paste it into your wallet.")
	})
	open := widget.NewButtonWithIcon("Open in wallet", theme.ComputerIcon(), func() {
		u, err := url.Parse(inv.URI)
		if err == nil {
			err = s.u.app.OpenURL(u)
		}
		if err != nil {
			s.setBuyErr("No wallet opened it: copy the invoice and paste it into your wallet. (" + err.Error() + ")")
		}
	})
	open.Importance = widget.HighImportance
	code := widget.NewLabel(shortInvoice(text))
	code.Importance = widget.LowImportance
	other := widget.NewButtonWithIcon("Another amount", theme.NavigateBackIcon(), s.clearInvoice)
	s.invPay = container.NewVBox()
	s.payBtn = nil
	if p := s.u.opts.Payer; p != nil && inv.Bolt11 != "" {
		// The demo's one click: pay from its simnet test wallet (the button has the keyboard,
		// so Space pays too).
		s.payBtn = widget.NewButtonWithIcon("Pay with the demo wallet", theme.ConfirmIcon(), func() { s.payDemo(p, inv.Bolt11) })
		s.payBtn.Importance = widget.SuccessImportance
		s.invPay.Add(s.payBtn)
	}
	s.invPay.Add(container.NewHBox(copyBtn, open))
	// Once it expired: the same amount again, by the same method.
	again := s.asked
	if again.Minutes == 0 { // shown without asking (tests): what it buys, in whole minutes
		again = session.BuyRequest{Minutes: uint32(max(inv.Media.Round(time.Minute)/time.Minute, 1)), Method: inv.Method}
	}
	s.expNote = wrapLabel("")
	s.renewBtn = widget.NewButtonWithIcon("New invoice for "+human.Duration(time.Duration(again.Minutes)*time.Minute), theme.ViewRefreshIcon(),
		func() { s.clearInvoice(); s.request(again) })
	s.renewBtn.Importance = widget.HighImportance
	s.invExpiry = container.NewVBox(s.expNote, s.renewBtn)
	s.invExpiry.Hide()
	s.invQR = qr
	s.invoice.Objects = []fyne.CanvasObject{container.NewCenter(qr), wrapLabel(what), code, s.invPay, s.invExpiry, other}
	s.invoice.Refresh()
	s.chooser.Hide()
	s.buyBox.Refresh()
	s.u.log.Info("invoice shown", "sats", inv.Sats, "media", inv.Media, "uri", inv.URI)
	if s.payBtn != nil {
		s.u.win.Canvas().Focus(s.payBtn)
	}
}

// startsText says when the video starts once the invoice is paid: an on-chain payment counts
// once it is confirmed in a block.
func startsText(inv session.Invoice) string {
	switch {
	case inv.Bolt11 == "":
		return "Video starts once the payment is confirmed in a block."
	case inv.Address != "":
		return "Video starts once the seller sees a Lightning payment, or once an on-chain payment is confirmed in a block."
	}
	return "Video starts once the seller sees the payment."
}

// expireInvoice stops offering the shown invoice for payment once it expired: its QR and ways to
// pay go, and a note says so, with a button for a new invoice for the same amount (render keeps
// the note up to date).
func (s *watchScreen) expireInvoice() {
	s.expired = true
	if s.payBtn != nil && s.u.win.Canvas().Focused() == s.payBtn {
		s.u.win.Canvas().Unfocus() // Space would pay it
	}
	s.invQR.Hide()
	s.invPay.Hide()
	s.invExpiry.Show()
	s.invoice.Refresh()
	s.buyBox.Refresh()
}

// expiredNote says the shown invoice expired; when a payment was seen (it waits for its
// confirmation) it offers no new invoice, which would be paid twice.
func (s *watchScreen) expiredNote(seen bool) {
	at := s.inv.Expires.Format("15:04")
	if seen {
		setLabel(s.expNote, "This invoice expired at "+at+". A payment was seen: it counts once it is confirmed in a block.")
		if s.renewBtn.Visible() {
			s.renewBtn.Hide()
		}
		return
	}
	setLabel(s.expNote, "This invoice expired at "+at+"; it can no longer be paid.")
	if !s.renewBtn.Visible() {
		s.renewBtn.Show()
	}
}

// timeNow is the view's clock.
func (s *watchScreen) timeNow() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// payDemo pays the invoice from the demo's wallet on a goroutine.
func (s *watchScreen) payDemo(p Payer, bolt11 string) {
	btn := s.payBtn
	btn.Disable()
	s.setBuyErr("Paying from the demo wallet…")
	async(s.w, func(ctx context.Context) (struct{}, error) { return struct{}{}, p.Pay(ctx, bolt11) },
		func(_ struct{}, err error) {
			if s.payBtn != btn {
				return // the invoice went meanwhile (paid time arrived, another amount)
			}
			if err != nil {
				btn.Enable()
				s.setBuyErr("The demo wallet could not pay: " + err.Error())
				return
			}
			s.setBuyErr("Paid from the demo wallet: video starts once the seller sees the payment.")
		})
}

// clearInvoice goes back to choosing an amount.
func (s *watchScreen) clearInvoice() {
	s.inv, s.payBtn, s.expired = nil, nil, false
	s.invoice.RemoveAll()
	s.chooser.Show()
	s.setBuyErr("")
	s.buyBox.Refresh()
}

// setBuyErr shows a message under the buy panel (hidden when empty, to keep the panel short).
func (s *watchScreen) setBuyErr(text string) {
	s.buyErr.SetText(text)
	if text == "" {
		s.buyErr.Hide()
	} else {
		s.buyErr.Show()
	}
	s.buyBox.Refresh()
}

// copyText is what Copy puts on the clipboard: the bare Lightning invoice, or the bitcoin URI.
func copyText(inv session.Invoice) string {
	if inv.Bolt11 != "" {
		return inv.Bolt11
	}
	return inv.URI
}

func shortInvoice(s string) string {
	if len(s) > 36 {
		return s[:24] + "…" + s[len(s)-8:]
	}
	return s
}

// startViewer starts the session on a goroutine, then draws it 4 times a second.
func (s *watchScreen) startViewer(store *secrets.Store) {
	v, err := session.NewViewer(session.ViewerConfig{Data: s.u.opts.Data, Secrets: store, Card: s.card,
		Network: s.u.opts.Network, Frames: s.video, Logger: s.u.log})
	if err != nil {
		s.status.SetText(err.Error())
		s.video.setOverlay(err.Error())
		return
	}
	ctx := s.w.ctx
	s.u.goDo(func() {
		err := v.Start(s.u.ctx)
		s.u.do(func() {
			if err != nil {
				s.status.SetText("Cannot watch: " + err.Error())
				s.video.setOverlay("Cannot watch: " + err.Error())
				return
			}
			if ctx.Err() != nil || s.stopping { // the screen was left meanwhile
				s.u.goDo(func() { v.Stop() })
				return
			}
			s.v = v
			s.follow(v)
		})
	})
}

// follow draws the session's figures and events.
func (s *watchScreen) follow(v *session.Viewer) {
	s.w.goDo(func(ctx context.Context) {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-v.Done():
				return
			case ev := <-v.Events():
				if ev.Kind == session.EventError || ev.Kind == session.EventAccess || ev.Kind == session.EventConnection {
					text := ev.Text
					s.u.do(func() {
						if ctx.Err() == nil {
							s.lastEvent = text
						}
					})
				}
			case <-t.C:
			}
			f := v.Snapshot()
			s.u.do(func() {
				if ctx.Err() == nil {
					s.render(f, f.State())
				}
			})
		}
	})
}

// render draws the watch view for figures f in state st.
func (s *watchScreen) render(f session.ViewFigures, st session.ViewState) {
	prev := s.lastFigs
	s.lastFigs, s.state = f, st
	paid := !s.card.Price.IsFree()
	if paid && !s.autoBuy && s.u.opts.BuyMinutes > 0 && s.v != nil && st != session.ViewConnecting {
		s.autoBuy = true
		s.buy(s.u.opts.BuyMinutes)
	}
	if st == session.ViewPaid {
		s.everPaid = true
	}
	overlay, status, countdown := "", "", ""
	switch st {
	case session.ViewConnecting:
		status = "Looking for the seller…"
		if f.Reason != "" { // it cannot be reached, or went away
			status = f.Reason
		}
		overlay = status
		if f.Remaining > 0 {
			// Paid time stands still while the broadcaster is away: it is kept, so say so.
			countdown = "Paid time left " + clock(f.Remaining) + " (kept while the broadcaster is away)"
		}
	case session.ViewFree:
		status = "Stream is free of charge"
		if f.Starved > 0 {
			status = fmt.Sprintf("No video from the broadcaster for %s: its connection or computer may be down.", human.Duration(f.Starved))
		}
	case session.ViewPaid:
		countdown = "Paid time left " + clock(f.Remaining)
		status = "Paid: video flows while paid time is left. Top up any time."
		if f.Starved > 0 {
			// The link says up for 30 s after a broadcaster's machine dies: say what is seen.
			status = fmt.Sprintf("No video from the broadcaster for %s: its connection or computer may be down. Paid time stands still meanwhile.",
				human.Duration(f.Starved))
		}
	case session.ViewRefused:
		reason := f.Reason
		countdown = "No paid time"
		switch {
		case f.PaymentSeen():
			// Paid, on-chain: asking to pay (again) would be wrong.
			status = "Payment seen: the video starts once it is confirmed in a block (about 10 minutes on the bitcoin network)."
			countdown = "Waiting for confirmation"
		case instructs(reason):
			status = "The seller says: " + reason // one instruction, the seller's
		default:
			switch {
			case s.everPaid:
				status = "Paid time is over: top up to keep watching."
			case paid:
				status = "Buy time to start watching."
			default:
				status = "The seller is not sending."
			}
			if reason != "" {
				status += " The seller says: " + reason
			}
		}
		overlay = status
	}
	if st != session.ViewConnecting && st != session.ViewRefused && f.FramesShown == 0 && s.video.shown.Load() == 0 {
		overlay = "Waiting for the first picture…"
	}
	if f.Paused {
		overlay = "Paused (space bar to play)"
	}
	if f.PlaybackStopped != "" {
		// Whenever it happens, not only before the first picture: the picture would stand
		// still under a status saying video flows.
		status += " · " + f.PlaybackStopped + " (Go live or Go to start plays again)"
	} else if st != session.ViewRefused && s.lastEvent != "" && f.FramesShown == 0 && !strings.HasPrefix(s.lastEvent, "Paid time left") && s.lastEvent != "Stream is free of charge" {
		status += " · " + s.lastEvent
	}
	if f.Resumed && st != session.ViewConnecting {
		// The session plays and seeks within the run in force (ViewFigures.Resumed).
		status += " The broadcaster resumed this stream: Go to start goes to where it resumed."
	}
	s.video.setOverlay(overlay)
	// Only what changed is set: each SetText lays its widget out again, four times a
	// second, while the video repaints the window thirty times.
	setLabel(s.status, status)
	setLabel(s.countdown, countdown)
	want := "Pause"
	if f.Paused {
		want = "Play"
	}
	if s.pauseBtn.Text != want {
		s.pauseBtn.SetText(want)
		if f.Paused {
			s.pauseBtn.SetIcon(theme.MediaPlayIcon())
		} else {
			s.pauseBtn.SetIcon(theme.MediaPauseIcon())
		}
	}
	fig := fmt.Sprintf("Downloaded %s · %d blocks stored", human.Bytes(f.BytesDown), f.Stored)
	if f.BehindLive > 2 {
		fig += fmt.Sprintf(" · %d blocks behind live", f.BehindLive)
	}
	peers := "peers"
	if f.Peers == 1 {
		peers = "peer"
	}
	fig += fmt.Sprintf(" · %d pictures shown · connected to %d %s", s.video.shown.Load(), f.Peers, peers)
	setLabel(s.figures, fig)
	// The buy panel: when there is no paid time, or when Top up was pressed.
	if paid {
		// The invoice was paid when the seller let a refused viewer in, or added at least half
		// of what the invoice buys: not when a reconnect shows the time that was already paid
		// for, nor when the seller's count corrects the local countdown by a few seconds.
		// Paid time arriving clears the invoice, or an old message, so a top-up starts afresh.
		grow := 30 * time.Second // less than a minute, the least that can be bought
		if s.inv != nil {
			grow = max(2*time.Second, s.inv.Media/2)
		}
		if st == session.ViewPaid && (prev.State() == session.ViewRefused || f.Remaining > prev.Remaining+grow) {
			if s.inv != nil {
				s.clearInvoice()
				s.topUp = false
			} else if s.buyErr.Text != "" {
				s.setBuyErr("")
			}
		}
		// An expired invoice is no longer offered for payment.
		if s.inv != nil && s.invQR != nil && !s.inv.Expires.IsZero() {
			if !s.expired && s.timeNow().After(s.inv.Expires) {
				s.expireInvoice()
			}
			if s.expired {
				s.expiredNote(f.PaymentSeen())
			}
		}
		show := st == session.ViewRefused || s.topUp || (s.inv != nil && st != session.ViewPaid)
		if show != s.buyPanel.Visible() {
			if show {
				s.buyPanel.Show()
			} else {
				s.buyPanel.Hide()
			}
		}
	}
}

// instructs says whether the seller's reason already tells the viewer to pay (buy, pay, top
// up), so the view adds no instruction of its own.
func instructs(reason string) bool {
	words := strings.FieldsFunc(strings.ToLower(reason), func(r rune) bool { return !unicode.IsLetter(r) })
	for i, w := range words {
		switch {
		case w == "buy" || w == "pay" || w == "purchase":
			return true
		case w == "top" && i+1 < len(words) && words[i+1] == "up":
			return true
		}
	}
	return false
}

// clock writes a countdown as h:mm:ss or m:ss.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

// control runs a player command off Fyne's goroutine (restarting playback waits for the
// player).
func (s *watchScreen) control(fn func(v *session.Viewer)) {
	v := s.v
	if v == nil {
		return
	}
	s.w.goDo(func(context.Context) { fn(v) })
}

func (s *watchScreen) togglePause() {
	if s.lastFigs.Paused {
		s.lastFigs.Paused = false
		s.control(func(v *session.Viewer) { v.Resume() })
	} else {
		s.lastFigs.Paused = true
		s.control(func(v *session.Viewer) { v.Pause() })
	}
	s.render(s.lastFigs, s.state)
}

// typedKey: the space bar pauses and plays (when no text field has the keyboard).
func (s *watchScreen) typedKey(k *fyne.KeyEvent) {
	if k.Name == fyne.KeySpace && s.v != nil {
		s.togglePause()
	}
}

// stopViewer stops the session on a goroutine, then runs then (on Fyne's goroutine).
func (s *watchScreen) stopViewer(then func()) {
	if s.stopping {
		return
	}
	s.stopping = true
	s.w.cancel()
	v, video := s.v, s.video
	if s.stopBtn != nil {
		s.stopBtn.Disable()
		s.status.SetText("Stopping…")
	}
	log := s.u.log
	s.u.goDo(func() {
		if v != nil {
			f := v.Snapshot()
			v.Stop()
			// What the window drew against what the player handed it (figures for BENCHMARKS).
			log.Info("watch view closed", "decoded", f.FramesDecoded, "late (skipped by the player)", f.FramesLate,
				"handed to the window", f.FramesShown, "drawn", video.shown.Load(), "replaced before drawing", video.dropped.Load())
		}
		s.u.do(func() {
			if video != nil {
				video.release()
			}
			if then != nil {
				then()
			}
		})
	})
}

// fixedWidth lays its objects out one under the other in a column this wide.
type fixedWidth float32

func (f fixedWidth) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(fyne.NewSize(float32(f), size.Height))
	}
}

func (f fixedWidth) MinSize(objs []fyne.CanvasObject) fyne.Size {
	h := float32(0)
	for _, o := range objs {
		if o.Visible() {
			h = max(h, o.MinSize().Height)
		}
	}
	return fyne.NewSize(float32(f), h)
}

// setLabel sets l's text when it differs (SetText refreshes the label even when it does not).
func setLabel(l *widget.Label, text string) {
	if l.Text != text {
		l.SetText(text)
	}
}
