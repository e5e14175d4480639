package session

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// BIP84's test vectors (mainnet account 0).
const (
	testZpub = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
	testZprv = "zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm1yYNZKEm7z6qUWCroSQnE"
)

func TestSourcesOfferTestDevices(t *testing.T) {
	video, audio := Sources()
	var testCam, testMic bool
	for _, s := range video {
		testCam = testCam || (s.Test && s.Kind == SourceCamera && strings.HasPrefix(s.Label, "Test camera"))
	}
	for _, s := range audio {
		testMic = testMic || (s.Test && s.Kind == SourceMicrophone && strings.HasPrefix(s.Label, "Test microphone"))
	}
	if !testCam || !testMic {
		t.Fatalf("the test devices are not offered: video %+v audio %+v", video, audio)
	}
}

func TestQualitiesWrittenOut(t *testing.T) {
	q := Qualities()
	want := map[string]string{
		"low":    "640×360, 15 frames a second, 300 kbit/s video + 24 kbit/s sound",
		"medium": "640×480, 30 frames a second, 1.2 Mbit/s video + 32 kbit/s sound",
		"high":   "1280×720, 30 frames a second, 2.5 Mbit/s video + 64 kbit/s sound",
	}
	if len(q) != len(want) {
		t.Fatalf("qualities %+v", q)
	}
	for _, x := range q {
		if want[x.Name] != x.Text {
			t.Errorf("%s: %q, want %q", x.Name, x.Text, want[x.Name])
		}
	}
}

func TestGoLiveConfig(t *testing.T) {
	video, audio := Sources()
	cam, mic := &video[len(video)-1], &audio[len(audio)-1]
	paid, _ := price.New(100, 1, price.Minute)
	d := DataDir{Root: t.TempDir()}
	cases := []struct {
		name string
		g    GoLive
		err  string
	}{
		{"free with both", GoLive{Video: cam, Audio: mic}, ""},
		{"audio only", GoLive{Audio: mic, Quality: "low"}, ""},
		{"nothing to capture", GoLive{}, "pick a camera"},
		{"unknown quality", GoLive{Video: cam, Quality: "ultra"}, "ultra"},
		{"paid without a way to be paid", GoLive{Video: cam, Price: paid}, "needs a way to be paid"},
		{"paid on-chain", GoLive{Video: cam, Price: paid, OnChain: &OnChainForm{AccountKey: testZpub, Network: "mainnet", Node: "127.0.0.1:8332"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := c.g.Config(d, secrets.NewMemory(), NetworkConfig{}, nil)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg.Video != nil) != (c.g.Video != nil) || (cfg.Audio != nil) != (c.g.Audio != nil) || cfg.Preset.Name == "" {
				t.Fatalf("config %+v", cfg)
			}
			if c.g.OnChain != nil && (cfg.OnChain == nil || cfg.OnChain.MinConf != 1 || cfg.OnChain.Node.Host != "127.0.0.1:8332") {
				t.Fatalf("on-chain %+v", cfg.OnChain)
			}
			if _, err := NewBroadcaster(cfg); err != nil {
				t.Fatalf("the broadcaster refuses the config: %v", err)
			}
		})
	}
}

func TestCheckAccountKey(t *testing.T) {
	cases := []struct{ name, key, network, err string }{
		{"zpub", testZpub, "mainnet", ""},
		{"private key", testZprv, "mainnet", "never paste it here"},
		{"other network", testZpub, "testnet", "mainnet"},
		{"garbage", "hello", "mainnet", "onchain"},
	}
	for _, c := range cases {
		err := CheckAccountKey(c.key, c.network)
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
}

func TestTestOnChain(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	msg, err := TestOnChain(context.Background(), OnChainForm{AccountKey: testZpub, Network: "mainnet", Node: l.Addr().String()})
	// BIP84's first receive address of this account.
	if err != nil || !strings.Contains(msg, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu") {
		t.Fatalf("%q %v", msg, err)
	}
	closed := l.Addr().String()
	l.Close()
	if _, err := TestOnChain(context.Background(), OnChainForm{AccountKey: testZpub, Network: "mainnet", Node: closed}); err == nil || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("a closed port: %v", err)
	}
	if _, err := TestOnChain(context.Background(), OnChainForm{AccountKey: testZprv, Network: "mainnet", Node: closed}); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("a private key: %v", err)
	}
}

func TestCheckMacaroonRefusesJunk(t *testing.T) {
	if err := CheckMacaroon([]byte("not a macaroon")); err == nil {
		t.Fatal("junk accepted as a macaroon")
	}
}

func TestViewState(t *testing.T) {
	cases := []struct {
		f    ViewFigures
		want ViewState
	}{
		{ViewFigures{}, ViewConnecting},
		{ViewFigures{Connected: true, Access: wire.Free}, ViewFree},
		{ViewFigures{Connected: true, Access: wire.Allowed}, ViewPaid},
		{ViewFigures{Connected: true, Access: wire.Refused, Reason: "No time left"}, ViewRefused},
	}
	for _, c := range cases {
		if got := c.f.State(); got != c.want {
			t.Errorf("%+v: %v, want %v", c.f, got, c.want)
		}
	}
}

// TestViewFiguresPaymentSeen: the ledger gate's reason for a payment awaiting its confirmation
// is told apart from the other refusals.
func TestViewFiguresPaymentSeen(t *testing.T) {
	seen := refusal([]ledger.Credit{{ID: "btc:a:0", State: ledger.Provisional}})
	for _, c := range []struct {
		f    ViewFigures
		want bool
	}{
		{ViewFigures{Connected: true, Access: wire.Refused, Reason: seen}, true},
		{ViewFigures{Connected: true, Access: wire.Refused, Reason: refusal(nil)}, false},
		{ViewFigures{Connected: true, Access: wire.Refused, Reason: refusal([]ledger.Credit{{ID: "ln:x", Msat: 1000, Millis: 1, State: ledger.Settled}})}, false},
		{ViewFigures{Connected: true, Access: wire.Allowed, Reason: seen}, false},
		{ViewFigures{Reason: seen}, false},
	} {
		if got := c.f.PaymentSeen(); got != c.want {
			t.Errorf("%+v: PaymentSeen %v, want %v", c.f, got, c.want)
		}
	}
}

func TestQRPNG(t *testing.T) {
	b, err := QRPNG("dzv1qqqq", 256)
	if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Fatalf("%v %q", err, b[:min(8, len(b))])
	}
}

func TestHasLightning(t *testing.T) {
	s := secrets.NewMemory()
	if HasLightning(s) {
		t.Fatal("an empty store has LND credentials")
	}
	s.Set("lnd.invoice.macaroon", []byte{1})
	s.Set("lnd.tls.cert", []byte{1})
	if !HasLightning(s) {
		t.Fatal("the stored credentials are not seen")
	}
}

// A new broadcast starts on a camera, never on the screen: on a machine without a camera the
// screen is listed first, and the wizard still starts on the test camera.
func TestDefaultVideoIsNeverTheScreen(t *testing.T) {
	screen := Source{Kind: SourceScreen, Label: "Screen: X11Screen0"}
	cam := Source{Kind: SourceCamera, Label: "Camera: USB"}
	testCam := Source{Kind: SourceCamera, Label: "Test camera (no camera found)", Test: true}
	scene := Source{Kind: SourceCamera, Label: "Test scene", Test: true}
	scene.dev.Label = "TestScene" // capture's label for the test scene
	for _, c := range []struct {
		name  string
		video []Source
		want  int
	}{
		{"camera first", []Source{cam, screen, testCam}, 0},
		{"camera after the screen", []Source{screen, cam, testCam}, 1},
		{"no camera", []Source{screen, testCam, scene}, 1},
		{"the test camera before the scene", []Source{screen, scene, testCam}, 2},
		{"only the scene", []Source{screen, scene}, 1},
		{"only the screen", []Source{screen}, 1}, // "No picture"
		{"nothing", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := DefaultVideo(c.video); got != c.want {
				t.Errorf("DefaultVideo = %d, want %d", got, c.want)
			}
		})
	}
}
