package onchain

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
)

// BIP84's published test vector.
const (
	bip84Zpub  = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
	bip84Zprv  = "zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm1yYNZKEm7z6qUWCroSQnE"
	bip84Addr0 = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	bip84Addr1 = "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
)

// testAccount derives m/84'/coin'/0' from a fixed seed (test only) and returns its public key
// encoded with version.
func testAccount(t testing.TB, net *chaincfg.Params, version []byte) string {
	seed := sha256.Sum256([]byte("dazaar-vision wallet test seed; never use with real coins"))
	m, err := hdkeychain.NewMaster(seed[:], net)
	if err != nil {
		t.Fatal(err)
	}
	k := m
	for _, i := range []uint32{84, net.HDCoinType, 0} {
		if k, err = k.Derive(hdkeychain.HardenedKeyStart + i); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := k.Neuter()
	if err != nil {
		t.Fatal(err)
	}
	if version != nil {
		pub, _ = pub.CloneWithVersion(version)
	}
	return pub.String()
}

func TestBIP84Vector(t *testing.T) {
	k, err := ParseAccountKey(bip84Zpub, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{bip84Addr0, bip84Addr1} {
		a, err := k.Address(uint32(i))
		if err != nil || a.EncodeAddress() != want {
			t.Fatalf("index %d: %v %v, want %s", i, a, err, want)
		}
	}
	// The same key written as an xpub gives the same addresses.
	x, _ := hdkeychain.NewKeyFromString(bip84Zpub)
	x, _ = x.CloneWithVersion(chaincfg.MainNetParams.HDPublicKeyID[:])
	k2, err := ParseAccountKey(x.String(), &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := k2.Address(0); a.EncodeAddress() != bip84Addr0 {
		t.Fatalf("xpub form gives %s", a)
	}
}

func TestTestnetKeys(t *testing.T) {
	vpub := []byte{0x04, 0x5f, 0x1c, 0xf6}
	for _, net := range []*chaincfg.Params{&chaincfg.TestNet3Params, &chaincfg.RegressionNetParams, &chaincfg.SimNetParams, &chaincfg.SigNetParams} {
		for _, ver := range [][]byte{nil, vpub, chaincfg.TestNet3Params.HDPublicKeyID[:]} {
			s := testAccount(t, net, ver)
			k, err := ParseAccountKey(s, net)
			if err != nil {
				t.Fatalf("%s %s: %v", net.Name, s[:4], err)
			}
			a, err := k.Address(7)
			if err != nil || !strings.HasPrefix(a.EncodeAddress(), net.Bech32HRPSegwit+"1q") {
				t.Fatalf("%s: address %v %v", net.Name, a, err)
			}
		}
	}
}

func TestRefusedKeys(t *testing.T) {
	main := &chaincfg.MainNetParams
	tpub := testAccount(t, &chaincfg.TestNet3Params, nil)
	master, _ := hdkeychain.NewMaster(make([]byte, 32), main)
	masterPub, _ := master.Neuter()
	ypubKey, _ := hdkeychain.NewKeyFromString(bip84Zpub)
	ypubKey, _ = ypubKey.CloneWithVersion([]byte{0x04, 0x9d, 0x7c, 0xb2})
	priv, _ := master.ECPrivKey()
	wifMain, _ := btcutil.NewWIF(priv, main, true)
	wifTest, _ := btcutil.NewWIF(priv, &chaincfg.TestNet3Params, false)
	const seed12 = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	seed24 := strings.TrimSpace(strings.Repeat("legal winner thank year wave sausage worth useful ", 3))
	cases := []struct {
		name string
		key  string
		net  *chaincfg.Params
		want error
		text string
	}{
		{"zprv", bip84Zprv, main, ErrPrivateKey, "never holds keys that can spend"},
		{"zprv: the seller is told it is exposed", bip84Zprv, main, ErrPrivateKey, "exposed a secret"},
		{"xprv", master.String(), main, ErrPrivateKey, "PUBLIC"},
		{"tpub on mainnet", tpub, main, ErrWrongNetwork, "test network"},
		{"zpub on testnet", bip84Zpub, &chaincfg.TestNet3Params, ErrWrongNetwork, "mainnet"},
		{"master xpub", masterPub.String(), main, ErrBadKey, "depth 0"},
		{"ypub", ypubKey.String(), main, ErrBadKey, "BIP49"},
		{"bad checksum", bip84Zpub[:len(bip84Zpub)-1] + "t", main, ErrBadKey, "copied whole"},
		{"truncated", bip84Zpub[:60], main, ErrBadKey, "111 characters"},
		{"garbage", strings.Repeat("0", 111), main, ErrBadKey, ""},
		{"WIF", wifMain.String(), main, ErrPrivateKey, "WIF private key"},
		{"testnet WIF, uncompressed", wifTest.String(), main, ErrPrivateKey, "WIF private key"},
		{"WIF with spaces around", "  " + wifMain.String() + "\n", main, ErrPrivateKey, "exposed a secret"},
		{"12-word seed phrase", seed12, main, ErrPrivateKey, "12-word seed phrase"},
		{"24-word seed phrase over lines", strings.ReplaceAll(seed24, "wave", "wave\n"), main, ErrPrivateKey, "24-word seed phrase"},
		{"upper-case seed phrase", strings.ToUpper(seed12), main, ErrPrivateKey, "exposed a secret"},
		{"descriptor with xprv", "wpkh([d34db33f/84h/0h/0h]" + master.String() + "/0/*)#qwer1234", main, ErrPrivateKey, "xprv inside an output descriptor"},
		{"descriptor with WIF", "wpkh(" + wifMain.String() + ")", main, ErrPrivateKey, "WIF private key inside an output descriptor"},
		{"descriptor, checksum changed", "wpkh([d34db33f/84h/0h/0h]" + bip84Zpub + "/0/*)#qwer1234", main, ErrBadKey, "checksum (#qwer1234) does not match"},
		{"descriptor, one character changed", withChecksum("wpkh([d34db33f/84h/0h/0h]" + xpubOf(bip84Zpub) + "/0/*)")[:30] + "X" +
			withChecksum("wpkh([d34db33f/84h/0h/0h]" + xpubOf(bip84Zpub) + "/0/*)")[31:], main, ErrBadKey, "does not match"},
		{"nested segwit descriptor", "sh(wpkh([d34db33f/49h/0h/0h]" + bip84Zpub + "/0/*))", main, ErrBadKey, "BIP49"},
		{"legacy descriptor", "pkh([d34db33f/44h/0h/0h]" + bip84Zpub + "/0/*)", main, ErrBadKey, "BIP44"},
		{"taproot descriptor", "tr([d34db33f/86h/0h/0h]" + bip84Zpub + "/0/*)", main, ErrBadKey, "taproot"},
		{"multisig descriptor", "wsh(sortedmulti(2," + bip84Zpub + "/0/*," + bip84Zpub + "/0/*))", main, ErrBadKey, "multisig"},
		{"wpkh descriptor of a BIP49 origin", "wpkh([d34db33f/49h/0h/0h]" + xpubOf(bip84Zpub) + "/0/*)", main, ErrBadKey, "BIP49"},
		{"wpkh descriptor of the change chain", "wpkh([d34db33f/84h/0h/0h]" + xpubOf(bip84Zpub) + "/1/*)", main, ErrBadKey, "/1/*"},
		{"zprv broken over a line", bip84Zprv[:50] + "\n" + bip84Zprv[50:], main, ErrPrivateKey, "zprv"},
		{"xprv with its origin", "[d34db33f/84'/0'/0']" + master.String() + "/0/*", main, ErrPrivateKey, "exposed a secret"},
		{"seed phrase in quotes", `"` + seed12 + `".`, main, ErrPrivateKey, "12-word seed phrase"},
		{"change chain", "[d34db33f/84'/0'/0']" + bip84Zpub + "/1/*", main, ErrBadKey, "/0/* (m/84'/coin'/account'/0/i); paste the key without /1/*"},
		{"address index path", bip84Zpub + "/0/5", main, ErrBadKey, "without /0/5"},
		{"BIP49 origin", "[d34db33f/49'/0'/0']" + bip84Zpub, main, ErrBadKey, "m/49'/0'/0' (a BIP49"},
		{"origin too short", "[d34db33f/84'/0']" + bip84Zpub, main, ErrBadKey, "m/84'/coin'/account'"},
		{"unhardened origin", "[d34db33f/84/0/0]" + bip84Zpub, main, ErrBadKey, "not an account's path"},
		{"testnet origin on mainnet", "[d34db33f/84'/1'/0']" + bip84Zpub, main, ErrWrongNetwork, "coin type 1'"},
		{"bad fingerprint", "[d34db3/84'/0'/0']" + bip84Zpub, main, ErrBadKey, "8-digit hexadecimal fingerprint"},
		{"unclosed origin", "[d34db33f/84'/0'/0'" + bip84Zpub, main, ErrBadKey, "no closing ]"},
		{"eleven words", "one two three four five six seven eight nine ten eleven", main, ErrBadKey, "111 characters"},
	}
	for _, c := range cases {
		_, err := ParseAccountKey(c.key, c.net)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.want, c.text)
		}
	}
}

// TestPastedKeys: a key as wallets show it and as people paste it is read as the key itself.
func TestPastedKeys(t *testing.T) {
	main := &chaincfg.MainNetParams
	x, _ := hdkeychain.NewKeyFromString(bip84Zpub)
	x, _ = x.CloneWithVersion(main.HDPublicKeyID[:])
	xpub := x.String()
	tpub := testAccount(t, &chaincfg.TestNet3Params, nil)
	cases := []struct {
		name string
		key  string
		net  *chaincfg.Params
	}{
		{"origin (Sparrow)", "[d34db33f/84'/0'/0']" + xpub, main},
		{"origin with h, receive chain", "[D34DB33F/84h/0h/0h]" + bip84Zpub + "/0/*", main},
		{"origin, multipath", "[d34db33f/84'/0'/0']" + xpub + "/<0;1>/*", main},
		{"no origin, receive chain", bip84Zpub + "/0/*", main},
		{"space after the origin", "[d34db33f/84'/0'/0'] " + xpub, main},
		{"line break", bip84Zpub[:64] + "\n" + bip84Zpub[64:], main},
		{"CRLF and spaces", bip84Zpub[:40] + "\r\n  " + bip84Zpub[40:80] + " " + bip84Zpub[80:], main},
		{"double quotes", `"` + bip84Zpub + `"`, main},
		{"curly quotes", "\u201c" + xpub + "\u201d", main},
		{"single quotes", "'" + bip84Zpub + "'", main},
		{"backticks", "`" + bip84Zpub + "`", main},
		{"full stop", bip84Zpub + ".", main},
		{"quotes and a comma", `"` + bip84Zpub + `",` + "\n", main},
		{"testnet origin", "[d34db33f/84'/1'/0']" + tpub + "/0/*", &chaincfg.TestNet3Params},
		{"descriptor (Bitcoin Core's listdescriptors)", withChecksum("wpkh([d34db33f/84h/0h/0h]" + xpub + "/0/*)"), main},
		{"descriptor, multipath (Sparrow)", withChecksum("wpkh([d34db33f/84h/0h/0h]" + xpub + "/<0;1>/*)"), main},
		{"descriptor without its checksum", "wpkh([d34db33f/84'/0'/0']" + xpub + "/0/*)", main},
		{"descriptor over two lines, quoted", `"` + withChecksum("wpkh([d34db33f/84h/0h/0h]" + xpub + "/0/*)")[:70] + "\n" +
			withChecksum("wpkh([d34db33f/84h/0h/0h]" + xpub + "/0/*)")[70:] + `"`, main},
	}
	for _, c := range cases {
		k, err := ParseAccountKey(c.key, c.net)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.net == main {
			if a, err := k.Address(0); err != nil || a.EncodeAddress() != bip84Addr0 {
				t.Errorf("%s: address %v %v, want %s", c.name, a, err, bip84Addr0)
			}
		}
	}
}

func TestParseAddressNetwork(t *testing.T) {
	if _, err := ParseAddress(bip84Addr0, &chaincfg.MainNetParams); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseAddress(bip84Addr0, &chaincfg.TestNet3Params); err == nil {
		t.Fatal("mainnet address accepted on testnet")
	}
	if _, err := ParseAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyv", &chaincfg.MainNetParams); err == nil {
		t.Fatal("bad checksum accepted")
	}
}

func FuzzParseAccountKey(f *testing.F) {
	f.Add(bip84Zpub)
	f.Add(bip84Zprv)
	f.Add("wpkh([d34db33f/84h/0h/0h]" + bip84Zpub + "/0/*)#qwer1234")
	f.Add("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")
	f.Add("[d34db33f/84'/0'/0']" + bip84Zpub + "/<0;1>/*")
	f.Add("\u201c" + bip84Zpub[:50] + "\n" + bip84Zpub[50:] + "\u201d.")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseAccountKey(s, &chaincfg.MainNetParams)
		if err != nil {
			return
		}
		if _, err := k.Address(0); err != nil {
			t.Fatal(err)
		}
	})
}

// withChecksum appends BIP380's checksum to a descriptor.
func withChecksum(body string) string {
	sum, ok := descriptorChecksum(body)
	if !ok {
		panic("not a descriptor: " + body)
	}
	return body + "#" + sum
}

// xpubOf writes a key with mainnet's xpub version bytes.
func xpubOf(key string) string {
	x, _ := hdkeychain.NewKeyFromString(key)
	x, _ = x.CloneWithVersion(chaincfg.MainNetParams.HDPublicKeyID[:])
	return x.String()
}

// The descriptor checksum against published vectors: BIP380's, and Bitcoin Core's wpkh example
// (doc/descriptors.md). A checksum with any one character changed, or a body changed, fails.
func TestDescriptorChecksumVectors(t *testing.T) {
	for _, v := range []struct{ body, sum string }{
		{"raw(deadbeef)", "89f8spxm"},
		{"wpkh([d34db33f/84h/0h/0h]xpub6DJ2dNUysrn5Vt36jH2KLBT2i1auw1tTSSomg8PhqNiUtx8QX2SvC9nrHu81fT41fvDUnhMjEzQgXnQjKEu3oaqMSzhSrHMxyyoEAmUHQbY/0/*)", "cjjspncu"},
	} {
		if got, ok := descriptorChecksum(v.body); !ok || got != v.sum {
			t.Fatalf("checksum of %s: %q, want %q", v.body, got, v.sum)
		}
		if !descriptorChecksumOK(v.body, v.sum) {
			t.Fatalf("%s#%s is refused", v.body, v.sum)
		}
		for i := range v.sum {
			for _, c := range descChecksumCharset {
				if byte(c) == v.sum[i] {
					continue
				}
				if bad := v.sum[:i] + string(c) + v.sum[i+1:]; descriptorChecksumOK(v.body, bad) {
					t.Fatalf("%s#%s is taken", v.body, bad)
				}
			}
		}
		if descriptorChecksumOK(strings.Replace(v.body, "d", "e", 1), v.sum) {
			t.Fatalf("a changed body passes with %s's checksum", v.body)
		}
	}
	for _, bad := range []string{"", "89f8spx", "89f8spxmm", "89F8SPXM", "89f8spxb"} {
		if descriptorChecksumOK("raw(deadbeef)", bad) {
			t.Fatalf("checksum %q taken", bad)
		}
	}
	if _, ok := descriptorChecksum("raw(dé)"); ok {
		t.Fatal("a character outside BIP380's set was given a checksum")
	}
}
