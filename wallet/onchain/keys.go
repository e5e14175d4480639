// Package onchain receives bitcoin payments to a seller's watch-only wallet: it derives a fresh
// BIP84 (P2WPKH) address per invoice from an account extended public key, writes BIP21/BIP321
// payment URIs, and watches a node for payments to those addresses (btcd websocket notifications,
// or a JSON-RPC poller that uses only calls Bitcoin Core also has).
package onchain

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
)

// Network returns the parameters for a network name: mainnet, testnet, signet, regtest or simnet.
func Network(name string) (*chaincfg.Params, error) {
	switch strings.ToLower(name) {
	case "mainnet", "main", "bitcoin":
		return &chaincfg.MainNetParams, nil
	case "testnet", "testnet3", "test":
		return &chaincfg.TestNet3Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "simnet":
		return &chaincfg.SimNetParams, nil
	}
	return nil, fmt.Errorf("onchain: unknown network %q (use mainnet, testnet, signet, regtest or simnet)", name)
}

// NetworkName is the inverse of Network.
func NetworkName(p *chaincfg.Params) string {
	switch p.Net {
	case chaincfg.MainNetParams.Net:
		return "mainnet"
	case chaincfg.TestNet3Params.Net:
		return "testnet"
	case chaincfg.SigNetParams.Net:
		return "signet"
	case chaincfg.RegressionNetParams.Net:
		return "regtest"
	case chaincfg.SimNetParams.Net:
		return "simnet"
	}
	return p.Name
}

type keyVersion struct {
	name    string
	private bool
	mainnet bool
	bip84   bool   // native segwit single-sig (or an xpub/tpub, whose script type is implied)
	hint    string // why it is refused, when it is
}

// SLIP-132 version bytes.
var versions = map[[4]byte]keyVersion{
	{0x04, 0x88, 0xb2, 0x1e}: {name: "xpub", mainnet: true, bip84: true},
	{0x04, 0xb2, 0x47, 0x46}: {name: "zpub", mainnet: true, bip84: true},
	{0x04, 0x35, 0x87, 0xcf}: {name: "tpub", bip84: true},
	{0x04, 0x5f, 0x1c, 0xf6}: {name: "vpub", bip84: true},
	{0x04, 0x20, 0xbd, 0x3a}: {name: "spub", bip84: true}, // btcd simnet
	{0x04, 0x9d, 0x7c, 0xb2}: {name: "ypub", mainnet: true, hint: "a ypub is for BIP49 nested-segwit (3…) addresses"},
	{0x04, 0x4a, 0x52, 0x62}: {name: "upub", hint: "a upub is for BIP49 nested-segwit (2…) addresses"},
	{0x02, 0xaa, 0x7e, 0xd3}: {name: "Zpub", mainnet: true, hint: "a Zpub is a multisig key"},
	{0x02, 0x95, 0xb4, 0x3f}: {name: "Ypub", mainnet: true, hint: "a Ypub is a multisig key"},
	{0x02, 0x57, 0x54, 0x83}: {name: "Vpub", hint: "a Vpub is a multisig key"},
	{0x02, 0x42, 0x89, 0xef}: {name: "Upub", hint: "a Upub is a multisig key"},
	{0x04, 0x88, 0xad, 0xe4}: {name: "xprv", private: true, mainnet: true},
	{0x04, 0xb2, 0x43, 0x0c}: {name: "zprv", private: true, mainnet: true},
	{0x04, 0x9d, 0x78, 0x78}: {name: "yprv", private: true, mainnet: true},
	{0x04, 0x35, 0x83, 0x94}: {name: "tprv", private: true},
	{0x04, 0x5f, 0x18, 0xbc}: {name: "vprv", private: true},
	{0x04, 0x4a, 0x4e, 0x28}: {name: "uprv", private: true},
	{0x04, 0x20, 0xb9, 0x00}: {name: "sprv", private: true},
	{0x02, 0xaa, 0x7a, 0x99}: {name: "Zprv", private: true, mainnet: true},
	{0x02, 0x57, 0x50, 0x48}: {name: "Vprv", private: true},
}

// Errors from ParseAccountKey; each is wrapped with an explanation for the seller.
var (
	ErrPrivateKey   = errors.New("onchain: this is a private key")
	ErrWrongNetwork = errors.New("onchain: key or address is for another network")
	ErrBadKey       = errors.New("onchain: not a usable account public key")
)

// AccountKey is a watch-only BIP84 account key (m/84'/coin'/account'): it can derive receive
// addresses and nothing else.
type AccountKey struct {
	key    *hdkeychain.ExtendedKey
	net    *chaincfg.Params
	prefix string
}

// ParseAccountKey reads an xpub, zpub, tpub, vpub (or btcd's spub) for net. Private keys, keys for
// another network, other script types and keys that are not at account depth are refused with a
// plain explanation. It takes the key as wallets show and people paste it: with key-origin
// information ([d34db33f/84'/0'/0']xpub…, checked to be a BIP84 account), followed by /0/* or
// /<0;1>/* (the receive chain it derives from; any other path is refused), inside a wpkh( )
// output descriptor (its #checksum checked when present; other script types refused with what
// they are), broken over lines or by spaces, in quotes, or followed by a full stop or comma.
func ParseAccountKey(s string, net *chaincfg.Params) (*AccountKey, error) {
	s = trimPasted(s)
	if what := secretIn(s); what != "" {
		return nil, fmt.Errorf("%w (%s). %s", ErrPrivateKey, what, exposedAdvice)
	}
	// A key (or descriptor) broken over lines or by spaces: neither contains a space.
	s = strings.Join(strings.Fields(s), "")
	if isDescriptor(s) {
		k, err := descriptorKey(s)
		if err != nil {
			return nil, err
		}
		s = k
	}
	if what := secretIn(s); what != "" {
		return nil, fmt.Errorf("%w (%s). %s", ErrPrivateKey, what, exposedAdvice)
	}
	s, origin, err := splitKeyExpression(s)
	if err != nil {
		return nil, err
	}
	if len(s) < 100 || len(s) > 120 {
		return nil, fmt.Errorf("%w: an extended public key is 111 characters starting with xpub, zpub, tpub or vpub", ErrBadKey)
	}
	k, err := hdkeychain.NewKeyFromString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (check that it was copied whole)", ErrBadKey, err)
	}
	var ver [4]byte
	copy(ver[:], k.Version())
	v, known := versions[ver]
	if k.IsPrivate() || v.private {
		name := v.name
		if name == "" {
			name = "an extended private key"
		}
		return nil, fmt.Errorf("%w (%s). %s", ErrPrivateKey, name, exposedAdvice)
	}
	if !known {
		return nil, fmt.Errorf("%w: unknown key version %x", ErrBadKey, ver)
	}
	if !v.bip84 {
		return nil, fmt.Errorf("%w: %s; Dazaar Vision pays into native segwit (BIP84, bc1…) addresses, "+
			"so export the account's zpub or xpub", ErrBadKey, v.hint)
	}
	isMain := net.Net == chaincfg.MainNetParams.Net
	if v.mainnet != isMain {
		return nil, fmt.Errorf("%w: a %s is for %s, but the wallet is set to %s", ErrWrongNetwork, v.name,
			map[bool]string{true: "mainnet", false: "a test network"}[v.mainnet], NetworkName(net))
	}
	if v.name == "spub" && net.Net != chaincfg.SimNetParams.Net {
		return nil, fmt.Errorf("%w: an spub is for simnet", ErrWrongNetwork)
	}
	if k.Depth() != 3 {
		return nil, fmt.Errorf("%w: this key is at depth %d, but an account key (m/84'/coin'/account') is at depth 3; "+
			"export the account's key, not the wallet's master or an address's key", ErrBadKey, k.Depth())
	}
	if origin != nil {
		if err := checkOrigin(origin, net); err != nil {
			return nil, err
		}
	}
	if !bytes.Equal(ver[:], net.HDPublicKeyID[:]) {
		if k, err = k.CloneWithVersion(net.HDPublicKeyID[:]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
	}
	return &AccountKey{key: k, net: net, prefix: v.name}, nil
}

// trimPasted removes what surrounds a pasted key: whitespace, quotes and backticks, and the
// punctuation that ends a sentence.
func trimPasted(s string) string {
	for {
		t := strings.TrimSpace(s)
		t = strings.TrimLeft(t, "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb")
		t = strings.TrimRight(t, "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb.,;:!?")
		if t == s {
			return t
		}
		s = t
	}
}

// splitKeyExpression takes the key out of a descriptor key expression:
// [fingerprint/origin path]key/derivation. It returns the key and the origin's path elements
// (nil when there is no origin), and refuses a derivation other than the receive chain this
// package derives from (/0/*, or /<0;1>/* whose receive branch is /0/*).
func splitKeyExpression(s string) (string, []string, error) {
	var origin []string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", nil, fmt.Errorf("%w: the key's origin [fingerprint/path] has no closing ]", ErrBadKey)
		}
		parts := strings.Split(s[1:end], "/")
		if fp := parts[0]; len(fp) != 8 || strings.Trim(strings.ToLower(fp), "0123456789abcdef") != "" {
			return "", nil, fmt.Errorf("%w: the key's origin should start with an 8-digit hexadecimal fingerprint, not %q", ErrBadKey, fp)
		}
		origin = parts[1:]
		s = s[end+1:]
	}
	key, deriv, found := strings.Cut(s, "/")
	if found {
		switch deriv {
		case "0/*", "<0;1>/*":
		default:
			return "", nil, fmt.Errorf("%w: the key is followed by /%s, but Dazaar Vision derives its receive addresses "+
				"at the account key's /0/* (m/84'/coin'/account'/0/i); paste the key without /%s", ErrBadKey, deriv, deriv)
		}
	}
	return key, origin, nil
}

// checkOrigin checks that a key's origin path is a BIP84 account on net: 84'/coin'/account'.
func checkOrigin(path []string, net *chaincfg.Params) error {
	shown := "m/" + strings.Join(path, "/")
	var idx []uint32
	for _, p := range path {
		n, hard := strings.CutSuffix(p, "'")
		if !hard {
			n, hard = strings.CutSuffix(strings.ToLower(p), "h")
		}
		v, err := strconv.ParseUint(n, 10, 31)
		if err != nil || !hard {
			return fmt.Errorf("%w: the key's origin %s is not an account's path; an account key's is m/84'/coin'/account'", ErrBadKey, shown)
		}
		idx = append(idx, uint32(v))
	}
	if len(idx) != 3 || idx[0] != 84 {
		hint := ""
		if len(idx) > 0 {
			switch idx[0] {
			case 44:
				hint = " (a BIP44 legacy, 1…, account)"
			case 49:
				hint = " (a BIP49 nested-segwit, 3…, account)"
			case 86:
				hint = " (a BIP86 taproot account)"
			case 48, 45:
				hint = " (a multisig account)"
			}
		}
		return fmt.Errorf("%w: the key's origin says it is at %s%s, but Dazaar Vision pays into native segwit (BIP84, bc1…) "+
			"addresses of an account at m/84'/coin'/account'; export that account's key", ErrBadKey, shown, hint)
	}
	isMain := net.Net == chaincfg.MainNetParams.Net
	if coin := idx[1]; isMain && coin != 0 || !isMain && coin == 0 {
		return fmt.Errorf("%w: the key's origin %s is for %s (coin type %d'), but the wallet is set to %s", ErrWrongNetwork, shown,
			map[bool]string{true: "mainnet", false: "a test network"}[coin == 0], coin, NetworkName(net))
	}
	return nil
}

// exposedAdvice follows every refusal of pasted private material: what happened, what to do
// about it, and what to paste instead.
const exposedAdvice = "Dazaar Vision never holds keys that can spend your money, and it did not keep this one. " +
	"You have just exposed a secret that can spend your bitcoin (it may still be on this computer's clipboard): " +
	"keep it secret, and if anyone else may have seen it, move your funds to a new wallet. " +
	"Paste the account's extended PUBLIC key (xpub, zpub, tpub or vpub) from your wallet instead"

// secretIn names the private key material in pasted text, or returns "": an extended private
// key, a WIF private key, a seed (recovery) phrase, or any of these inside an output descriptor.
func secretIn(s string) string {
	if words := strings.Fields(s); looksLikeSeedPhrase(words) {
		return fmt.Sprintf("a %d-word seed phrase", len(words))
	}
	in := ""
	if isDescriptor(s) {
		in = " inside an output descriptor"
	}
	// Keys are base58: split on everything else (descriptor brackets, slashes, checksums, spaces).
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return !strings.ContainsRune(base58Alphabet, r) }) {
		switch {
		case len(tok) >= 100 && len(tok) <= 120:
			if k, err := hdkeychain.NewKeyFromString(tok); err == nil {
				var ver [4]byte
				copy(ver[:], k.Version())
				if v := versions[ver]; k.IsPrivate() || v.private {
					name := v.name
					if name == "" {
						name = "an extended private key"
					}
					return name + in
				}
			}
		case len(tok) == 51 || len(tok) == 52:
			if _, err := btcutil.DecodeWIF(tok); err == nil {
				return "a WIF private key" + in
			}
		}
	}
	return ""
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// looksLikeSeedPhrase reports whether words have the shape of a BIP39 or Electrum recovery
// phrase: 12 to 24 short words of letters only. No wordlist is needed to refuse it, since no
// account key contains a space; the shape is enough to warn the seller.
func looksLikeSeedPhrase(words []string) bool {
	if len(words) < 12 || len(words) > 24 {
		return false
	}
	for _, w := range words {
		if len(w) < 3 || len(w) > 8 {
			return false
		}
		for _, r := range w {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
				return false
			}
		}
	}
	return true
}

// isDescriptor reports whether s looks like an output descriptor (wpkh(…), tr(…), sh(wpkh(…)), …).
func isDescriptor(s string) bool {
	i := strings.IndexByte(s, '(')
	return i > 0 && strings.HasSuffix(strings.TrimSpace(strings.SplitN(s, "#", 2)[0]), ")")
}

// ID names the key (hex of HASH160 of its public key and chain code), the same whichever
// version bytes (xpub, zpub, …) it was given with; it is not secret but says nothing useful
// to others.
func (a *AccountKey) ID() string {
	pub, err := a.key.ECPubKey()
	if err != nil {
		return ""
	}
	return hex.EncodeToString(btcutil.Hash160(append(pub.SerializeCompressed(), a.key.ChainCode()...)))
}

// Net is the key's network.
func (a *AccountKey) Net() *chaincfg.Params { return a.net }

// Address derives the external (receive) address at index: m/84'/coin'/account'/0/index.
func (a *AccountKey) Address(index uint32) (*btcutil.AddressWitnessPubKeyHash, error) {
	if index >= hdkeychain.HardenedKeyStart {
		return nil, errors.New("onchain: address index out of range")
	}
	ext, err := a.key.Derive(0)
	if err != nil {
		return nil, err
	}
	child, err := ext.Derive(index)
	if err != nil {
		return nil, err // astronomically rare invalid child; the caller moves to the next index
	}
	pub, err := child.ECPubKey()
	if err != nil {
		return nil, err
	}
	return btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), a.net)
}

// ParseAddress decodes a receive address and checks it belongs to net.
func ParseAddress(s string, net *chaincfg.Params) (btcutil.Address, error) {
	if len(s) > 100 {
		return nil, errors.New("onchain: address too long")
	}
	a, err := btcutil.DecodeAddress(s, net)
	if err != nil {
		return nil, fmt.Errorf("onchain: %q is not a bitcoin address: %w", s, err)
	}
	if !a.IsForNet(net) {
		return nil, fmt.Errorf("%w: %s is not a %s address", ErrWrongNetwork, s, NetworkName(net))
	}
	return a, nil
}
