package onchain

import (
	"fmt"
	"strings"
)

// Output descriptors (BIP380–BIP386) as wallets export them: Bitcoin Core's listdescriptors
// and Sparrow give a watch-only account as wpkh([fingerprint/84h/0h/0h]xpub…/<0;1>/*)#checksum.

// descriptorKey returns the key expression inside a wpkh( ) descriptor, after checking the
// descriptor's checksum when it has one. Other script types are refused with what they are.
func descriptorKey(s string) (string, error) {
	body, sum, hasSum := strings.Cut(s, "#")
	if hasSum && !descriptorChecksumOK(body, sum) {
		return "", fmt.Errorf("%w: the descriptor's checksum (#%s) does not match it: it was changed or not copied whole; copy it again", ErrBadKey, sum)
	}
	fn, rest, _ := strings.Cut(body, "(")
	inner := strings.TrimSuffix(rest, ")")
	switch {
	case fn == "wpkh" && !strings.ContainsAny(inner, "()"):
		return inner, nil
	case fn == "sh" && strings.HasPrefix(inner, "wpkh("):
		return "", fmt.Errorf("%w: this descriptor is a BIP49 nested-segwit (3…) account; Dazaar Vision pays into native segwit (BIP84, bc1…) addresses: export that account's wpkh( ) descriptor or its key", ErrBadKey)
	case fn == "pkh":
		return "", fmt.Errorf("%w: this descriptor is a BIP44 legacy (1…) account; Dazaar Vision pays into native segwit (BIP84, bc1…) addresses: export that account's wpkh( ) descriptor or its key", ErrBadKey)
	case fn == "tr":
		return "", fmt.Errorf("%w: this descriptor is a taproot account; Dazaar Vision pays into native segwit (BIP84, bc1…) addresses: export that account's wpkh( ) descriptor or its key", ErrBadKey)
	case fn == "wsh" || fn == "sh" || fn == "multi" || fn == "sortedmulti":
		return "", fmt.Errorf("%w: this descriptor is a script (multisig or other) wallet; Dazaar Vision pays into one single-key native segwit (BIP84, bc1…) account: export that account's wpkh( ) descriptor or its key", ErrBadKey)
	}
	return "", fmt.Errorf("%w: this %s( ) descriptor is not a single-key native segwit account; paste the account's wpkh( ) descriptor or its key (xpub, zpub, tpub or vpub)", ErrBadKey, fn)
}

// descriptorChecksumOK checks an output descriptor's 8-character checksum (BIP380).
func descriptorChecksumOK(body, sum string) bool {
	if len(sum) != 8 {
		return false
	}
	symbols, ok := descriptorExpand(body)
	if !ok {
		return false
	}
	for _, c := range sum {
		v := strings.IndexRune(descChecksumCharset, c)
		if v < 0 {
			return false
		}
		symbols = append(symbols, uint64(v))
	}
	return descriptorPolymod(symbols) == 1
}

// descriptorChecksum is the checksum BIP380 gives body (for tests and for showing a fixed one).
func descriptorChecksum(body string) (string, bool) {
	symbols, ok := descriptorExpand(body)
	if !ok {
		return "", false
	}
	c := descriptorPolymod(append(symbols, 0, 0, 0, 0, 0, 0, 0, 0)) ^ 1
	out := make([]byte, 8)
	for i := range out {
		out[i] = descChecksumCharset[(c>>(5*(7-i)))&31]
	}
	return string(out), true
}

// BIP380's character sets: the input set in three groups of 32, whose order is part of the
// algorithm, and the checksum's bech32 set.
const (
	descInputCharset    = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	descChecksumCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
)

// descriptorExpand turns each character into its position in its group, and every three
// characters' groups into one more symbol.
func descriptorExpand(s string) ([]uint64, bool) {
	symbols := make([]uint64, 0, len(s)+len(s)/3+1)
	var groups []uint64
	for _, c := range s {
		v := strings.IndexRune(descInputCharset, c)
		if v < 0 {
			return nil, false
		}
		symbols = append(symbols, uint64(v&31))
		groups = append(groups, uint64(v>>5))
		if len(groups) == 3 {
			symbols = append(symbols, groups[0]*9+groups[1]*3+groups[2])
			groups = groups[:0]
		}
	}
	switch len(groups) {
	case 1:
		symbols = append(symbols, groups[0])
	case 2:
		symbols = append(symbols, groups[0]*3+groups[1])
	}
	return symbols, true
}

func descriptorPolymod(symbols []uint64) uint64 {
	gen := [5]uint64{0xf5dee51989, 0xa9fdca3312, 0x1bab10e32d, 0x3706b1677a, 0x644d626ffd}
	chk := uint64(1)
	for _, v := range symbols {
		top := chk >> 35
		chk = (chk&0x7ffffffff)<<5 ^ v
		for i, g := range gen {
			if (top>>i)&1 == 1 {
				chk ^= g
			}
		}
	}
	return chk
}
