package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// The wizard's steps.
var goLiveSteps = []string{"Stream", "Picture and sound", "Payment"}

const (
	optNewStream = "Create a new stream"
	optNoVideo   = "No picture"
	optNoAudio   = "No sound"
	payFree      = "Free"
	payPaid      = "Paid"
	lnByDir      = "LND directory"
	lnByFiles    = "Host, certificate and macaroon"
	lnSaved      = "Use the credentials saved earlier"
)

// goLiveScreen is the Go live wizard: the stream (new or resume), picture and sound, payment.
type goLiveScreen struct {
	u    *UI
	w    worker
	step int

	root     fyne.CanvasObject
	stepList *fyne.Container
	body     *fyne.Container
	back     *widget.Button
	next     *widget.Button
	// awaitingStore: going live waits for the secret store (its passphrase asked for, its key
	// derived); a second start meanwhile is ignored. Fyne's goroutine.
	awaitingStore bool
	home          *widget.Button
	errLabel      *widget.Label
	progress      *widget.ProgressBarInfinite

	// Step 1: the stream.
	streams []session.StreamRecord
	stream  *widget.Select
	name    *widget.Entry
	desc    *widget.Entry
	// Step 2: picture and sound.
	videos, audios []session.Source
	video, audio   *widget.Select
	quality        *widget.Select
	qualityText    *widget.Label
	// The chosen devices' check while step 2 shows (session.DeviceCheck): the picture, the
	// microphone's level, and what went wrong opening them.
	scroll      *container.Scroll
	lastFocus   fyne.Focusable
	preview     *videoView
	previewBox  *fyne.Container
	meter       *widget.ProgressBar
	meterRMS    float64 // what the meter's text says (Fyne's goroutine)
	meterPeak   float64
	meterOn     bool // a microphone is chosen
	checkNote   *widget.Label
	checkStop   context.CancelFunc // nil while no check runs
	checkDone   chan struct{}      // closed once the newest check released its devices
	level       atomic.Pointer[session.AudioLevel]
	levelQueued atomic.Bool
	// Step 3: payment.
	pay         *widget.RadioGroup
	amount      *widget.Entry
	per         *widget.Entry
	unit        *widget.Select
	priceNote   *widget.Label
	useLN       *widget.Check
	lnHow       *widget.RadioGroup
	lnDir       *widget.Entry
	lnHost      *widget.Entry
	lnCert      *widget.Entry
	lnMac       *widget.Entry
	network     *widget.Select
	lnTest      *widget.Button
	lnResult    *widget.Label
	useChain    *widget.Check
	xpub        *widget.Entry
	xpubCheck   *widget.Label
	node        *widget.Entry
	nodeUser    *widget.Entry
	nodePass    *widget.Entry
	nodeCert    *widget.Entry
	gapLimit    *widget.Entry
	btcd        *widget.Check
	chainTest   *widget.Button
	chainResult *widget.Label
	lnBox       *fyne.Container
	chainBox    *fyne.Container
	paidBox     *fyne.Container
	steps       []fyne.CanvasObject
	// The payment settings of the last paid stream (settings.json and the secret store), put
	// into the payment step's fields; nil for a back-end never set up.
	savedLN *session.LightningSettings
	savedOC *session.OnChainForm
}

// showGoLive opens the wizard; resume preselects one of my streams.
func (u *UI) showGoLive(resume string) {
	g := &goLiveScreen{u: u, w: newWorker(u)}
	g.build()
	u.show(g)
	g.load(resume)
	g.watchFocus()
}

func (g *goLiveScreen) content() fyne.CanvasObject { return g.root }

func (g *goLiveScreen) close() {
	g.stopCheck()
	g.w.cancel()
	g.u.do(g.preview.release) // Fyne's goroutine, as draws are; later pictures are let go at once
}

// noTabEntry is a multi-line entry that leaves Tab to move the focus on (a plain multi-line
// entry types a tab character, and a keyboard user could not leave it).
type noTabEntry struct{ widget.Entry }

func newDescriptionEntry() *noTabEntry {
	e := &noTabEntry{}
	e.MultiLine = true
	e.Wrapping = fyne.TextWrapWord
	e.ExtendBaseWidget(e)
	return e
}

// AcceptsTab implements fyne.Tabbable: Tab moves to the next control.
func (e *noTabEntry) AcceptsTab() bool { return false }

func (g *goLiveScreen) build() {
	// Step 1.
	g.stream = widget.NewSelect([]string{optNewStream}, func(string) { g.streamChosen() })
	g.stream.SetSelectedIndex(0)
	g.name = widget.NewEntry()
	g.name.SetPlaceHolder("A title viewers see on the card")
	desc := newDescriptionEntry()
	g.desc = &desc.Entry
	g.desc.SetPlaceHolder("What the stream is about")
	g.desc.SetMinRowsVisible(3)
	step1 := widget.NewForm(
		widget.NewFormItem("Stream", g.stream),
		widget.NewFormItem("Title", g.name),
		widget.NewFormItem("Description", desc))

	// Step 2.
	g.video = widget.NewSelect(nil, func(string) { g.devicesChosen() })
	g.audio = widget.NewSelect(nil, func(string) { g.devicesChosen() })
	g.preview = newVideoView(g.u.do)
	g.checkNote = wrapLabel("")
	g.previewBox = container.NewVBox(container.NewGridWrap(fyne.NewSize(400, 225), g.preview.obj), g.checkNote)
	g.meter = widget.NewProgressBar()
	g.meter.TextFormatter = g.meterText
	var qnames []string
	qualities := session.Qualities()
	for _, q := range qualities {
		qnames = append(qnames, titleCase(q.Name))
	}
	g.qualityText = widget.NewLabel("")
	g.quality = widget.NewSelect(qnames, func(s string) {
		for _, q := range qualities {
			if titleCase(q.Name) == s {
				g.qualityText.SetText(q.Text)
			}
		}
		g.devicesChosen() // the camera opens at the preset's size
	})
	g.quality.SetSelected("Medium")
	step2 := widget.NewForm(
		widget.NewFormItem("Picture", g.video),
		widget.NewFormItem("Preview", g.previewBox),
		widget.NewFormItem("Sound", g.audio),
		widget.NewFormItem("Microphone level", g.meter),
		widget.NewFormItem("Quality", container.NewVBox(g.quality, g.qualityText)))

	// Step 3.
	g.amount = widget.NewEntry()
	g.amount.SetPlaceHolder("sats")
	g.amount.SetText("1000")
	g.per = widget.NewEntry()
	g.per.SetText("1")
	g.unit = widget.NewSelect([]string{"seconds", "minutes", "hours"}, func(string) { g.updatePriceNote() })
	g.unit.SetSelected("hours")
	g.amount.OnChanged = func(string) { g.updatePriceNote() }
	g.per.OnChanged = func(string) { g.updatePriceNote() }
	g.priceNote = widget.NewLabel("")
	g.network = widget.NewSelect([]string{"mainnet", "testnet", "signet", "regtest", "simnet"}, nil)
	g.network.SetSelected("mainnet")
	g.lnDir = widget.NewEntry()
	g.lnDir.SetPlaceHolder("~/.lnd")
	lnDirBrowse := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
		dialog.ShowFolderOpen(func(l fyne.ListableURI, err error) {
			if l != nil {
				g.lnDir.SetText(l.Path())
			}
		}, g.u.win)
	})
	g.lnHost = widget.NewEntry()
	g.lnHost.SetPlaceHolder("127.0.0.1:8080 (LND's REST address)")
	g.lnCert = widget.NewEntry()
	g.lnCert.SetPlaceHolder("path of tls.cert, or its PEM text")
	g.lnMac = widget.NewEntry()
	g.lnMac.SetPlaceHolder("path of invoice.macaroon, or its hex")
	g.lnMac.OnChanged = func(string) { g.checkMacaroonField() }
	g.lnResult = wrapLabel("")
	g.lnTest = widget.NewButtonWithIcon("Test connection", theme.ConfirmIcon(), g.testLightning)
	byDir := widget.NewForm(widget.NewFormItem("LND directory", container.NewBorder(nil, nil, nil, lnDirBrowse, g.lnDir)))
	byFiles := widget.NewForm(
		widget.NewFormItem("TLS certificate", fileEntry(g.u, g.lnCert)),
		widget.NewFormItem("Invoice macaroon", fileEntry(g.u, g.lnMac)))
	byFiles.Hide()
	g.lnHow = widget.NewRadioGroup([]string{lnByDir, lnByFiles}, func(s string) {
		byDir.Hidden = s != lnByDir
		byFiles.Hidden = s != lnByFiles
		g.relayout()
	})
	g.lnHow.Horizontal = true
	g.lnHow.SetSelected(lnByDir)
	g.lnBox = container.NewVBox(g.lnHow, byDir, byFiles,
		widget.NewForm(widget.NewFormItem("REST host", g.lnHost)),
		wrapLabel("Only LND's invoice.macaroon is taken: it can make invoices and nothing that moves money. Never give the admin macaroon."),
		container.NewHBox(g.lnTest), g.lnResult)
	g.useLN = widget.NewCheck("Lightning (LND)", func(on bool) { g.lnBox.Hidden = !on; g.relayout() })
	g.useLN.SetChecked(true)

	g.xpub = widget.NewEntry()
	g.xpub.SetPlaceHolder("xpub, zpub, tpub or vpub of a BIP84 account, or its wpkh( ) descriptor (watch-only)")
	g.xpubCheck = wrapLabel("")
	g.xpub.OnChanged = func(string) { g.checkAccountKeyField() }
	g.node = widget.NewEntry()
	g.node.SetPlaceHolder("127.0.0.1:8332 (the node's RPC address)")
	g.nodeUser = widget.NewEntry()
	g.nodePass = widget.NewPasswordEntry()
	g.nodeCert = widget.NewEntry()
	g.nodeCert.SetPlaceHolder("btcd's rpc.cert (path), or empty for a node on this machine")
	g.gapLimit = widget.NewEntry()
	g.gapLimit.SetPlaceHolder("20")
	g.btcd = widget.NewCheck("The node is btcd (notifications instead of polling)", nil)
	g.chainResult = wrapLabel("")
	g.chainTest = widget.NewButtonWithIcon("Test", theme.ConfirmIcon(), g.testOnChain)
	g.chainBox = container.NewVBox(widget.NewForm(
		widget.NewFormItem("Account key", g.xpub),
		widget.NewFormItem("Node", g.node),
		widget.NewFormItem("RPC user", g.nodeUser),
		widget.NewFormItem("RPC password", g.nodePass),
		widget.NewFormItem("Node certificate", fileEntry(g.u, g.nodeCert)),
		widget.NewFormItem("Gap limit", container.NewGridWrap(fyne.NewSize(80, g.gapLimit.MinSize().Height), g.gapLimit))),
		wrapLabel(session.GapLimitHelp), g.xpubCheck, g.btcd, container.NewHBox(g.chainTest), g.chainResult)
	g.chainBox.Hide()
	g.useChain = widget.NewCheck("On-chain bitcoin", func(on bool) { g.chainBox.Hidden = !on; g.relayout() })

	priceRow := container.NewHBox(container.NewGridWrap(fyne.NewSize(140, g.amount.MinSize().Height), g.amount),
		widget.NewLabel("sats per"), container.NewGridWrap(fyne.NewSize(80, g.per.MinSize().Height), g.per), g.unit)
	g.paidBox = container.NewVBox(
		widget.NewForm(widget.NewFormItem("Price", priceRow), widget.NewFormItem("Network", g.network)),
		g.priceNote, widget.NewSeparator(),
		heading("How viewers pay"), g.useLN, g.lnBox, g.useChain, g.chainBox)
	g.pay = widget.NewRadioGroup([]string{payFree, payPaid}, func(s string) {
		g.paidBox.Hidden = s != payPaid
		g.updatePriceNote()
		g.relayout()
	})
	g.pay.Horizontal = true
	g.pay.SetSelected(payFree)
	step3 := container.NewVBox(g.pay, g.paidBox)
	g.updatePriceNote()

	g.steps = []fyne.CanvasObject{step1, step2, step3}
	g.stepList = container.NewVBox()
	g.body = container.NewStack()
	g.errLabel = wrapLabel("")
	g.errLabel.Importance = widget.DangerImportance
	g.progress = widget.NewProgressBarInfinite()
	g.progress.Stop()
	g.progress.Hide()
	g.back = widget.NewButtonWithIcon("Back", theme.NavigateBackIcon(), g.goBack)
	g.next = widget.NewButtonWithIcon("Next", theme.NavigateNextIcon(), g.goNext)
	g.next.Importance = widget.HighImportance
	g.next.IconPlacement = widget.ButtonIconTrailingText
	g.home = widget.NewButtonWithIcon("Home", theme.HomeIcon(), func() { g.u.showHome() })
	top := container.NewHBox(g.home, widget.NewLabelWithStyle("Go live", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	bottom := container.NewVBox(g.errLabel, g.progress, container.NewHBox(layout.NewSpacer(), g.back, g.next))
	left := container.NewPadded(g.stepList)
	g.scroll = container.NewVScroll(container.NewPadded(g.body))
	g.root = container.NewBorder(top, bottom, left, nil, g.scroll)
	g.setStep(0)
}

// focusEvery is how often the wizard looks whether the keyboard focus moved (Fyne tells no
// one when Tab moves it), to scroll the control into view.
const focusEvery = 100 * time.Millisecond

// watchFocus keeps the focused control in view while the screen is open: Fyne's Tab moves
// the focus to controls below the fold of the payment step without scrolling to them. A
// check is queued on Fyne's goroutine every focusEvery, at most one at a time.
func (g *goLiveScreen) watchFocus() {
	var queued atomic.Bool
	g.w.goDo(func(ctx context.Context) {
		t := time.NewTicker(focusEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if queued.Swap(true) {
					continue
				}
				g.u.do(func() {
					queued.Store(false)
					if ctx.Err() == nil {
						g.showFocused()
					}
				})
			}
		}
	})
}

// showFocused scrolls the step so that the focused control is in view (Fyne's goroutine).
func (g *goLiveScreen) showFocused() {
	f := g.u.win.Canvas().Focused()
	if f == nil || f == g.lastFocus {
		return
	}
	g.lastFocus = f
	o, ok := f.(fyne.CanvasObject)
	if !ok || o == g.next || o == g.back || o == g.home || g.u.win.Canvas().Overlays().Top() != nil {
		return // outside the step, or a list's pop-up is open
	}
	d := fyne.CurrentApp().Driver()
	top := d.AbsolutePositionForObject(o).Y - d.AbsolutePositionForObject(g.scroll).Y + g.scroll.Offset.Y
	if top < 0 || top > g.scroll.Content.Size().Height {
		return
	}
	bottom := top + o.Size().Height
	view := g.scroll.Size().Height
	pad := theme.Padding() * 2
	switch {
	case top-pad < g.scroll.Offset.Y:
		g.scroll.ScrollToOffset(fyne.NewPos(0, max(0, top-pad)))
	case bottom+pad > g.scroll.Offset.Y+view:
		g.scroll.ScrollToOffset(fyne.NewPos(0, bottom+pad-view))
	}
}

// relayout lays the current step out again after a part was shown or hidden.
func (g *goLiveScreen) relayout() {
	if g.body == nil {
		return
	}
	for _, o := range g.steps {
		o.Refresh()
	}
	g.body.Refresh()
	if g.scroll != nil {
		g.scroll.Refresh() // sizes the content anew, which scrolling to the focus needs
	}
}

// fileEntry is an entry with a button that picks a file into it.
func fileEntry(u *UI, e *widget.Entry) fyne.CanvasObject {
	b := widget.NewButtonWithIcon("", theme.FileIcon(), func() {
		dialog.ShowFileOpen(func(r fyne.URIReadCloser, err error) {
			if r != nil {
				e.SetText(r.URI().Path())
				r.Close()
			}
		}, u.win)
	})
	return container.NewBorder(nil, nil, nil, b, e)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

type goLiveLists struct {
	streams        []session.StreamRecord
	videos, audios []session.Source
	hasLN          bool
	savedLN        *session.LightningSettings
	savedOC        *session.OnChainForm
}

// load lists my streams and the capture devices off Fyne's goroutine.
func (g *goLiveScreen) load(resume string) {
	g.next.Disable()
	g.errLabel.SetText("Looking for cameras and microphones…")
	store := g.u.store
	async(g.w, func(context.Context) (goLiveLists, error) {
		var l goLiveLists
		var err error
		l.streams, err = g.u.opts.Data.MyStreams()
		l.videos, l.audios = session.Sources()
		var st session.SecretStore // nil until the store is open: the saved secrets are left out
		if store != nil {
			l.hasLN = session.HasLightning(store)
			st = store
		}
		var serr error
		if l.savedLN, l.savedOC, serr = session.SavedForm(g.u.opts.Data, st); serr != nil {
			g.u.log.Warn("the saved payment settings could not be read", "err", serr)
		}
		return l, err
	}, func(l goLiveLists, err error) {
		g.errLabel.SetText("")
		if err != nil {
			g.errLabel.SetText("Some of your streams could not be read: " + err.Error())
		}
		g.fill(l, resume)
		g.next.Enable()
	})
}

func (g *goLiveScreen) fill(l goLiveLists, resume string) {
	g.streams, g.videos, g.audios = l.streams, l.videos, l.audios
	opts := []string{optNewStream}
	sel := 0
	for i, s := range l.streams {
		opts = append(opts, resumeLabel(s))
		if s.ID == resume {
			sel = i + 1
		}
	}
	g.stream.SetOptions(opts)
	g.stream.SetSelectedIndex(sel)
	var vo, ao []string
	for _, s := range l.videos {
		vo = append(vo, s.Label)
	}
	for _, s := range l.audios {
		ao = append(ao, s.Label)
	}
	g.video.SetOptions(append(vo, optNoVideo))
	g.audio.SetOptions(append(ao, optNoAudio))
	g.video.SetSelectedIndex(session.DefaultVideo(l.videos))
	g.audio.SetSelectedIndex(0)
	if l.hasLN {
		g.lnHow.Options = []string{lnSaved, lnByDir, lnByFiles}
		g.lnHow.SetSelected(lnSaved)
		g.lnHow.Refresh()
	}
	g.fillPayments(l.savedLN, l.savedOC)
}

// fillPayments puts the payment settings of the last paid stream into the payment step: the
// LND host and network, and the on-chain wallet's fields (what the wizard has no field for,
// and the node's certificate, are kept and used while the node stays the same).
func (g *goLiveScreen) fillPayments(ln *session.LightningSettings, oc *session.OnChainForm) {
	g.savedLN, g.savedOC = ln, oc
	if oc != nil {
		if oc.Network != "" {
			g.network.SetSelected(oc.Network)
		}
		g.node.SetText(oc.Node)
		g.nodeUser.SetText(oc.User)
		g.nodePass.SetText(oc.Pass)
		if len(oc.CACert) > 0 {
			g.nodeCert.SetPlaceHolder("the certificate saved earlier (or a path of rpc.cert to replace it)")
		}
		if oc.GapLimit > 0 {
			g.gapLimit.SetText(strconv.FormatUint(uint64(oc.GapLimit), 10))
		}
		g.btcd.SetChecked(oc.Websocket)
		g.xpub.SetText(oc.AccountKey)
		g.useChain.SetChecked(true)
		g.useLN.SetChecked(ln != nil) // the last paid stream took on-chain payments only
	}
	if ln != nil {
		if ln.Host != "" {
			g.lnHost.SetText(ln.Host)
		}
		if ln.Network != "" {
			g.network.SetSelected(ln.Network)
		}
	}
	if oc != nil {
		g.checkAccountKeyField() // against the network chosen last
	}
}

func resumeLabel(s session.StreamRecord) string {
	t := strings.TrimSpace(s.Name)
	if t == "" {
		t = strings.TrimSpace(s.Description)
	}
	if len(t) > 40 {
		t = t[:40] + "…"
	}
	return fmt.Sprintf("Resume %s (%s)", t, shortID(s.ID))
}

// resumed is the stream chosen to resume, if any.
func (g *goLiveScreen) resumed() *session.StreamRecord {
	i := g.stream.SelectedIndex()
	if i <= 0 || i > len(g.streams) {
		return nil
	}
	return &g.streams[i-1]
}

// streamChosen fills the fields from a resumed stream and locks its price (viewers hold
// cards with it).
func (g *goLiveScreen) streamChosen() {
	if g.pay == nil {
		return
	}
	r := g.resumed()
	if r == nil {
		g.pay.Enable()
		g.amount.Enable()
		g.per.Enable()
		g.unit.Enable()
		g.updatePriceNote()
		return
	}
	g.name.SetText(r.Name)
	g.desc.SetText(r.Description)
	if r.Preset != "" {
		g.quality.SetSelected(titleCase(r.Preset))
	}
	p, err := price.Parse(priceText(r.Price))
	if err == nil && !p.IsFree() {
		g.pay.SetSelected(payPaid)
		g.amount.SetText(strconv.FormatUint(p.Sats, 10))
		g.per.SetText(strconv.FormatUint(uint64(p.Interval), 10))
		g.unit.SetSelected(p.Unit.String())
	} else {
		g.pay.SetSelected(payFree)
	}
	g.pay.Disable()
	g.amount.Disable()
	g.per.Disable()
	g.unit.Disable()
	g.updatePriceNote()
}

func (g *goLiveScreen) setStep(i int) {
	g.step = i
	g.stepList.RemoveAll()
	for n, s := range goLiveSteps {
		l := widget.NewLabelWithStyle(fmt.Sprintf("%d. %s", n+1, s), fyne.TextAlignLeading, fyne.TextStyle{Bold: n == i})
		if n != i {
			l.Importance = widget.LowImportance
		}
		g.stepList.Add(l)
	}
	g.body.Objects = []fyne.CanvasObject{g.steps[i]}
	g.body.Refresh()
	if g.scroll != nil {
		g.scroll.ScrollToTop()
		g.scroll.Refresh()
	}
	if i == 1 {
		g.startCheck()
	} else {
		g.stopCheck()
	}
	if i == 0 {
		g.back.Disable()
	} else {
		g.back.Enable()
	}
	if i == len(goLiveSteps)-1 {
		g.next.SetText("Go live")
		g.next.SetIcon(theme.MediaRecordIcon())
	} else {
		g.next.SetText("Next")
		g.next.SetIcon(theme.NavigateNextIcon())
	}
	g.errLabel.SetText("")
}

func (g *goLiveScreen) goBack() {
	if g.step > 0 {
		g.setStep(g.step - 1)
	}
}

func (g *goLiveScreen) goNext() {
	if err := g.checkStep(g.step); err != nil {
		g.errLabel.SetText(err.Error())
		return
	}
	if g.step < len(goLiveSteps)-1 {
		g.setStep(g.step + 1)
		return
	}
	g.start()
}

// checkStep says what to fix before leaving step i.
func (g *goLiveScreen) checkStep(i int) error {
	switch i {
	case 0:
		// As the card will, before the camera, the feed and the network are opened (a soft
		// hyphen or a zero-width space pasted from a web page is invisible here).
		return session.CheckStreamText(g.name.Text, g.desc.Text)
	case 1:
		if g.video.Selected == optNoVideo && g.audio.Selected == optNoAudio {
			return errors.New("pick a camera or the screen, a microphone, or both")
		}
	case 2:
		_, err := g.form()
		return err
	}
	return nil
}

// price reads the price fields.
func (g *goLiveScreen) price() (price.Price, error) {
	if g.pay.Selected != payPaid {
		return price.Free, nil
	}
	sats, err := strconv.ParseUint(strings.TrimSpace(g.amount.Text), 10, 64)
	if err != nil || sats == 0 {
		return price.Price{}, errors.New("the amount is a whole number of sats, at least 1")
	}
	n, err := strconv.ParseUint(strings.TrimSpace(g.per.Text), 10, 32)
	if err != nil || n == 0 {
		return price.Price{}, errors.New("the interval is a whole number, at least 1")
	}
	u, err := price.ParseUnit(g.unit.Selected)
	if err != nil {
		return price.Price{}, err
	}
	return price.New(sats, uint32(n), u)
}

func (g *goLiveScreen) updatePriceNote() {
	if g.priceNote == nil || g.pay == nil {
		return
	}
	p, err := g.price()
	switch {
	case err != nil:
		g.priceNote.SetText(err.Error())
	case g.resumed() != nil:
		g.priceNote.SetText("A resumed stream keeps its price (" + p.String() + "): viewers hold cards with it.")
	case p.IsFree():
		g.priceNote.SetText("")
	default:
		hour, _ := p.CostSats(3600e9)
		g.priceNote.SetText(fmt.Sprintf("%s: an hour of video costs a viewer %d sats. Viewers pay only for what is delivered to them.", p, hour))
	}
}

// readBytes is a file's bytes when text names a readable file, else the text itself (pasted).
func readBytes(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	if strings.HasPrefix(text, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			text = h + text[1:]
		}
	}
	if b, err := readSmallFile(text); err == nil {
		return b, nil
	} else if errors.Is(err, errTooLarge) || !strings.Contains(text, "-----BEGIN") && !isHex(text) {
		return nil, fmt.Errorf("cannot read %s: %w", text, err)
	}
	return []byte(text), nil
}

// maxCredentialFile is the most readBytes reads from a file: macaroons and certificates are
// a few kilobytes.
const maxCredentialFile = 1 << 20

var errTooLarge = fmt.Errorf("it is larger than %d KiB, more than any macaroon or certificate", maxCredentialFile>>10)

// readSmallFile reads a regular file of at most maxCredentialFile bytes.
func readSmallFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.IsDir() {
		return nil, errors.New("it is a folder")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCredentialFile {
		return nil, errTooLarge
	}
	return b, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return len(s) > 0
}

func (g *goLiveScreen) checkMacaroonField() {
	mac, err := readBytes(g.lnMac.Text)
	if err == nil && len(mac) > 0 {
		err = session.CheckMacaroon(mac)
	}
	if err != nil {
		g.lnResult.SetText(err.Error())
	} else {
		g.lnResult.SetText("")
	}
}

func (g *goLiveScreen) checkAccountKeyField() {
	if strings.TrimSpace(g.xpub.Text) == "" {
		g.xpubCheck.SetText("")
		return
	}
	if err := session.CheckAccountKey(g.xpub.Text, g.network.Selected); err != nil {
		g.xpubCheck.SetText(err.Error())
	} else {
		g.xpubCheck.SetText("A watch-only account key: it can receive, never spend. Sell with it from this install only: " +
			"another install with the same key would hand the same addresses to other viewers.")
	}
}

// lightning reads the Lightning fields.
func (g *goLiveScreen) lightning() (*session.LightningSetup, error) {
	network := g.network.Selected
	switch g.lnHow.Selected {
	case lnSaved:
		host := strings.TrimSpace(g.lnHost.Text)
		if host == "" && g.savedLN != nil {
			host = g.savedLN.Host
		}
		if host == "" {
			host = "127.0.0.1:8080"
		}
		return &session.LightningSetup{Host: host, Network: network}, nil
	case lnByDir:
		dir := strings.TrimSpace(g.lnDir.Text)
		if dir == "" {
			return nil, errors.New("give LND's directory (it holds tls.cert and data/chain/bitcoin/<network>/invoice.macaroon), or enter the host, certificate and macaroon")
		}
		if strings.HasPrefix(dir, "~/") {
			if h, err := os.UserHomeDir(); err == nil {
				dir = h + dir[1:]
			}
		}
		s, err := session.LNDFromDir(dir, network, strings.TrimSpace(g.lnHost.Text))
		if err != nil {
			return nil, err
		}
		return &s, nil
	}
	host := strings.TrimSpace(g.lnHost.Text)
	if host == "" {
		return nil, errors.New("give LND's REST address (host:port, e.g. 127.0.0.1:8080)")
	}
	cert, err := readBytes(g.lnCert.Text)
	if err != nil {
		return nil, err
	}
	mac, err := readBytes(g.lnMac.Text)
	if err != nil {
		return nil, err
	}
	if len(cert) == 0 || len(mac) == 0 {
		return nil, errors.New("give LND's tls.cert and its invoice.macaroon (files, or pasted)")
	}
	if err := session.CheckMacaroon(mac); err != nil {
		return nil, err
	}
	return &session.LightningSetup{Host: host, Network: network, TLSCert: cert, Macaroon: mac}, nil
}

func (g *goLiveScreen) onChain() (*session.OnChainForm, error) {
	f := &session.OnChainForm{AccountKey: g.xpub.Text, Network: g.network.Selected, Node: g.node.Text,
		User: g.nodeUser.Text, Pass: g.nodePass.Text, Websocket: g.btcd.Checked}
	if err := session.CheckAccountKey(f.AccountKey, f.Network); err != nil {
		return nil, err
	}
	if strings.TrimSpace(f.Node) == "" {
		return nil, errors.New("give the bitcoin node's RPC address (host:port) to watch for payments")
	}
	if t := strings.TrimSpace(g.gapLimit.Text); t != "" {
		n, err := strconv.ParseUint(t, 10, 32)
		if err != nil || n == 0 || n > 10_000 {
			return nil, fmt.Errorf("the gap limit is a whole number from 1 to 10000 (the same as in your wallet), not %q", t)
		}
		f.GapLimit = uint32(n)
	}
	cert, err := readBytes(g.nodeCert.Text)
	if err != nil {
		return nil, err
	}
	f.CACert = cert
	if o := g.savedOC; o != nil && strings.TrimSpace(f.Node) == o.Node {
		// The same node as the last paid stream: what the wizard has no field for stays.
		f.CookieFile, f.MinConf = o.CookieFile, o.MinConf
		f.ProvisionalCapSats, f.ProvisionalTotalCapSats = o.ProvisionalCapSats, o.ProvisionalTotalCapSats
		if len(f.CACert) == 0 {
			f.CACert = o.CACert
		}
	}
	return f, nil
}

// form gathers the wizard's answers.
func (g *goLiveScreen) form() (session.GoLive, error) {
	var f session.GoLive
	if r := g.resumed(); r != nil {
		f.Resume = r.ID
	}
	f.Name, f.Description = g.name.Text, g.desc.Text
	if i := g.video.SelectedIndex(); i >= 0 && i < len(g.videos) {
		f.Video = &g.videos[i]
	}
	if i := g.audio.SelectedIndex(); i >= 0 && i < len(g.audios) {
		f.Audio = &g.audios[i]
	}
	f.Quality = strings.ToLower(g.quality.Selected)
	p, err := g.price()
	if err != nil {
		return f, err
	}
	f.Price = p
	if p.IsFree() {
		return f, nil
	}
	if !g.useLN.Checked && !g.useChain.Checked {
		return f, errors.New("a paid stream needs a way to be paid: tick Lightning, on-chain bitcoin, or both")
	}
	if g.useLN.Checked {
		if f.Lightning, err = g.lightning(); err != nil {
			return f, err
		}
	}
	if g.useChain.Checked {
		if f.OnChain, err = g.onChain(); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (g *goLiveScreen) testLightning() {
	s, err := g.lightning()
	if err != nil {
		g.lnResult.SetText(err.Error())
		return
	}
	if len(s.Macaroon) == 0 {
		g.lnResult.SetText("The saved credentials are used as they are; they are tested when you go live.")
		return
	}
	g.lnResult.SetText("Asking LND…")
	g.lnTest.Disable()
	async(g.w, func(ctx context.Context) (string, error) { return session.TestLightning(ctx, *s) },
		func(msg string, err error) {
			g.lnTest.Enable()
			if err != nil {
				g.lnResult.SetText("It does not work yet: " + err.Error())
				return
			}
			g.lnResult.SetText("It works: " + msg)
		})
}

func (g *goLiveScreen) testOnChain() {
	f, err := g.onChain()
	if err != nil {
		g.chainResult.SetText(err.Error())
		return
	}
	g.chainResult.SetText("Asking the node…")
	g.chainTest.Disable()
	async(g.w, func(ctx context.Context) (string, error) { return session.TestOnChain(ctx, *f) },
		func(msg string, err error) {
			g.chainTest.Enable()
			if err != nil {
				g.chainResult.SetText("It does not work yet: " + err.Error())
				return
			}
			g.chainResult.SetText("It works: " + msg)
		})
}

// start goes live on a goroutine; the live view opens once viewers can connect.
func (g *goLiveScreen) start() {
	f, err := g.form()
	if err != nil {
		g.errLabel.SetText(err.Error())
		return
	}
	g.startForm(f)
}

// startForm goes live with answers f (the wizard's, or Options.GoLive).
func (g *goLiveScreen) startForm(f session.GoLive) {
	if g.awaitingStore {
		return // a second click while the passphrase is asked for or its key derived
	}
	g.stopCheck()
	g.awaitingStore = true
	g.next.Disable()
	g.u.withStoreOr(func(store *secrets.Store) {
		g.awaitingStore = false
		if g.w.ctx.Err() != nil {
			return // the wizard was left while the store opened: do not go live unseen
		}
		g.next.Enable()        // until going live starts below
		checked := g.checkDone // going live opens the devices the check had open
		var preview *videoView // the live view's picture; given back if going live fails
		if f.Video != nil {
			preview = newVideoView(g.u.do)
			f.Preview = preview
		}
		release := func() {
			if preview != nil {
				preview.release()
			}
		}
		cfg, err := f.Config(g.u.opts.Data, store, g.u.opts.Network, g.u.log)
		if err != nil {
			g.errLabel.SetText(err.Error())
			return
		}
		b, err := session.NewBroadcaster(cfg)
		if err != nil {
			g.errLabel.SetText(err.Error())
			return
		}
		g.next.Disable()
		g.back.Disable()
		g.errLabel.SetText("Going live: opening the camera, the network and the wallet…")
		g.progress.Show()
		g.progress.Start()
		// The session outlives this screen: the live view owns it from here, so it runs
		// under the UI's context (a closed window stops it).
		ctx := g.u.ctx
		g.u.goDo(func() {
			if checked != nil {
				<-checked
			}
			err := b.Start(ctx)
			g.u.do(func() {
				g.progress.Stop()
				g.progress.Hide()
				if err != nil { // Start has stopped what it opened
					release()
					g.next.Enable()
					g.back.Enable()
					g.errLabel.SetText("Could not go live: " + err.Error())
					return
				}
				if g.w.ctx.Err() != nil { // the wizard was left meanwhile: do not stay live unseen
					g.u.goDo(func() { b.Stop(); g.u.do(release) })
					return
				}
				g.u.showLive(b, preview)
				if g.u.opts.OnLive != nil {
					g.u.opts.OnLive(b.Card().String())
				}
			})
		})
	}, func(err error) {
		g.awaitingStore = false
		g.next.Enable()
		g.errLabel.SetText(storeMessage(err))
	})
}

// previewFailed begins the message shown when the chosen devices cannot be opened.
const previewFailed = "The preview stopped or cannot start: "

// devicesChosen restarts the check of the chosen devices (when step 2 shows).
func (g *goLiveScreen) devicesChosen() {
	if g.preview == nil || g.step != 1 {
		return
	}
	g.startCheck()
}

// startCheck starts checking the chosen camera (or screen) and microphone: the preview and
// the level meter. A check already running is stopped first, and the new one opens the
// devices only once the old one released them. Fyne's goroutine.
func (g *goLiveScreen) startCheck() {
	g.stopCheck()
	if g.w.ctx.Err() != nil {
		return
	}
	cfg := session.DeviceCheckConfig{Quality: strings.ToLower(g.quality.Selected), Logger: g.u.log}
	if i := g.video.SelectedIndex(); i >= 0 && i < len(g.videos) {
		cfg.Video, cfg.Frames = &g.videos[i], g.preview
	}
	if i := g.audio.SelectedIndex(); i >= 0 && i < len(g.audios) {
		cfg.Audio, cfg.OnLevel = &g.audios[i], g.levelArrived
	}
	g.showCheckParts(cfg.Video, cfg.Audio)
	if strings.HasPrefix(g.errLabel.Text, previewFailed) {
		g.errLabel.SetText("")
	}
	if cfg.Video == nil && cfg.Audio == nil {
		return
	}
	ctx, cancel := context.WithCancel(g.w.ctx)
	prev, done := g.checkDone, make(chan struct{})
	g.checkStop, g.checkDone = cancel, done
	g.w.goDo(func(context.Context) {
		defer close(done)
		if prev != nil {
			<-prev // the previous check's devices are free
		}
		if ctx.Err() != nil {
			return
		}
		c, err := session.StartDeviceCheck(ctx, cfg)
		if err != nil {
			g.u.do(func() {
				if ctx.Err() == nil { // under the buttons: the preview may be hidden (no picture)
					g.errLabel.SetText(previewFailed + err.Error())
				}
			})
			return
		}
		// A device that stops meanwhile (a camera unplugged) is said once.
		t := time.NewTicker(checkErrEvery)
		defer t.Stop()
		said := false
		for {
			select {
			case <-ctx.Done():
				c.Close()
				return
			case <-t.C:
				if err := c.Err(); err != nil && !said {
					said = true
					g.u.do(func() {
						if ctx.Err() == nil {
							g.errLabel.SetText(previewFailed + err.Error())
						}
					})
				}
			}
		}
	})
}

// checkErrEvery is how often the running device check is asked whether a device stopped.
const checkErrEvery = 500 * time.Millisecond

// stopCheck stops the running check (its devices are released on its goroutine; checkDone
// says when) and empties the meter. Fyne's goroutine.
func (g *goLiveScreen) stopCheck() {
	if g.checkStop != nil {
		g.checkStop()
		g.checkStop = nil
	}
	if g.meter != nil {
		g.meterRMS = math.Inf(-1)
		g.meter.SetValue(0)
	}
}

// showCheckParts shows the preview and the meter for what is chosen, with a word on what
// the preview shows.
func (g *goLiveScreen) showCheckParts(video, audio *session.Source) {
	g.previewBox.Hidden = video == nil
	switch {
	case video == nil:
	case video.Kind == session.SourceScreen:
		g.checkNote.SetText("Your screen will be shared: viewers see everything on it, as here.")
	case video.Test:
		g.checkNote.SetText("The test camera's moving colour bars.")
	default:
		g.checkNote.SetText("")
	}
	g.meterOn = audio != nil
	g.meter.Refresh()
	g.relayout()
}

// levelArrived is the check's OnLevel (the check's goroutine): the newest level is kept and
// one update of the meter is queued, so at most one waits for Fyne's goroutine however
// often levels come.
func (g *goLiveScreen) levelArrived(l session.AudioLevel) {
	g.level.Store(&l)
	if !g.levelQueued.Swap(true) {
		g.u.do(g.showLevel)
	}
}

// showLevel moves the meter to the newest level (Fyne's goroutine). The bar is the RMS on a
// 60 dB scale; the text says it in dBFS with the peak.
func (g *goLiveScreen) showLevel() {
	g.levelQueued.Store(false)
	l := g.level.Load()
	if l == nil || g.checkStop == nil || !g.meterOn {
		return // stopped meanwhile: the meter stays empty
	}
	g.meterRMS = l.RMS
	g.meterPeak = l.Peak
	g.meter.SetValue(session.LevelFraction(l.RMS))
}

// meterText is the meter's text: the level in words a sound engineer reads.
func (g *goLiveScreen) meterText() string {
	if !g.meterOn {
		return "No sound"
	}
	if math.IsInf(g.meterRMS, -1) || g.checkStop == nil {
		return "Listening…"
	}
	if g.meterRMS <= -90 {
		return "Silent"
	}
	return fmt.Sprintf("%.0f dBFS (peak %.0f)", g.meterRMS, g.meterPeak)
}
