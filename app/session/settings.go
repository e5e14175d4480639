package session

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
)

// Settings is settings.json: the payment back-ends a seller set up last, so that the next
// stream (or a resume) does not ask again. It holds no secret: the LND macaroon and
// certificate, the watch-only account key, the node's RPC password and certificate are in the
// secret store, under app/secrets' names.
type Settings struct {
	Lightning *LightningSettings `json:"lightning,omitempty"`
	OnChain   *OnChainSettings   `json:"onchain,omitempty"`
}

// LightningSettings is the non-secret part of a LightningSetup.
type LightningSettings struct {
	Host    string `json:"host"`
	Network string `json:"network"`
}

// OnChainSettings is the non-secret part of an OnChainSetup.
type OnChainSettings struct {
	Network                 string `json:"network"`
	Node                    string `json:"node"`
	User                    string `json:"user,omitempty"`
	CookieFile              string `json:"cookieFile,omitempty"`
	Websocket               bool   `json:"websocket,omitempty"`
	MinConf                 int32  `json:"minConf"`
	GapLimit                uint32 `json:"gapLimit,omitempty"`
	ProvisionalCapSats      uint64 `json:"provisionalCapSats,omitempty"`
	ProvisionalTotalCapSats uint64 `json:"provisionalTotalCapSats,omitempty"`
}

func (d DataDir) settingsPath() string { return filepath.Join(d.Root, "settings.json") }

// LoadSettings reads settings.json; a data directory without one has empty settings.
func (d DataDir) LoadSettings() (Settings, error) {
	var s Settings
	err := readJSON(d.settingsPath(), &s)
	if errors.Is(err, fs.ErrNotExist) {
		return Settings{}, nil
	}
	return s, err
}

// SaveSettings replaces settings.json (atomically).
func (d DataDir) SaveSettings(s Settings) error { return writeJSON(d.settingsPath(), s) }

// RememberPayments keeps the payment back-ends a stream went live with: the non-secret parts
// in settings.json, the secret parts in store. A nil ln or oc forgets that back-end's settings
// (its secrets stay in the store until replaced).
func RememberPayments(d DataDir, store SecretStore, ln *LightningSetup, oc *OnChainSetup) error {
	s, err := d.LoadSettings()
	if err != nil {
		s = Settings{} // a damaged file is replaced by what works now
	}
	s.Lightning, s.OnChain = nil, nil
	if ln != nil {
		if len(ln.Macaroon) > 0 {
			if err := store.Set(secrets.NameLNDMacaroon, ln.Macaroon); err != nil {
				return fmt.Errorf("cannot keep the LND macaroon in the secret store: %w", err)
			}
		}
		if len(ln.TLSCert) > 0 {
			if err := store.Set(secrets.NameLNDTLSCert, ln.TLSCert); err != nil {
				return fmt.Errorf("cannot keep the LND certificate in the secret store: %w", err)
			}
		}
		s.Lightning = &LightningSettings{Host: ln.Host, Network: ln.Network}
	}
	if oc != nil {
		if err := store.Set(secrets.NameOnChainAccountKey, []byte(strings.TrimSpace(oc.AccountKey))); err != nil {
			return fmt.Errorf("cannot keep the account key in the secret store: %w", err)
		}
		if oc.Node.Pass != "" {
			if err := store.Set(secrets.NameOnChainNodePass, []byte(oc.Node.Pass)); err != nil {
				return fmt.Errorf("cannot keep the node's RPC password in the secret store: %w", err)
			}
		}
		if len(oc.Node.CACert) > 0 {
			if err := store.Set(secrets.NameOnChainNodeCert, oc.Node.CACert); err != nil {
				return fmt.Errorf("cannot keep the node's certificate in the secret store: %w", err)
			}
		}
		s.OnChain = &OnChainSettings{Network: oc.Network, Node: oc.Node.Host, User: oc.Node.User,
			CookieFile: oc.Node.CookieFile, Websocket: oc.Websocket, MinConf: oc.MinConf, GapLimit: oc.GapLimit,
			ProvisionalCapSats: oc.ProvisionalCapSats, ProvisionalTotalCapSats: oc.ProvisionalTotalCapSats}
	}
	return d.SaveSettings(s)
}

// SavedPayments is what RememberPayments kept, with the secrets read back from store: nil for
// a back-end never set up. A back-end whose secrets are missing from the store (a new machine
// before the identity backup was restored) is an error that says so.
func SavedPayments(d DataDir, store SecretStore) (ln *LightningSetup, oc *OnChainSetup, err error) {
	s, err := d.LoadSettings()
	if err != nil {
		return nil, nil, err
	}
	if l := s.Lightning; l != nil {
		ln = &LightningSetup{Host: l.Host, Network: l.Network}
		if !HasLightning(store) {
			return nil, nil, errors.New("the LND credentials set up earlier are not in the secret store: set up Lightning again or restore your backup")
		}
		// The client reads the macaroon and certificate from the store itself.
	}
	if c := s.OnChain; c != nil {
		key, err := store.Get(secrets.NameOnChainAccountKey)
		if err != nil {
			return nil, nil, fmt.Errorf("the on-chain account key set up earlier is not in the secret store: set it up again or restore your backup: %w", err)
		}
		oc = &OnChainSetup{AccountKey: string(key), Network: c.Network, Websocket: c.Websocket, MinConf: c.MinConf,
			GapLimit: c.GapLimit, ProvisionalCapSats: c.ProvisionalCapSats, ProvisionalTotalCapSats: c.ProvisionalTotalCapSats,
			Node: onchain.NodeConfig{Host: c.Node, User: c.User, CookieFile: c.CookieFile}}
		if p, err := store.Get(secrets.NameOnChainNodePass); err == nil {
			oc.Node.Pass = string(p)
		} else if !errors.Is(err, secrets.ErrNotFound) {
			return nil, nil, fmt.Errorf("cannot read the node's RPC password from the secret store: %w", err)
		}
		if cert, err := store.Get(secrets.NameOnChainNodeCert); err == nil {
			oc.Node.CACert = cert
		} else if !errors.Is(err, secrets.ErrNotFound) {
			return nil, nil, fmt.Errorf("cannot read the node's certificate from the secret store: %w", err)
		}
	}
	return ln, oc, nil
}

// SavedForm is what RememberPayments kept, as the Go live form shows it again: the Lightning
// host and network, and the on-chain fields with the secrets the store holds (store may be
// nil: those are then left empty, as are secrets missing from it). Nil for a back-end never
// set up.
func SavedForm(d DataDir, store SecretStore) (ln *LightningSettings, oc *OnChainForm, err error) {
	s, err := d.LoadSettings()
	if err != nil {
		return nil, nil, err
	}
	ln = s.Lightning
	if c := s.OnChain; c != nil {
		oc = &OnChainForm{Network: c.Network, Node: c.Node, User: c.User, CookieFile: c.CookieFile,
			Websocket: c.Websocket, MinConf: c.MinConf, GapLimit: c.GapLimit,
			ProvisionalCapSats: c.ProvisionalCapSats, ProvisionalTotalCapSats: c.ProvisionalTotalCapSats}
		if store != nil {
			if key, err := store.Get(secrets.NameOnChainAccountKey); err == nil {
				oc.AccountKey = string(key)
			}
			if p, err := store.Get(secrets.NameOnChainNodePass); err == nil {
				oc.Pass = string(p)
			}
			if cert, err := store.Get(secrets.NameOnChainNodeCert); err == nil {
				oc.CACert = cert
			}
		}
	}
	return ln, oc, nil
}
