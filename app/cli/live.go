package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/internal/human"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func (e *env) openData() (session.DataDir, error) {
	d, err := session.OpenDataDir(e.dataDir)
	if err != nil {
		return d, fmt.Errorf("%w (choose another with -data-dir)", err)
	}
	return d, nil
}

// pickDevice resolves a -video/-audio choice to a device (nil for none).
func pickDevice(kind capture.Kind, choice string) (*capture.Device, error) {
	flagName, choices := "-video", "camera, screen, test, scene or none"
	if kind != capture.Camera {
		flagName, choices = "-audio", "mic, test or none"
	}
	var d capture.Device
	var err error
	switch choice {
	case "none", "":
		return nil, nil
	case "test":
		d, err = capture.TestDevice(kind)
	case "scene":
		if kind != capture.Camera {
			return nil, usagef("-audio cannot be the test scene")
		}
		d, err = capture.SceneDevice()
	case "camera", "mic", "default":
		d, err = capture.DefaultDevice(kind)
	case "screen":
		if kind != capture.Camera {
			return nil, usagef("-audio cannot be a screen")
		}
		for _, dev := range capture.Devices() {
			if dev.Kind == capture.Screen {
				return &dev, nil
			}
		}
		return nil, errors.New("no screen to capture (is a display running?)")
	default:
		return nil, usagef("%s %q: choose %s", flagName, choice, choices)
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// checkPaymentFlags refuses payment flags that would be ignored: any on a free stream (the
// network of its payments too), the macaroon and certificate files beside -lnd-dir (which
// reads its own), and the node's settings without -xpub.
func checkPaymentFlags(set map[string]bool, free bool) error {
	var lnd, chain []string
	var all []string // every payment flag given, for a free stream's refusal
	if set["network"] {
		all = append(all, "-network")
	}
	for _, f := range []string{"lnd-dir", "lnd-host", "lnd-macaroon", "lnd-cert"} {
		if set[f] {
			lnd = append(lnd, "-"+f)
		}
	}
	for _, f := range []string{"xpub", "btc-node", "btc-user", "btc-pass", "btc-cookie", "btc-cert", "btc-websocket", "min-conf", "provisional-cap", "gap-limit"} {
		if set[f] {
			chain = append(chain, "-"+f)
		}
	}
	all = append(append(all, lnd...), chain...)
	switch {
	case free && len(all) > 0:
		return usagef("a free stream takes no payment settings (%s); give -price to sell", strings.Join(all, " "))
	case set["lnd-dir"] && (set["lnd-macaroon"] || set["lnd-cert"]):
		return usagef("-lnd-dir reads the macaroon and certificate from LND's directory: give -lnd-dir, or -lnd-macaroon and -lnd-cert, not both")
	case len(chain) > 0 && !set["xpub"]:
		return usagef("%s set the on-chain payments, which need -xpub (the watch-only account key)", strings.Join(chain, " "))
	}
	return nil
}

func (e *env) live(args []string) error {
	fs := e.flags("live")
	name := fs.String("name", "", "the stream's title on its card")
	desc := fs.String("description", "", "what the stream is about (on the card and in the stream)")
	presetName := fs.String("preset", "medium", "quality: low, medium or high (a resumed stream keeps its own unless this is given)")
	video := fs.String("video", "camera", "camera (the test camera when none exists), screen, test, scene (a camera-like test picture) or none")
	audio := fs.String("audio", "mic", "mic (the test microphone when none exists), test or none")
	priceText := fs.String("price", "", `the price, e.g. "1000 sats per hour", "10 sats per 30 seconds" or free (default: free, or the resumed stream's price)`)
	resume := fs.String("resume", "", "continue one of my streams (its ID: see the streams command) under the same card")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	cardFile := fs.String("card-file", "", "also write the card to this file")
	lndDir := fs.String("lnd-dir", "", "LND's directory (tls.cert and data/chain/bitcoin/NETWORK/invoice.macaroon are read from it)")
	lndHost := fs.String("lnd-host", "", "LND's REST address host:port (default: restlisten in lnd.conf, else 127.0.0.1:8080)")
	lndMac := fs.String("lnd-macaroon", "", "LND's invoice.macaroon file (never the admin one)")
	lndCert := fs.String("lnd-cert", "", "LND's tls.cert file")
	network := fs.String("network", "mainnet", "bitcoin network of the payments: mainnet, testnet, signet, regtest or simnet")
	xpub := fs.String("xpub", "", "on-chain: the watch-only account key (xpub/zpub/tpub/vpub, or its wpkh( ) descriptor) payments go to; sell with it from one install only (another would hand out the same addresses)")
	btcNode := fs.String("btc-node", "", "on-chain: the node's RPC address host:port (btcd or Bitcoin Core)")
	btcUser := fs.String("btc-user", "", "on-chain: RPC user")
	btcPass := fs.String("btc-pass", "", "on-chain: RPC password (or $DAZAAR_VISION_BTC_PASS)")
	btcCookie := fs.String("btc-cookie", "", "on-chain: Bitcoin Core's .cookie file instead of user and password")
	btcCert := fs.String("btc-cert", "", "on-chain: btcd's rpc.cert (TLS); without it only a node on this machine is used")
	btcWS := fs.Bool("btc-websocket", false, "on-chain: the node is btcd (push notifications instead of polling)")
	minConf := fs.Int("min-conf", 1, "on-chain: confirmations that settle a payment")
	provCap := fs.Uint64("provisional-cap", 0, "on-chain: sats a viewer may watch on before confirmation (0: wait for min-conf)")
	gapLimit := fs.Uint("gap-limit", 0, "on-chain: how many viewers may hold an unpaid address at once; set the same gap limit in your wallet (0: the default, 20)")
	var listen listFlag
	fs.Var(&listen, "listen", "multiaddrs to listen on (default: every interface, TCP and QUIC)")
	uplink := fs.Int64("uplink", 0, "free streams: your upload speed in kbit/s; viewers beyond what it carries are sent to viewers who relay (0: unknown, 3 served directly)")
	direct := fs.Int("direct-viewers", 0, "free streams: serve at most this many viewers yourself, the rest through relaying viewers (overrides -uplink)")
	lan := fs.Bool("lan", false, "use private and loopback addresses for direct connections (a LAN, or testing on one machine)")
	if _, err := parse(fs, args, 0, 0, "[flags]"); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	preset, err := broadcast.PresetByName(*presetName)
	if err != nil {
		return usagef("%v", err)
	}
	data, err := e.openData()
	if err != nil {
		return err
	}
	if *resume != "" {
		rec, err := data.Stream(*resume)
		if err != nil {
			return err
		}
		if *priceText == "" {
			*priceText = rec.Price
		}
		// A resumed stream keeps its quality unless told otherwise (as the window does).
		if p, err := broadcast.PresetByName(rec.Preset); err == nil && !set["preset"] {
			preset = p
		}
	}
	if *priceText == "" {
		*priceText = "free"
	}
	if *uplink < 0 || *direct < 0 {
		return usagef("-uplink and -direct-viewers cannot be negative")
	}
	if err := checkDuration(*dur); err != nil {
		return err
	}
	p, err := price.Parse(*priceText)
	if err != nil {
		// The price package's errors say "price: ..." already.
		return usagef("-price: %s", strings.TrimPrefix(err.Error(), "price: "))
	}
	if err := checkPaymentFlags(set, p.IsFree()); err != nil {
		return err
	}
	vd, err := pickDevice(capture.Camera, *video)
	if err != nil {
		return err
	}
	ad, err := pickDevice(capture.Microphone, *audio)
	if err != nil {
		return err
	}
	store, err := e.openSecrets()
	if err != nil {
		return err
	}
	cfg := session.BroadcasterConfig{Data: data, Secrets: store, Resume: *resume, Name: *name, Description: *desc,
		Preset: preset, Video: vd, Audio: ad, Price: p, Logger: e.log,
		Network: session.NetworkConfig{Listen: listen, LAN: *lan, Public: *lan}, UplinkKbps: *uplink, DirectViewers: *direct}
	if !p.IsFree() {
		switch {
		case *lndDir != "":
			ln, err := session.LNDFromDir(*lndDir, *network, *lndHost)
			if err != nil {
				return err
			}
			cfg.Lightning = &ln
		case *lndHost != "" || *lndMac != "" || *lndCert != "":
			host := *lndHost
			if host == "" {
				host = "127.0.0.1:8080" // LND's default REST address
			}
			ln := session.LightningSetup{Host: host, Network: *network}
			if *lndMac != "" {
				if ln.Macaroon, err = os.ReadFile(*lndMac); err != nil {
					return fmt.Errorf("cannot read the macaroon: %w", err)
				}
			}
			if *lndCert != "" {
				if ln.TLSCert, err = os.ReadFile(*lndCert); err != nil {
					return fmt.Errorf("cannot read LND's certificate: %w", err)
				}
			}
			cfg.Lightning = &ln
		}
		if *xpub != "" {
			pass := *btcPass
			if pass == "" {
				pass = os.Getenv("DAZAAR_VISION_BTC_PASS")
			}
			oc := session.OnChainSetup{AccountKey: *xpub, Network: *network, Websocket: *btcWS, MinConf: int32(*minConf),
				ProvisionalCapSats: *provCap, GapLimit: uint32(*gapLimit), Node: onchain.NodeConfig{Host: *btcNode, User: *btcUser, Pass: pass, CookieFile: *btcCookie}}
			if *btcCert != "" {
				if oc.Node.CACert, err = os.ReadFile(*btcCert); err != nil {
					return fmt.Errorf("cannot read the node's certificate: %w", err)
				}
			}
			cfg.OnChain = &oc
		}
		if cfg.Lightning == nil && cfg.OnChain == nil {
			// No back-end on the command line: the ones the last paid stream used.
			if cfg.Lightning, cfg.OnChain, err = session.SavedPayments(data, store); err != nil {
				return err
			}
			saved := ""
			if cfg.Lightning != nil {
				saved = cfg.Lightning.Network
			} else if cfg.OnChain != nil {
				saved = cfg.OnChain.Network
			}
			if set["network"] && saved != "" && saved != *network {
				return usagef("the saved payment set-up sells on %s, not %s: give the payment flags for %s (-lnd-dir, or -xpub with -btc-node)", saved, *network, *network)
			}
		}
		if cfg.Lightning == nil && cfg.OnChain == nil {
			return usagef("a paid stream needs -lnd-dir (or -lnd-host with -lnd-macaroon and -lnd-cert) or -xpub with -btc-node")
		}
	}
	b, err := session.NewBroadcaster(cfg)
	if err != nil {
		return err
	}
	ctx := e.ctx
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	if err := b.Start(ctx); err != nil {
		return fmt.Errorf("cannot go live: %w", err)
	}
	// The figures are rewritten in place on a terminal, so the card stays on the screen.
	status, stopStatus := e.startStatus(e.err)
	defer stopStatus()
	out := status.Writer(e.out)
	c := b.Card()
	fmt.Fprintf(out, "Live: %s\nStream ID %s (resume it with -resume)\nShare this card with viewers:\n%s\n", c.Terms(), b.ID(), c.String())
	if *cardFile != "" {
		if err := os.WriteFile(*cardFile, []byte(c.String()+"\n"), 0o644); err != nil {
			fmt.Fprintf(status.Writer(e.err), "cannot write the card to %s: %v\n", *cardFile, err)
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b.Stop()
			// After Stop the figures are the feed's final state (the last block appended).
			f := b.Snapshot()
			fmt.Fprintf(out, "stopped after %s live: %d blocks (%s) in the stream; resume it with -resume %s\n",
				f.Until.Sub(f.Since).Round(time.Second), f.Blocks, human.Bytes(f.FeedBytes), b.ID())
			return nil
		case <-b.Done():
			return fmt.Errorf("the broadcast stopped: %w", b.Err())
		case ev := <-b.Events():
			if ev.Kind == session.EventPayment || ev.Kind == session.EventViewer || ev.Kind == session.EventError {
				fmt.Fprintf(out, "%s %s %s\n", ev.Time.Format("15:04:05"), short(ev.Viewer), ev.Text)
			}
		case <-tick.C:
			f := b.Snapshot()
			status.Show(time.Now(), fmt.Sprintf("viewers %d (paying %d) · earned %s · uploaded %s · %.0f fps %.0f kbit/s",
				f.Viewers, f.Paying, f.Earned(), human.Bytes(f.BytesUp), f.FPS, f.VideoKbps+f.AudioKbps),
				fmt.Sprintf("%d %d", f.Viewers, f.Paying))
		}
	}
}

func short(id string) string {
	if len(id) > 12 {
		return id[:6] + "…" + id[len(id)-4:]
	}
	return id
}

func (e *env) streams(args []string) error {
	fs := e.flags("streams")
	if _, err := parse(fs, args, 0, 0, ""); err != nil {
		return err
	}
	data, err := e.openData()
	if err != nil {
		return err
	}
	mine, err1 := data.MyStreams()
	fmt.Fprintln(e.out, "My streams:")
	if len(mine) == 0 {
		fmt.Fprintln(e.out, "  (none yet: go live with `dazaar-vision live`)")
	}
	for _, s := range mine {
		fmt.Fprintf(e.out, "  %s  %s  %d blocks, %s, last live %s\n    resume: dazaar-vision live -resume %s\n",
			s.ID[:8]+"…"+s.ID[len(s.ID)-4:], listedName(s.Name, s.Description), s.Blocks, human.Bytes(s.Bytes), s.LastLive.Format(time.DateTime), s.ID)
	}
	watched, err2 := data.Watched()
	fmt.Fprintln(e.out, "Watched:")
	if len(watched) == 0 {
		fmt.Fprintln(e.out, "  (none yet: paste a card into `dazaar-vision watch`)")
	}
	for _, w := range watched {
		fmt.Fprintf(e.out, "  %s  %s  %s on disk, last watched %s, %d invoices asked for\n    open again: dazaar-vision watch %s\n",
			w.ID[:8]+"…"+w.ID[len(w.ID)-4:], listedName(w.Name, w.Description), human.Bytes(w.Bytes), w.LastWatched.Format(time.DateTime), len(w.Purchases), w.Card)
	}
	return errors.Join(err1, err2)
}

// listedName is a stream's name, quoted, then its description in brackets, as `streams`
// lists them; "(no name)" (unquoted, as `card inspect` says it) for a blank name.
func listedName(name, description string) string {
	n := noName
	if strings.TrimSpace(name) != "" {
		n = strconv.Quote(name)
	}
	if d := strings.TrimSpace(description); d != "" {
		// (Before, name and description were one quoted string, read as the title.)
		n += " (" + strconv.Quote(d) + ")"
	}
	return n
}

// noName stands for a blank stream name wherever one is shown.
const noName = "(no name)"

// shownName is a card's name as shown, "(no name)" when it is blank.
func shownName(name string) string {
	if strings.TrimSpace(name) == "" {
		return noName
	}
	return name
}

// checkDuration refuses a negative -duration (0, or none given, means until interrupted).
func checkDuration(d time.Duration) error {
	if d < 0 {
		return usagef("-duration %v cannot be negative: give how long to run, or leave it out to run until interrupted", d)
	}
	return nil
}
