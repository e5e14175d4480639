package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/wallet/invoice"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// SecretStore is what sessions need of app/secrets.
type SecretStore interface {
	Get(name string) ([]byte, error)
	Set(name string, value []byte) error
}

// LightningSetup is how the seller's LND is reached. The macaroon and certificate live in the
// secret store (under wallet/lightning's names); setting them here stores them there first.
type LightningSetup struct {
	Host    string // REST host:port
	Network string // mainnet, testnet, signet, regtest, simnet
	// Macaroon and TLSCert, when set, replace what the secret store holds. Only an invoice
	// macaroon is accepted (an admin one is refused with a message saying which file to use).
	Macaroon, TLSCert []byte
}

// OnChainSetup is the seller's watch-only wallet and the node it watches with.
type OnChainSetup struct {
	AccountKey string // xpub/zpub/tpub/vpub of a BIP84 account: never a private key
	Network    string
	Node       onchain.NodeConfig
	// Websocket uses btcd's push notifications; otherwise the node is polled (Bitcoin Core).
	Websocket bool
	MinConf   int32
	// ProvisionalCapSats lets a viewer watch on an unconfirmed payment up to this amount.
	ProvisionalCapSats      uint64
	ProvisionalTotalCapSats uint64
	// GapLimit bounds the addresses handed out and not yet paid (0: the wallet's default,
	// invoice.DefaultGapLimit); show invoice.GapLimitHelp (GapLimitHelp) where it is set.
	GapLimit uint32
}

// GapLimitHelp is the advice to show beside the on-chain gap-limit setting.
const GapLimitHelp = invoice.GapLimitHelp

// LNDFromDir reads an LND directory the way users have it: tls.cert at its root and the
// invoice macaroon under data/chain/bitcoin/<network>/. An admin macaroon is never taken.
func LNDFromDir(dir, network, host string) (LightningSetup, error) {
	cert, err := os.ReadFile(filepath.Join(dir, "tls.cert"))
	if err != nil {
		return LightningSetup{}, fmt.Errorf("no tls.cert in the LND directory %s: %w", dir, err)
	}
	macPath := filepath.Join(dir, "data", "chain", "bitcoin", network, "invoice.macaroon")
	mac, err := os.ReadFile(macPath)
	if errors.Is(err, fs.ErrNotExist) {
		// The usual cause: the network chosen is not the node's. Say which it has.
		var others []string
		if ents, derr := os.ReadDir(filepath.Join(dir, "data", "chain", "bitcoin")); derr == nil {
			for _, e := range ents {
				if _, serr := os.Stat(filepath.Join(dir, "data", "chain", "bitcoin", e.Name(), "invoice.macaroon")); serr == nil {
					others = append(others, e.Name())
				}
			}
		}
		if len(others) > 0 {
			return LightningSetup{}, fmt.Errorf("this LND directory has no invoice macaroon for %s, only for %s: choose that network, or another LND", network, strings.Join(others, " and "))
		}
		return LightningSetup{}, fmt.Errorf("this LND directory has no invoice macaroon for %s (looked for %s): is it LND's directory, and has LND been started on %s?", network, macPath, network)
	}
	if err != nil {
		return LightningSetup{}, fmt.Errorf("cannot read the invoice macaroon %s: %w", macPath, err)
	}
	if host == "" {
		host = lightning.RESTListenFromConf(filepath.Join(dir, "lnd.conf"))
	}
	if host == "" {
		host = "127.0.0.1:8080"
	}
	return LightningSetup{Host: host, Network: network, Macaroon: mac, TLSCert: cert}, nil
}

// lightningClient stores any credentials given and opens the LND client from the secret store.
func lightningClient(store SecretStore, s LightningSetup, log *slog.Logger) (*lightning.Client, error) {
	if len(s.Macaroon) > 0 {
		if err := lightning.CheckInvoiceMacaroon(s.Macaroon); err != nil {
			return nil, err
		}
		if err := store.Set(secrets.NameLNDMacaroon, s.Macaroon); err != nil {
			return nil, fmt.Errorf("cannot keep the LND macaroon in the secret store: %w", err)
		}
	}
	if len(s.TLSCert) > 0 {
		if err := store.Set(secrets.NameLNDTLSCert, s.TLSCert); err != nil {
			return nil, fmt.Errorf("cannot keep the LND certificate in the secret store: %w", err)
		}
	}
	cfg, err := lightning.ConfigFromSecrets(store, s.Host, s.Network)
	if err != nil {
		return nil, fmt.Errorf("the LND credentials are not set up: %w", err)
	}
	cfg.Log = log
	c, err := lightning.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot use this LND: %w", err)
	}
	return c, nil
}

// wallet is the seller's payment side of one stream: ledger, invoice desk and back-ends.
type wallet struct {
	ledger *ledger.Ledger
	desk   *invoice.Seller
}

func openWallet(d DataDir, store SecretStore, stream func() string, p price.Price, ln *LightningSetup, oc *OnChainSetup, log *slog.Logger) (*wallet, string, error) {
	if ln == nil && oc == nil {
		return nil, "", errors.New("a paid stream needs a way to be paid: set up Lightning (LND) or an on-chain wallet (xpub and a node)")
	}
	if err := os.MkdirAll(d.walletDir(), 0o700); err != nil {
		return nil, "", err
	}
	l, err := ledger.Open(filepath.Join(d.walletDir(), "ledger"), log)
	if err != nil {
		return nil, "", plain(log, "cannot open the sales ledger", err)
	}
	cfg := invoice.Config{
		PriceOf: func(s string) (price.Price, bool) {
			if s != stream() {
				return price.Price{}, false
			}
			return p, true
		},
		Ledger:    l,
		StorePath: filepath.Join(d.walletDir(), "invoices"),
		Log:       log,
	}
	network := ""
	if ln != nil {
		c, err := lightningClient(store, *ln, log)
		if err != nil {
			l.Close()
			return nil, "", err
		}
		cfg.Lightning = c
		network = ln.Network
	}
	if oc != nil {
		net, err := onchain.Network(oc.Network)
		if err != nil {
			l.Close()
			return nil, "", err
		}
		key, err := onchain.ParseAccountKey(oc.AccountKey, net)
		if err != nil {
			l.Close()
			return nil, "", fmt.Errorf("the on-chain account key cannot be used: %w", err)
		}
		var desk *invoice.Seller
		wc := onchain.WatchConfig{Node: oc.Node, Net: net, Log: log,
			OnEvent:     func(e onchain.Event) { desk.OnChainEvent(e) },
			StartHeight: invoice.ResumeHeight(l, net)}
		var w onchain.Watcher
		if oc.Websocket {
			w, err = onchain.NewWebsocket(wc)
		} else {
			w, err = onchain.NewPoller(wc)
		}
		if err != nil {
			l.Close()
			return nil, "", fmt.Errorf("cannot watch the bitcoin node: %w", err)
		}
		cfg.OnChain = &invoice.OnChain{Key: key, Watcher: w, MinConf: oc.MinConf,
			ProvisionalCapSats: oc.ProvisionalCapSats, ProvisionalTotalCapSats: oc.ProvisionalTotalCapSats, GapLimit: oc.GapLimit}
		if network != "" && network != oc.Network {
			l.Close()
			return nil, "", fmt.Errorf("the Lightning node is on %s but the on-chain wallet is on %s: use one network", network, oc.Network)
		}
		network = oc.Network
		desk, err = invoice.New(cfg)
		if err != nil {
			l.Close()
			return nil, "", fmt.Errorf("cannot open the invoice desk: %w", err)
		}
		remember(d, store, ln, oc, log)
		return &wallet{ledger: l, desk: desk}, network, nil
	}
	desk, err := invoice.New(cfg)
	if err != nil {
		l.Close()
		return nil, "", fmt.Errorf("cannot open the invoice desk: %w", err)
	}
	remember(d, store, ln, oc, log)
	return &wallet{ledger: l, desk: desk}, network, nil
}

// remember keeps the back-ends a stream opened its wallet with, for the next stream; not being
// able to is logged, not fatal (this stream is paid either way).
func remember(d DataDir, store SecretStore, ln *LightningSetup, oc *OnChainSetup, log *slog.Logger) {
	if err := RememberPayments(d, store, ln, oc); err != nil {
		log.Warn("the payment settings were not saved for the next stream", "err", err)
	}
}

// TestLightning checks a Lightning set-up without keeping anything: the macaroon is an invoice
// macaroon, LND answers over TLS with it, and its network is the one expected. It returns what
// works, in words for the settings screen.
func TestLightning(ctx context.Context, s LightningSetup) (string, error) {
	if len(s.Macaroon) == 0 || len(s.TLSCert) == 0 {
		return "", errors.New("give LND's tls.cert and its invoice.macaroon (or its directory)")
	}
	if err := lightning.CheckInvoiceMacaroon(s.Macaroon); err != nil {
		return "", err
	}
	if err := checkLightning(ctx, lightning.Config{Host: s.Host, Network: s.Network, Macaroon: s.Macaroon, TLSCert: s.TLSCert}); err != nil {
		return "", err
	}
	return fmt.Sprintf("LND at %s answers; the invoice macaroon works (it can make and look up invoices, nothing else); network %s", s.Host, s.Network), nil
}
