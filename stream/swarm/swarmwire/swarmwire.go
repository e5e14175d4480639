// Package swarmwire encodes and decodes the swarm's own messages: the Have a peer tells the
// peers it is linked with, and the redirect that sends a viewer turned away to relays. It is
// apart from package swarm so that its decoders' fuzz targets build without libp2p's hosts.
package swarmwire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Message limits. Every count and length is checked against its cap before anything is
// allocated.
const (
	// MaxHave caps a Have message's body (its encoding is at most 58 bytes; the rest is room
	// for fields a newer peer adds, which are ignored).
	MaxHave = 128
	// MaxRedirectPeers caps the peers a redirect names.
	MaxRedirectPeers = 8
	// MaxRedirectAddrs caps the addresses given for one peer.
	MaxRedirectAddrs = 4
	maxPeerIDLen     = 64
	MaxAddrLen       = 96 // caps an address's encoding in a redirect
	// NoDepth is the depth of a peer that has no source (it is not receiving the stream).
	NoDepth = 255
)

// Message tags. The redirect is carried as a replication app message: its first byte never
// starts another app message of the product (0xd5 is the stream-header message, invoice
// messages start with a small version number).
const (
	haveVersion = 1
	redirectTag = 0xd6
	redirectVer = 1
)

// Have is what a peer of the swarm tells the peers it is linked with, every time it changes
// (at most every 100 ms) and every 2 s: what it holds and whether it can take viewers. It is
// a claim, not signed: it only ranks sources; every block is verified when it arrives.
type Have struct {
	Discovery [32]byte // the feed's discovery key (the feed key is never sent)
	Fork      uint64
	Length    uint64 // verified length held
	Depth     uint8  // relay hops from the seller: 0 is the seller, NoDepth has no source
	Free      uint16 // viewers it would take now
	Relay     bool   // serves the feed to others
}

const haveRelay = 1

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("swarm: malformed message")

// AppendBinary appends the encoding: version, flags, discovery key, fork, length, depth, free.
func (h Have) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if h.Relay {
		flags |= haveRelay
	}
	b = append(b, haveVersion, flags)
	b = append(b, h.Discovery[:]...)
	b = binary.AppendUvarint(b, h.Fork)
	b = binary.AppendUvarint(b, h.Length)
	b = append(b, h.Depth)
	return binary.AppendUvarint(b, uint64(h.Free)), nil
}

// DecodeHave decodes a Have. Unknown flags and trailing bytes (a newer peer's fields) are
// ignored; a newer version is refused.
func DecodeHave(b []byte) (Have, error) {
	var h Have
	if len(b) > MaxHave {
		return h, fmt.Errorf("%w: have of %d bytes", ErrMalformed, len(b))
	}
	if len(b) < 2+32 || b[0] != haveVersion {
		return h, fmt.Errorf("%w: not a have message of version %d", ErrMalformed, haveVersion)
	}
	h.Relay = b[1]&haveRelay != 0
	copy(h.Discovery[:], b[2:34])
	b = b[34:]
	var ok bool
	if h.Fork, b, ok = uvarint(b); !ok {
		return Have{}, fmt.Errorf("%w: fork", ErrMalformed)
	}
	if h.Length, b, ok = uvarint(b); !ok {
		return Have{}, fmt.Errorf("%w: length", ErrMalformed)
	}
	if len(b) < 1 {
		return Have{}, fmt.Errorf("%w: depth", ErrMalformed)
	}
	h.Depth, b = b[0], b[1:]
	var free uint64
	if free, _, ok = uvarint(b); !ok || free > 0xffff {
		return Have{}, fmt.Errorf("%w: free slots", ErrMalformed)
	}
	h.Free = uint16(free)
	return h, nil
}

// uvarint reads a shortest-form uvarint.
func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n != uvarintLen(v) {
		return 0, nil, false
	}
	return v, b[n:], true
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// EncodeRedirect encodes the app message that sends a viewer to other peers: at most
// MaxRedirectPeers, each with at most MaxRedirectAddrs addresses of at most 96 bytes (more
// are left out).
func EncodeRedirect(peers []peer.AddrInfo) []byte {
	if len(peers) > MaxRedirectPeers {
		peers = peers[:MaxRedirectPeers]
	}
	b := []byte{redirectTag, redirectVer, 0}
	n := 0
	for _, p := range peers {
		id := []byte(p.ID)
		if len(id) == 0 || len(id) > maxPeerIDLen {
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		at := len(b)
		b = append(b, 0)
		k := 0
		for _, a := range p.Addrs {
			ab := a.Bytes()
			if len(ab) == 0 || len(ab) > MaxAddrLen || k == MaxRedirectAddrs {
				continue
			}
			b = binary.AppendUvarint(b, uint64(len(ab)))
			b = append(b, ab...)
			k++
		}
		b[at] = byte(k)
		n++
	}
	b[2] = byte(n)
	return b
}

// IsRedirect reports whether an app message is a redirect (whether or not it decodes).
func IsRedirect(msg []byte) bool { return len(msg) > 0 && msg[0] == redirectTag }

// DecodeRedirect decodes a redirect. Every peer ID and address must parse.
func DecodeRedirect(b []byte) ([]peer.AddrInfo, error) {
	if len(b) < 3 || b[0] != redirectTag || b[1] != redirectVer {
		return nil, fmt.Errorf("%w: not a redirect of version %d", ErrMalformed, redirectVer)
	}
	n := int(b[2])
	if n > MaxRedirectPeers {
		return nil, fmt.Errorf("%w: redirect names %d peers (at most %d)", ErrMalformed, n, MaxRedirectPeers)
	}
	b = b[3:]
	out := make([]peer.AddrInfo, 0, n)
	for range n {
		l, rest, ok := uvarint(b)
		if !ok || l == 0 || l > maxPeerIDLen || l > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: peer ID", ErrMalformed)
		}
		id, err := peer.IDFromBytes(rest[:l])
		if err != nil {
			return nil, fmt.Errorf("%w: peer ID: %w", ErrMalformed, err)
		}
		b = rest[l:]
		if len(b) < 1 || b[0] > MaxRedirectAddrs {
			return nil, fmt.Errorf("%w: address count", ErrMalformed)
		}
		k := int(b[0])
		b = b[1:]
		info := peer.AddrInfo{ID: id}
		for range k {
			l, rest, ok := uvarint(b)
			if !ok || l == 0 || l > MaxAddrLen || l > uint64(len(rest)) {
				return nil, fmt.Errorf("%w: address", ErrMalformed)
			}
			a, err := ma.NewMultiaddrBytes(rest[:l])
			if err != nil {
				return nil, fmt.Errorf("%w: address: %w", ErrMalformed, err)
			}
			info.Addrs = append(info.Addrs, a)
			b = rest[l:]
		}
		out = append(out, info)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the redirect", ErrMalformed, len(b))
	}
	return out, nil
}
