package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/swarm"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
)

// NetworkConfig is how a session's libp2p node joins the network.
type NetworkConfig struct {
	// Listen are multiaddrs to listen on; empty listens on every interface (TCP and QUIC).
	Listen []string
	// Bootstrap are other nodes of the app for the DHT (multiaddrs with /p2p/).
	Bootstrap []string
	// LAN lets private and loopback addresses be used for direct upgrades (a LAN, or tests).
	LAN bool
	// Public skips AutoNAT: the node knows it is reachable (tests on loopback, a server).
	Public bool
}

// identity returns the node's key from the secret store, making one on first use, so the peer
// ID on a card stays the same across restarts (and a restored backup keeps it).
func identity(store SecretStore) ([]byte, error) {
	b, err := store.Get(secrets.NameP2PIdentity)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, secrets.ErrNotFound) {
		return nil, fmt.Errorf("cannot read the network identity from the secret store: %w", err)
	}
	b, err = p2p.NewIdentity()
	if err != nil {
		return nil, err
	}
	if err := store.Set(secrets.NameP2PIdentity, b); err != nil {
		return nil, fmt.Errorf("cannot keep the new network identity in the secret store: %w", err)
	}
	return b, nil
}

// ErrOwnStream is Viewer.Start's answer to a card this install sells: the viewer would be
// the seller's own network identity, which the seller cannot dial.
var ErrOwnStream = errors.New("this card is your own broadcast: this install sells it, and a viewer needs a network identity of its own. " +
	"Watch it from another computer or user account; while you are live, the Live view shows what viewers see")

// identityKey is this install's network identity as a key (made on first use).
func identityKey(store SecretStore) (crypto.PrivKey, error) {
	idb, err := identity(store)
	if err != nil {
		return nil, err
	}
	key, err := p2p.ParseIdentity(idb)
	if err != nil {
		return nil, fmt.Errorf("the stored network identity is damaged: %w", err)
	}
	return key, nil
}

// selfID is the peer ID of this install's network identity.
func selfID(store SecretStore) (peer.ID, error) {
	key, err := identityKey(store)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(key)
}

func startNode(ctx context.Context, store SecretStore, nc NetworkConfig, log *slog.Logger) (*p2p.Node, error) {
	key, err := identityKey(store)
	if err != nil {
		return nil, err
	}
	cfg := p2p.Config{Identity: key, ListenAddrs: nc.Listen, PrivateAddrs: nc.LAN,
		Protocols: []protocol.ID{wire.Protocol, swarm.HaveProtocol}, Logger: log}
	if nc.Public {
		cfg.Reachability = p2p.ReachabilityPublic
	}
	for _, s := range nc.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q is not a libp2p address with /p2p/: %w", s, err)
		}
		cfg.Bootstrap = append(cfg.Bootstrap, *ai)
	}
	n, err := p2p.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot start networking: %w", err)
	}
	return n, nil
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
