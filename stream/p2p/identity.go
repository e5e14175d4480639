// Package p2p runs the app's libp2p node: a host with a persisted Ed25519 identity, TCP and QUIC
// transports secured with Noise, a resource manager with stated limits, a Kademlia DHT in server
// mode, circuit relay v2 (client and service), AutoNAT and hole punching.
//
// The package never stores secrets: the caller keeps the identity key (in the OS keyring or an
// encrypted file) and hands it over as bytes.
package p2p

import (
	"crypto/rand"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// NewIdentity makes a fresh Ed25519 identity and returns it in libp2p's protobuf key encoding,
// ready for the caller's secret store. Pass the same bytes to Config.Identity on every start so
// that the peer ID on a card stays valid.
func NewIdentity() ([]byte, error) {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make node identity: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("encode node identity: %w", err)
	}
	return b, nil
}

// ParseIdentity decodes an identity made by NewIdentity. Only Ed25519 keys are accepted.
func ParseIdentity(b []byte) (crypto.PrivKey, error) {
	sk, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("node identity is not a valid libp2p private key: %w", err)
	}
	if sk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("node identity is a %s key; an Ed25519 key is required", sk.Type())
	}
	return sk, nil
}

// IdentityPeerID returns the peer ID (as printed on a card) of an identity made by NewIdentity.
func IdentityPeerID(b []byte) (peer.ID, error) {
	sk, err := ParseIdentity(b)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(sk)
}
