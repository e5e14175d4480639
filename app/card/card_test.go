package card

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// testPeer is the peer ID of a deterministic Ed25519 identity.
func testPeer(t testing.TB, seed byte) string {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// rsaPeer is a SHA-256 (RSA-key) peer ID, as older libp2p nodes have.
const rsaPeer = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"

func feedKey(b byte) (k [32]byte) {
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// typical is the card of the brief: a name, a 100-character description, a peer ID, three
// addresses, a price and two methods.
func typical(t testing.TB) Card {
	return Card{
		Name:        "Alice's garden, live",
		Description: "Tomatoes growing in real time, with commentary from Alice every hour or so. Join us for the harvest!",
		Feed:        feedKey(7),
		Seller:      testPeer(t, 1),
		Addrs:       []string{"/ip4/203.0.113.7/tcp/4001", "/ip4/203.0.113.7/udp/4001/quic-v1", "/ip6/2001:db8::7/tcp/4001"},
		Price:       price.Price{Sats: 1000, Interval: 1, Unit: price.Hour},
		Methods:     []Method{Lightning, OnChain},
		Network:     "simnet",
	}
}

func free(t testing.TB) Card {
	return Card{Name: "Town hall", Feed: feedKey(1), Seller: testPeer(t, 2)}
}

// large fills every field to its cap.
func large(t testing.TB) Card {
	c := typical(t)
	c.Name = strings.Repeat("n", MaxName)
	c.Description = strings.Repeat("é", MaxDescription/2)
	c.Addrs = nil
	for i := 0; i < MaxAddrs; i++ {
		c.Addrs = append(c.Addrs, "/dns4/"+strings.Repeat(string(rune('a'+i)), MaxAddr-len("/dns4/")-len("/tcp/4001"))+"/tcp/4001")
	}
	c.Price = price.Price{Sats: price.MaxSats, Interval: price.MaxInterval, Unit: price.Second}
	c.Methods = []Method{OnChain, Lightning}
	c.Network = "mainnet"
	return c
}

func validCards(t testing.TB) map[string]Card {
	cs := map[string]Card{"typical": typical(t), "free": free(t), "large": large(t)}
	c := free(t)
	c.Seller = rsaPeer
	c.Name = ""
	cs["rsa peer, no name"] = c
	c = typical(t)
	c.Addrs = []string{"/ip4/198.51.100.1/tcp/4001/p2p/" + testPeer(t, 9) + "/p2p-circuit", "/dns4/cam.example.org/udp/443/quic-v1"}
	c.Methods = []Method{OnChain}
	c.Network = "mainnet"
	c.Name = "🍅 Garten — Live ✓"
	c.Description = "line one\nline two\twith a tab"
	c.Price = price.Price{Sats: 1, Interval: 30, Unit: price.Second}
	cs["relay address, unicode"] = c
	c = free(t)
	c.Name = "👩\u200d👩\u200d👧 क्\u200dष live" // zero-width joiners: an emoji family, a Devanagari conjunct
	cs["zero-width joiners"] = c
	for _, n := range Networks {
		c := typical(t)
		c.Network = n
		c.Methods = []Method{Lightning}
		c.Price = price.Price{Sats: 21, Interval: 5, Unit: price.Minute}
		cs["network "+n] = c
	}
	return cs
}

func TestValidate(t *testing.T) {
	for name, c := range validCards(t) {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := []struct {
		name string
		edit func(*Card)
		want string
	}{
		{"name too long", func(c *Card) { c.Name = strings.Repeat("x", MaxName+1) }, "name is 129 bytes long"},
		{"name not UTF-8", func(c *Card) { c.Name = "a\xffb" }, "not valid UTF-8"},
		{"name with newline", func(c *Card) { c.Name = "a\nb" }, "control character"},
		{"name with terminal escape", func(c *Card) { c.Name = "a\x1b[2Jb" }, "control character"},
		{"description too long", func(c *Card) { c.Description = strings.Repeat("x", MaxDescription+1) }, "description is 1025 bytes"},
		{"description with bidi override", func(c *Card) { c.Description = "abc\u202edef" }, "control character"},
		{"name with a line separator", func(c *Card) { c.Name = "a\u2028b" }, "invisible character U+2028"},
		{"description with a paragraph separator", func(c *Card) { c.Description = "a\u2029b" }, "invisible character U+2029"},
		{"name with a zero-width space", func(c *Card) { c.Name = "Alice\u200bs show" }, "invisible character U+200B"},
		{"name with a byte-order mark", func(c *Card) { c.Name = "\ufeffshow" }, "invisible character U+FEFF"},
		{"name with tag characters", func(c *Card) { c.Name = "show\U000E0041" }, "invisible character U+E0041"},
		{"name of spaces and joiners", func(c *Card) { c.Name = " \u200d\u3000 " }, "nothing visible"},
		{"zero feed", func(c *Card) { c.Feed = [32]byte{} }, "feed key is missing"},
		{"no seller", func(c *Card) { c.Seller = "" }, "peer ID is missing"},
		{"seller garbage", func(c *Card) { c.Seller = "12D3KooWnotapeerid" }, "is not a libp2p peer ID"},
		{"seller as CID", func(c *Card) { c.Seller = peerCID(t, c.Seller) }, "written unusually"},
		{"too many addresses", func(c *Card) {
			for len(c.Addrs) <= MaxAddrs {
				c.Addrs = append(c.Addrs, "/ip4/1.2.3.4/tcp/1")
			}
		}, "at most 16 fit"},
		{"empty address", func(c *Card) { c.Addrs = []string{""} }, "an address is empty"},
		{"not a multiaddr", func(c *Card) { c.Addrs = []string{"203.0.113.7:4001"} }, "not a libp2p address"},
		{"address with /p2p suffix", func(c *Card) { c.Addrs = []string{"/ip4/1.2.3.4/tcp/1/p2p/" + c.Seller} }, "ends in /p2p/"},
		{"address written unusually", func(c *Card) { c.Addrs = []string{"/ip6/2001:0db8::7/tcp/4001"} }, "write it as /ip6/2001:db8::7/tcp/4001"},
		{"address with a space", func(c *Card) { c.Addrs = []string{"/dns4/a b/tcp/1"} }, "not printable ASCII"},
		{"address too long", func(c *Card) { c.Addrs = []string{"/dns4/" + strings.Repeat("a", MaxAddr) + "/tcp/1"} }, "at most 256 fit"},
		{"interval 0", func(c *Card) { c.Price.Interval = 0 }, "price is not usable"},
		{"unknown unit", func(c *Card) { c.Price.Unit = 9 }, "price is not usable"},
		{"more than all bitcoin", func(c *Card) { c.Price.Sats = price.MaxSats + 1 }, "more than all bitcoin"},
		{"free with methods", func(c *Card) { c.Price = price.Free }, "free stream takes no payment methods"},
		{"free with network", func(c *Card) { c.Price, c.Methods = price.Free, nil }, "free stream has no payment network"},
		{"paid without methods", func(c *Card) { c.Methods = nil }, "needs at least one payment method"},
		{"unknown method", func(c *Card) { c.Methods = []Method{"eth"} }, `unknown payment method "eth"`},
		{"method twice", func(c *Card) { c.Methods = []Method{Lightning, Lightning} }, "listed twice"},
		{"unknown network", func(c *Card) { c.Network = "liquid" }, `unknown bitcoin network "liquid"`},
		{"paid without network", func(c *Card) { c.Network = "" }, `unknown bitcoin network ""`},
	}
	for _, b := range bad {
		c := typical(t)
		b.edit(&c)
		err := c.Validate()
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: got %v, want an ErrInvalid saying %q", b.name, err, b.want)
			continue
		}
		if _, err := Encode(c); err == nil {
			t.Errorf("%s: Encode accepted it", b.name)
		}
		if _, err := c.MarshalJSON(); err == nil {
			t.Errorf("%s: MarshalJSON accepted it", b.name)
		}
		if s := c.String(); !strings.HasPrefix(s, "(not a valid card: ") {
			t.Errorf("%s: String() = %q", b.name, s)
		}
	}
}

// peerCID writes a peer ID as a CIDv1 (libp2p-key), which peer.Decode also accepts.
func peerCID(t *testing.T, s string) string {
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return peer.ToCid(id).String()
}

func TestTerms(t *testing.T) {
	cases := []struct {
		edit func(*Card)
		want string
	}{
		{func(c *Card) {}, "1000 sats per hour, pay with Lightning or on-chain bitcoin (simnet)"},
		{func(c *Card) { c.Price, c.Methods, c.Network = price.Free, nil, "" }, "Free"},
		{func(c *Card) { c.Network = "mainnet"; c.Methods = []Method{OnChain} }, "1000 sats per hour, pay with on-chain bitcoin"},
		{func(c *Card) {
			c.Price = price.Price{Sats: 10, Interval: 30, Unit: price.Second}
			c.Network = "testnet"
		},
			"10 sats per 30 seconds, pay with Lightning or on-chain bitcoin (testnet)"},
	}
	for _, tc := range cases {
		c := typical(t)
		tc.edit(&c)
		if got := c.Terms(); got != tc.want {
			t.Errorf("Terms() = %q, want %q", got, tc.want)
		}
	}
}

func TestFitAddrs(t *testing.T) {
	p := testPeer(t, 3)
	in := []string{"/ip4/1.2.3.4/tcp/1/p2p/" + p, "/ip4/1.2.3.4/tcp/1", "garbage", "/ip6/2001:0db8::1/udp/1/quic-v1", "/p2p/" + p,
		"/dns4/" + strings.Repeat("a", 300) + "/tcp/1"}
	for i := 0; i < 20; i++ {
		in = append(in, fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i))
	}
	got := FitAddrs(in)
	if len(got) != MaxAddrs || got[0] != "/ip4/1.2.3.4/tcp/1" || got[1] != "/ip6/2001:db8::1/udp/1/quic-v1" || got[2] != "/ip4/10.0.0.0/tcp/4001" {
		t.Fatalf("FitAddrs: %q", got)
	}
	c := typical(t)
	c.Addrs = got
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
