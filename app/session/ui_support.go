package session

// What the desktop UI needs of the sessions in its own terms, so that app/ui imports no
// capture, encoder, network or node-client package: capture sources, quality presets written
// out, a "Go live" form turned into a BroadcasterConfig, the viewer's access state, checks
// for the payment fields, and QR codes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/invoice"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/paymentqr"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// SourceKind is what a capture source gives.
type SourceKind int

// Source kinds.
const (
	SourceCamera SourceKind = iota + 1
	SourceScreen
	SourceMicrophone
)

// Source is a camera, screen or microphone as the UI lists it.
type Source struct {
	Kind  SourceKind
	Label string // what to show: the device's name, or "Test camera (no camera found)"
	Test  bool   // a generated test picture or tone
	dev   capture.Device
}

// Sources lists what can be captured: video (cameras, the screen when a display is running,
// the test camera and the test scene last) and audio (microphones, the test microphone last). The test devices
// are always offered, so a machine without a camera or microphone can still go live.
func Sources() (video, audio []Source) {
	devs := capture.Devices()
	haveScreen := false
	for _, d := range devs {
		if d.Kind == capture.Screen {
			haveScreen = true
		}
	}
	if !haveScreen && screenAvailable() {
		capture.RescanScreens()
		devs = capture.Devices()
	}
	var realCam, realMic bool
	for _, d := range devs {
		if d.Test {
			continue
		}
		switch d.Kind {
		case capture.Camera:
			realCam = true
			video = append(video, Source{Kind: SourceCamera, Label: "Camera: " + devName(d), dev: d})
		case capture.Screen:
			video = append(video, Source{Kind: SourceScreen, Label: "Screen: " + devName(d), dev: d})
		case capture.Microphone:
			realMic = true
			audio = append(audio, Source{Kind: SourceMicrophone, Label: "Microphone: " + devName(d), dev: d})
		}
	}
	for _, d := range devs {
		if !d.Test {
			continue
		}
		switch d.Kind {
		case capture.Camera:
			l := "Test camera (moving colour bars)"
			switch {
			case capture.IsScene(d):
				l = "Test scene (a camera-like moving picture)"
			case !realCam:
				l = "Test camera (no camera found)"
			}
			video = append(video, Source{Kind: SourceCamera, Label: l, Test: true, dev: d})
		case capture.Microphone:
			l := "Test microphone (a tone)"
			if !realMic {
				l = "Test microphone (no microphone found)"
			}
			audio = append(audio, Source{Kind: SourceMicrophone, Label: l, Test: true, dev: d})
		}
	}
	return video, audio
}

// DefaultVideo is the index in video (as Sources lists it) of the picture a new broadcast
// starts on: the first camera, else the test camera (the moving colour bars before the test
// scene), else len(video), which the wizard shows as "No picture". The screen is never the
// default, even on a machine without a camera: sharing it is the broadcaster's own choice.
func DefaultVideo(video []Source) int {
	test, other := -1, -1
	for i, s := range video {
		switch {
		case s.Kind == SourceCamera && !s.Test:
			return i
		case s.Kind == SourceCamera && test < 0 && !capture.IsScene(s.dev):
			test = i
		case s.Kind == SourceCamera && other < 0:
			other = i
		}
	}
	switch {
	case test >= 0:
		return test
	case other >= 0:
		return other
	}
	return len(video)
}

func screenAvailable() bool {
	return runtime.GOOS != "linux" || os.Getenv("DISPLAY") != ""
}

func devName(d capture.Device) string {
	if d.Name != "" && d.Name != d.Label {
		return d.Name + " (" + d.Label + ")"
	}
	return d.Label
}

// Quality is a preset written out for people.
type Quality struct {
	Name string // low, medium, high
	Text string // "640×480, 30 frames a second, 1.2 Mbit/s video + 32 kbit/s sound"
}

// Qualities lists the presets from lowest to highest.
func Qualities() []Quality {
	var out []Quality
	for _, p := range broadcast.Presets() {
		out = append(out, Quality{Name: p.Name, Text: fmt.Sprintf("%d×%d, %d frames a second, %s video + %s sound",
			p.Width, p.Height, p.FrameRate, bitRate(p.VideoBitRate), bitRate(p.AudioBitRate))})
	}
	return out
}

func bitRate(b int) string {
	if b >= 1_000_000 {
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(b)/1e6), ".0") + " Mbit/s"
	}
	return fmt.Sprintf("%d kbit/s", b/1000)
}

// OnChainForm is the on-chain payment fields as a form holds them.
type OnChainForm struct {
	AccountKey string // xpub/zpub/tpub/vpub
	Network    string
	Node       string // host:port of the node's RPC
	User, Pass string
	CookieFile string // Bitcoin Core's .cookie instead of user and password
	CACert     []byte // btcd's rpc.cert
	Websocket  bool   // the node is btcd
	MinConf    int32
	GapLimit   uint32 // 0: the default (GapLimitHelp says what it means)
	// ProvisionalCapSats and ProvisionalTotalCapSats are OnChainSetup's (kept from the
	// settings of the last paid stream; the wizard has no field for them).
	ProvisionalCapSats      uint64
	ProvisionalTotalCapSats uint64
}

func (f OnChainForm) setup() *OnChainSetup {
	mc := f.MinConf
	if mc <= 0 {
		mc = 1
	}
	return &OnChainSetup{AccountKey: strings.TrimSpace(f.AccountKey), Network: f.Network, Websocket: f.Websocket, MinConf: mc, GapLimit: f.GapLimit,
		ProvisionalCapSats: f.ProvisionalCapSats, ProvisionalTotalCapSats: f.ProvisionalTotalCapSats,
		Node: onchain.NodeConfig{Host: strings.TrimSpace(f.Node), User: f.User, Pass: f.Pass, CookieFile: f.CookieFile, CACert: f.CACert}}
}

// GoLive is the "Go live" wizard's answers.
type GoLive struct {
	Resume      string // one of my streams' IDs, or empty for a new stream
	Name        string
	Description string
	Video       *Source // nil: no picture
	Audio       *Source // nil: no sound
	Quality     string  // a Quality's Name; empty: medium
	Price       price.Price
	Lightning   *LightningSetup
	OnChain     *OnChainForm
	// Preview receives the stream's pictures as viewers get them (the live view's preview).
	Preview playback.FrameSink
}

// Config turns the answers into a BroadcasterConfig, with the checks a form should show next
// to its fields.
func (g GoLive) Config(d DataDir, store SecretStore, n NetworkConfig, log *slog.Logger) (BroadcasterConfig, error) {
	cfg := BroadcasterConfig{Data: d, Secrets: store, Resume: g.Resume, Name: strings.TrimSpace(g.Name),
		Description: strings.TrimSpace(g.Description), Price: g.Price, Lightning: g.Lightning, Network: n, Logger: log, Preview: g.Preview}
	if err := CheckStreamText(cfg.Name, cfg.Description); err != nil {
		return cfg, err
	}
	if g.Video == nil && g.Audio == nil {
		return cfg, errors.New("pick a camera or the screen, a microphone, or both")
	}
	if g.Video != nil {
		dev := g.Video.dev
		cfg.Video = &dev
	}
	if g.Audio != nil {
		dev := g.Audio.dev
		cfg.Audio = &dev
	}
	name := g.Quality
	if name == "" {
		name = broadcast.Medium.Name
	}
	p, err := broadcast.PresetByName(name)
	if err != nil {
		return cfg, err
	}
	cfg.Preset = p
	if g.OnChain != nil {
		cfg.OnChain = g.OnChain.setup()
	}
	if !g.Price.IsFree() {
		if err := g.Price.Validate(); err != nil {
			return cfg, err
		}
		if cfg.Lightning == nil && cfg.OnChain == nil {
			// The back-ends of the last paid stream, when the form left them as they were.
			ln, oc, err := SavedPayments(d, store)
			if err != nil {
				return cfg, err
			}
			cfg.Lightning, cfg.OnChain = ln, oc
		}
		if cfg.Lightning == nil && cfg.OnChain == nil {
			return cfg, errors.New("a paid stream needs a way to be paid: set up Lightning (LND) or an on-chain wallet")
		}
	}
	return cfg, nil
}

// OnChainMinSats is the smallest on-chain invoice a seller makes (fees make smaller ones
// impractical): a viewer's window offers no smaller on-chain buy.
const OnChainMinSats = invoice.DefaultOnChainMinSats

// OnChainMinMinutes is the fewest whole minutes at p that cost OnChainMinSats or more (at
// most MaxBuyMinutes).
func OnChainMinMinutes(p price.Price) uint32 {
	n := uint32(max(1, (p.DurationFor(OnChainMinSats)+time.Minute-1)/time.Minute))
	for ; n < MaxBuyMinutes; n++ {
		if sats, err := p.CostSats(time.Duration(n) * time.Minute); err != nil || sats >= OnChainMinSats {
			break
		}
	}
	return n
}

// CheckMacaroon refuses anything but an invoice macaroon, saying which file to use instead.
func CheckMacaroon(mac []byte) error { return lightning.CheckInvoiceMacaroon(mac) }

// CheckAccountKey refuses a private key or a key of another network, saying what to paste.
func CheckAccountKey(key, network string) error {
	params, err := onchain.Network(network)
	if err != nil {
		return err
	}
	if _, err := onchain.ParseAccountKey(strings.TrimSpace(key), params); err != nil {
		if errors.Is(err, onchain.ErrPrivateKey) {
			return fmt.Errorf("this is a private key: never paste it here. Paste the account's extended public key (xpub, zpub, tpub or vpub), which can only receive: %w", err)
		}
		return err
	}
	return nil
}

// TestOnChain checks the on-chain fields without keeping anything: the account key is a
// watch-only key of the network (its first receive address is shown) and the node's RPC port
// answers.
func TestOnChain(ctx context.Context, f OnChainForm) (string, error) {
	params, err := onchain.Network(f.Network)
	if err != nil {
		return "", err
	}
	if err := CheckAccountKey(f.AccountKey, f.Network); err != nil {
		return "", err
	}
	key, _ := onchain.ParseAccountKey(strings.TrimSpace(f.AccountKey), params)
	addr, err := key.Address(0)
	if err != nil {
		return "", err
	}
	host := strings.TrimSpace(f.Node)
	if host == "" {
		return "", errors.New("give the bitcoin node's RPC address (host:port)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return "", fmt.Errorf("the node at %s cannot be reached: %w", host, err)
	}
	c.Close()
	return fmt.Sprintf("the key is a watch-only %s account (first address %s); the node at %s answers", f.Network, addr, host), nil
}

// ViewState is the viewer's situation in one word.
type ViewState int

// View states.
const (
	ViewConnecting ViewState = iota // looking for the seller
	ViewFree                        // a free stream: blocks flow
	ViewPaid                        // paid time left: blocks flow
	ViewRefused                     // the seller sends nothing (Reason says why: unpaid, time used up)
)

// State is where the viewer stands.
func (f ViewFigures) State() ViewState {
	switch {
	case !f.Connected:
		return ViewConnecting
	case f.Access == wire.Free:
		return ViewFree
	case f.Access == wire.Allowed:
		return ViewPaid
	}
	return ViewRefused
}

// PaymentSeen says the seller refuses because the viewer's on-chain payment was seen and waits
// for its confirmation in a block (the seller's ledger gate says so in its reason, which is all
// the wire carries).
func (f ViewFigures) PaymentSeen() bool {
	return f.State() == ViewRefused && strings.HasPrefix(f.Reason, paymentSeenPrefix)
}

// QRPNG draws text (a card, a payment URI) as a QR code PNG size pixels wide.
func QRPNG(text string, size int) ([]byte, error) { return paymentqr.PNG(text, size) }

// HasLightning reports whether the secret store holds LND credentials from an earlier stream
// (the invoice macaroon and the certificate), so a form can offer to reuse them.
func HasLightning(store SecretStore) bool {
	_, err1 := store.Get(secrets.NameLNDMacaroon)
	_, err2 := store.Get(secrets.NameLNDTLSCert)
	return err1 == nil && err2 == nil
}

// BuyMethod is how a viewer pays (BuyRequest.Method); the zero value lets Buy choose
// (Lightning when the seller takes it).
type BuyMethod = invoicemsg.Method

// Payment methods a viewer can ask for.
const (
	BuyLightning = invoicemsg.Lightning
	BuyOnChain   = invoicemsg.OnChain
)
