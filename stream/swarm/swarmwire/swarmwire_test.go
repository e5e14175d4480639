package swarmwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func testPeerID(t testing.TB, seed byte) peer.ID {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestHaveRoundTrip(t *testing.T) {
	for _, h := range []Have{
		{},
		{Discovery: [32]byte{1, 2, 3}, Fork: 1, Length: 1 << 40, Depth: 3, Free: 4, Relay: true},
		{Fork: ^uint64(0), Length: ^uint64(0), Depth: NoDepth, Free: 0xffff},
	} {
		b, _ := h.AppendBinary(nil)
		if len(b) > MaxHave {
			t.Fatalf("%+v encodes to %d bytes, over MaxHave", h, len(b))
		}
		got, err := DecodeHave(b)
		if err != nil || got != h {
			t.Fatalf("round trip of %+v: %+v, %v", h, got, err)
		}
		// A newer peer's trailing fields are ignored.
		if got, err := DecodeHave(append(b, 9, 9, 9)); err != nil || got != h {
			t.Fatalf("with trailing bytes: %+v, %v", got, err)
		}
	}
}

func TestDecodeHaveRefuses(t *testing.T) {
	good, _ := Have{Length: 5, Depth: 1, Free: 2, Relay: true}.AppendBinary(nil)
	freeTooBig := append(append([]byte(nil), good[:len(good)-1]...), binary.AppendUvarint(nil, 0x10000)...)
	nonMinimal := append(append([]byte(nil), good[:34]...), 0x80, 0x00) // fork 0 in two bytes
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"short discovery key", good[:20]},
		{"no fork", good[:34]},
		{"no depth", good[:36]},
		{"no free slots", good[:37]},
		{"free slots over 16 bits", freeTooBig},
		{"non-minimal varint", nonMinimal},
		{"truncated varint", append(append([]byte(nil), good[:34]...), 0xff)},
		{"oversized", append(append([]byte(nil), good...), make([]byte, MaxHave)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := DecodeHave(tc.b); err == nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("decoded %+v, err %v", h, err)
			}
		})
	}
}

func TestRedirectRoundTrip(t *testing.T) {
	a1 := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	a2 := ma.StringCast("/ip6/::1/udp/4001/quic-v1")
	var peers []peer.AddrInfo
	for i := range 10 { // more than MaxRedirectPeers: the rest are left out
		peers = append(peers, peer.AddrInfo{ID: testPeerID(t, byte(i+1)), Addrs: []ma.Multiaddr{a1, a2, a1, a2, a1}})
	}
	b := EncodeRedirect(peers)
	if !IsRedirect(b) {
		t.Fatal("not recognised as a redirect")
	}
	got, err := DecodeRedirect(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MaxRedirectPeers {
		t.Fatalf("%d peers, want %d", len(got), MaxRedirectPeers)
	}
	for i, p := range got {
		if p.ID != peers[i].ID || len(p.Addrs) != MaxRedirectAddrs || !p.Addrs[0].Equal(a1) || !p.Addrs[1].Equal(a2) {
			t.Fatalf("peer %d: %v", i, p)
		}
	}
	if got, err := DecodeRedirect(EncodeRedirect(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty redirect: %v, %v", got, err)
	}
}

func TestDecodeRedirectRefuses(t *testing.T) {
	id := testPeerID(t, 7)
	one := EncodeRedirect([]peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/1")}}})
	idb := []byte(id)
	withCount := func(n byte) []byte { b := append([]byte(nil), one...); b[2] = n; return b }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"other tag", append([]byte{0xd5}, one[1:]...)},
		{"version 2", append([]byte{redirectTag, 2}, one[2:]...)},
		{"too many peers", withCount(MaxRedirectPeers + 1)},
		{"more peers than bytes", withCount(2)},
		{"trailing bytes", append(append([]byte(nil), one...), 0)},
		{"peer ID over its cap", append([]byte{redirectTag, redirectVer, 1, maxPeerIDLen + 1}, make([]byte, maxPeerIDLen+2)...)},
		{"peer ID longer than the message", []byte{redirectTag, redirectVer, 1, 40, 1, 2}},
		{"zero-length peer ID", []byte{redirectTag, redirectVer, 1, 0, 0}},
		{"garbage peer ID", []byte{redirectTag, redirectVer, 1, 3, 1, 2, 3, 0}},
		{"too many addresses", append(append([]byte{redirectTag, redirectVer, 1, byte(len(idb))}, idb...), MaxRedirectAddrs+1)},
		{"address over its cap", append(append(append([]byte{redirectTag, redirectVer, 1, byte(len(idb))}, idb...), 1, MaxAddrLen+1), make([]byte, MaxAddrLen+1)...)},
		{"garbage address", append(append([]byte{redirectTag, redirectVer, 1, byte(len(idb))}, idb...), 1, 2, 0xff, 0xff)},
		{"huge varint length", append([]byte{redirectTag, redirectVer, 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ps, err := DecodeRedirect(tc.b); err == nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("decoded %v, err %v", ps, err)
			}
		})
	}
}

func FuzzDecodeHave(f *testing.F) {
	b, _ := Have{Discovery: [32]byte{9}, Fork: 2, Length: 300, Depth: 2, Free: 3, Relay: true}.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{haveVersion, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHave(b)
		if err != nil {
			return
		}
		if len(b) > MaxHave {
			t.Fatalf("decoded %d bytes, over MaxHave", len(b))
		}
		again, _ := h.AppendBinary(nil)
		if h2, err := DecodeHave(again); err != nil || h2 != h {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", h, h2, err)
		}
	})
}

func FuzzDecodeRedirect(f *testing.F) {
	f.Add(EncodeRedirect(nil))
	f.Add(EncodeRedirect([]peer.AddrInfo{{ID: testPeerID(f, 3), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := DecodeRedirect(b)
		if err != nil {
			return
		}
		if len(ps) > MaxRedirectPeers {
			t.Fatalf("%d peers", len(ps))
		}
		for _, p := range ps {
			if len(p.Addrs) > MaxRedirectAddrs {
				t.Fatalf("%d addresses", len(p.Addrs))
			}
		}
		again, err := DecodeRedirect(EncodeRedirect(ps))
		if err != nil || len(again) != len(ps) {
			t.Fatalf("re-encoded: %v, %v", again, err)
		}
		for i := range ps {
			if again[i].ID != ps[i].ID || !reflect.DeepEqual(addrStrings(again[i].Addrs), addrStrings(ps[i].Addrs)) {
				t.Fatalf("peer %d: %v, want %v", i, again[i], ps[i])
			}
		}
	})
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
