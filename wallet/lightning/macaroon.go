package lightning

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MaxMacaroonLen caps a macaroon before parsing.
const MaxMacaroonLen = 8 << 10

// ErrMacaroon wraps every refusal of a macaroon.
var ErrMacaroon = errors.New("lightning: unusable macaroon")

// allowed is what Dazaar Vision may hold: LND's invoice.macaroon grants exactly these
// (invoices read/write; address read/write and onchain read come with it), and info:read is
// harmless. Anything else (moving funds, opening channels, signing, baking macaroons) is refused.
var allowed = map[string]bool{
	"invoices:read": true, "invoices:write": true,
	"address:read": true, "address:write": true,
	"onchain:read": true, "info:read": true,
}

// Permissions lists the entity:action pairs an LND macaroon grants. It accepts the binary file
// or its hex form.
func Permissions(mac []byte) ([]string, error) {
	if len(mac) > 2*MaxMacaroonLen {
		return nil, fmt.Errorf("%w: too large", ErrMacaroon)
	}
	if s := strings.TrimSpace(string(mac)); len(s) > 0 && isHex(s) {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bad hex", ErrMacaroon)
		}
		mac = b
	}
	id, err := macaroonID(mac)
	if err != nil {
		return nil, err
	}
	if len(id) < 1 || id[0] != 3 {
		return nil, fmt.Errorf("%w: not an LND macaroon (identifier version %v)", ErrMacaroon, firstByte(id))
	}
	ops, err := parseOps(id[1:])
	if err != nil {
		return nil, err
	}
	sort.Strings(ops)
	return ops, nil
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// CheckInvoiceMacaroon accepts a macaroon that can create and watch invoices and can do nothing
// that moves money; it refuses admin and other broad macaroons with a plain explanation.
func CheckInvoiceMacaroon(mac []byte) error {
	ops, err := Permissions(mac)
	if err != nil {
		return err
	}
	var extra []string
	has := map[string]bool{}
	for _, op := range ops {
		has[op] = true
		if !allowed[op] {
			extra = append(extra, op)
		}
	}
	if len(extra) > 0 {
		what := "a macaroon"
		if has["offchain:write"] && has["onchain:write"] && has["macaroon:generate"] {
			what = "LND's admin macaroon"
		}
		risk := "it lets whoever holds it read more of your node (channels, peers, payments) than Dazaar Vision needs"
		for _, op := range extra {
			if !strings.HasSuffix(op, ":read") {
				risk = "anyone who got hold of it could spend your node's money or change its channels"
				break
			}
		}
		return fmt.Errorf("%w: this is %s, which also allows %s; %s. Dazaar Vision only needs to create "+
			"and watch invoices: give it LND's invoice.macaroon instead (next to admin.macaroon, in lnd's "+
			"data/chain/bitcoin/<network>/ directory), or bake one with "+
			"`lncli bakemacaroon invoices:read invoices:write`", ErrMacaroon, what, strings.Join(extra, ", "), risk)
	}
	if !has["invoices:read"] || !has["invoices:write"] {
		return fmt.Errorf("%w: it cannot both create and watch invoices (it grants %s); use LND's "+
			"invoice.macaroon", ErrMacaroon, strings.Join(ops, ", "))
	}
	return nil
}

// macaroonID extracts the identifier of a macaroon in the V2 binary format.
func macaroonID(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 2 {
		return nil, fmt.Errorf("%w: not a version-2 binary macaroon", ErrMacaroon)
	}
	b = b[1:]
	for len(b) > 0 {
		typ := b[0]
		b = b[1:]
		if typ == 0 {
			break
		}
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: truncated", ErrMacaroon)
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		if typ == 2 {
			return v, nil
		}
		if typ != 1 {
			return nil, fmt.Errorf("%w: unexpected field %d", ErrMacaroon, typ)
		}
	}
	return nil, fmt.Errorf("%w: no identifier", ErrMacaroon)
}

// parseOps reads the ops of bakery's MacaroonId protobuf: field 3 (repeated Op), each Op being
// field 1 entity (string) and field 2 actions (repeated string).
func parseOps(b []byte) ([]string, error) {
	var ops []string
	err := protoFields(b, func(field uint64, v []byte) error {
		if field != 3 {
			return nil
		}
		var entity string
		var actions []string
		if err := protoFields(v, func(f uint64, s []byte) error {
			switch f {
			case 1:
				entity = string(s)
			case 2:
				actions = append(actions, string(s))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, a := range actions {
			ops = append(ops, entity+":"+a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("%w: it grants no permissions LND knows", ErrMacaroon)
	}
	return ops, nil
}

// protoFields walks protobuf wire fields, passing length-delimited ones to fn and skipping
// varints; other wire types are an error.
func protoFields(b []byte, fn func(field uint64, v []byte) error) error {
	for len(b) > 0 {
		key, k := binary.Uvarint(b)
		if k <= 0 {
			return fmt.Errorf("%w: bad identifier", ErrMacaroon)
		}
		b = b[k:]
		switch key & 7 {
		case 0:
			_, k := binary.Uvarint(b)
			if k <= 0 {
				return fmt.Errorf("%w: bad identifier", ErrMacaroon)
			}
			b = b[k:]
		case 2:
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return fmt.Errorf("%w: bad identifier", ErrMacaroon)
			}
			if err := fn(key>>3, b[k:k+int(n)]); err != nil {
				return err
			}
			b = b[k+int(n):]
		default:
			return fmt.Errorf("%w: bad identifier", ErrMacaroon)
		}
	}
	return nil
}
