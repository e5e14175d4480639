package session

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// One naming for secrets: what the session stores is what the LND client reads.
func TestSecretNamesAgree(t *testing.T) {
	if secrets.NameLNDMacaroon != lightning.SecretMacaroon || secrets.NameLNDTLSCert != lightning.SecretTLSCert {
		t.Fatalf("app/secrets names %q, %q; wallet/lightning reads %q, %q",
			secrets.NameLNDMacaroon, secrets.NameLNDTLSCert, lightning.SecretMacaroon, lightning.SecretTLSCert)
	}
	for _, n := range []string{secrets.NameLNDMacaroon, secrets.NameLNDTLSCert, secrets.NameOnChainAccountKey,
		secrets.NameOnChainNodePass, secrets.NameOnChainNodeCert, secrets.NameP2PIdentity} {
		if err := secrets.ValidateName(n); err != nil {
			t.Error(err)
		}
	}
}

// The back-ends a paid stream used come back for the next one; settings.json holds no secret.
func TestRememberPayments(t *testing.T) {
	d, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := secrets.NewMemory()
	ln0, oc0, err := SavedPayments(d, store)
	if err != nil || ln0 != nil || oc0 != nil {
		t.Fatalf("a new data directory: %v %v %v", ln0, oc0, err)
	}
	mac, cert := []byte("MACAROON-BYTES-0123"), []byte("-----BEGIN CERTIFICATE----- lnd")
	ln := &LightningSetup{Host: "127.0.0.1:8080", Network: "simnet", Macaroon: mac, TLSCert: cert}
	oc := &OnChainSetup{AccountKey: " vpub5SLqN2bLY4WeYBwMrtdanr5SfhRC7AyW1aEwbtVbt7t9y6kgBCS6ajVA4LL7Jy2iojpH1hjaiTMp5h4y9dG2dC64bAk9ZwuFCX6AvxFddaa ",
		Network: "simnet", Websocket: true, MinConf: 2, GapLimit: 100, ProvisionalCapSats: 500,
		Node: onchain.NodeConfig{Host: "127.0.0.1:18556", User: "rpcuser", Pass: "rpc-SECRET-pass", CACert: []byte("btcd-CERT")}}
	if err := RememberPayments(d, store, ln, oc); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(d.settingsPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{mac, cert, []byte("rpc-SECRET-pass"), []byte("btcd-CERT"), []byte("vpub5SL")} {
		if bytes.Contains(raw, secret) {
			t.Fatalf("settings.json holds a secret (%q):\n%s", secret, raw)
		}
	}
	gl, goc, err := SavedPayments(d, store)
	if err != nil {
		t.Fatal(err)
	}
	if gl == nil || gl.Host != ln.Host || gl.Network != ln.Network || !HasLightning(store) {
		t.Fatalf("lightning back: %+v", gl)
	}
	if goc == nil || goc.AccountKey != strings.TrimSpace(oc.AccountKey) || goc.Node.Pass != oc.Node.Pass ||
		!bytes.Equal(goc.Node.CACert, oc.Node.CACert) || goc.GapLimit != 100 || goc.MinConf != 2 ||
		!goc.Websocket || goc.ProvisionalCapSats != 500 || goc.Node.Host != oc.Node.Host || goc.Node.User != "rpcuser" {
		t.Fatalf("on-chain back: %+v", goc)
	}

	// A form left empty for a paid stream takes them.
	p, err := price.Parse("1000 sats per hour")
	if err != nil {
		t.Fatal(err)
	}
	g := GoLive{Name: "x", Audio: &Source{}, Price: p}
	cfg, err := g.Config(d, store, NetworkConfig{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Lightning == nil || cfg.OnChain == nil || cfg.OnChain.GapLimit != 100 {
		t.Fatalf("the form did not take the saved back-ends: %+v %+v", cfg.Lightning, cfg.OnChain)
	}

	// Secrets gone (a new machine before restoring the backup): said plainly.
	if _, _, err := SavedPayments(d, secrets.NewMemory()); err == nil || !strings.Contains(err.Error(), "secret store") {
		t.Fatalf("missing secrets: %v", err)
	}
	// A damaged settings file is an error that names it, and is replaced by the next save.
	if err := os.WriteFile(d.settingsPath(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LoadSettings(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged settings: %v", err)
	}
	if err := RememberPayments(d, store, ln, nil); err != nil {
		t.Fatal(err)
	}
	if gl, goc, err := SavedPayments(d, store); err != nil || gl == nil || goc != nil {
		t.Fatalf("after replacing: %v %v %v", gl, goc, err)
	}
}
