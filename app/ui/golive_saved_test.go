package ui

import (
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
)

// The payment step starts from what the last paid stream saved (settings.json and the secret
// store): "Use the credentials saved earlier" goes live with the saved LND host and network,
// and the on-chain wallet comes back as it was.
func TestGoLiveSavedPayments(t *testing.T) {
	const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	cases := []struct {
		name     string
		settings session.Settings
		secrets  map[string]string
		check    func(t *testing.T, cfg session.BroadcasterConfig)
	}{
		{
			name:     "LND on another machine, testnet",
			settings: session.Settings{Lightning: &session.LightningSettings{Host: "umbrel.local:8080", Network: "testnet"}},
			secrets:  map[string]string{secrets.NameLNDMacaroon: "mac", secrets.NameLNDTLSCert: cert},
			check: func(t *testing.T, cfg session.BroadcasterConfig) {
				if ln := cfg.Lightning; ln == nil || ln.Host != "umbrel.local:8080" || ln.Network != "testnet" {
					t.Errorf("Lightning: %+v, want umbrel.local:8080 on testnet", ln)
				}
				if cfg.OnChain != nil {
					t.Errorf("on-chain payments were not set up, yet the stream takes them: %+v", cfg.OnChain)
				}
			},
		},
		{
			name: "an on-chain wallet only",
			settings: session.Settings{OnChain: &session.OnChainSettings{Network: "mainnet", Node: "node.local:8334", User: "rpc",
				Websocket: true, MinConf: 3, GapLimit: 50, ProvisionalCapSats: 2000, ProvisionalTotalCapSats: 9000}},
			secrets: map[string]string{secrets.NameOnChainAccountKey: testZpub, secrets.NameOnChainNodePass: "hunter2",
				secrets.NameOnChainNodeCert: cert},
			check: func(t *testing.T, cfg session.BroadcasterConfig) {
				if cfg.Lightning != nil {
					t.Errorf("Lightning was not set up, yet the stream takes it: %+v", cfg.Lightning)
				}
				oc := cfg.OnChain
				if oc == nil {
					t.Fatal("no on-chain payments")
				}
				if oc.AccountKey != testZpub || oc.Network != "mainnet" || oc.Node.Host != "node.local:8334" || oc.Node.User != "rpc" ||
					oc.Node.Pass != "hunter2" || string(oc.Node.CACert) != cert || !oc.Websocket || oc.MinConf != 3 || oc.GapLimit != 50 ||
					oc.ProvisionalCapSats != 2000 || oc.ProvisionalTotalCapSats != 9000 {
					t.Errorf("on-chain: %+v", oc)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer checkLeaks(t)()
			d, err := session.OpenDataDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := d.SaveSettings(c.settings); err != nil {
				t.Fatal(err)
			}
			store := secrets.NewMemory()
			for k, v := range c.secrets {
				if err := store.Set(k, []byte(v)); err != nil {
					t.Fatal(err)
				}
			}
			h := newHarness(t, test.NewTempApp(t), Options{Data: d, Store: store})
			defer h.close()
			h.u.showGoLive("")
			g := h.u.cur.(*goLiveScreen)
			h.waitFor("the wizard to load", func() bool { return !g.next.Disabled() })
			g.pay.SetSelected(payPaid)
			f, err := g.form()
			if err != nil {
				t.Fatalf("the form: %v", err)
			}
			cfg, err := f.Config(d, store, loopback, nil)
			if err != nil {
				t.Fatalf("the form's answers: %v", err)
			}
			c.check(t, cfg)
		})
	}
}
