package lightning

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// testMacaroon builds an LND-style V2 binary macaroon granting ops (entity → actions).
func testMacaroon(ops [][2]string) []byte {
	field := func(b []byte, num uint64, v []byte) []byte {
		b = binary.AppendUvarint(b, num<<3|2)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	id := field(nil, 1, []byte("nonce-nonce-nonce-nonce-"))
	id = field(id, 2, []byte("0"))
	byEntity := map[string][]string{}
	var order []string
	for _, op := range ops {
		if _, ok := byEntity[op[0]]; !ok {
			order = append(order, op[0])
		}
		byEntity[op[0]] = append(byEntity[op[0]], op[1])
	}
	for _, e := range order {
		op := field(nil, 1, []byte(e))
		for _, a := range byEntity[e] {
			op = field(op, 2, []byte(a))
		}
		id = field(id, 3, op)
	}
	id = append([]byte{3}, id...)
	m := []byte{2}
	m = append(m, 1)
	m = binary.AppendUvarint(m, 3)
	m = append(m, "lnd"...)
	m = append(m, 2)
	m = binary.AppendUvarint(m, uint64(len(id)))
	m = append(m, id...)
	m = append(m, 0, 0, 6, 32)
	return append(m, make([]byte, 32)...)
}

var (
	invoiceOps = [][2]string{{"address", "read"}, {"address", "write"}, {"invoices", "read"}, {"invoices", "write"}, {"onchain", "read"}}
	adminOps   = append(append([][2]string{}, invoiceOps...), [2]string{"offchain", "write"}, [2]string{"onchain", "write"},
		[2]string{"macaroon", "generate"}, [2]string{"peers", "write"})
)

func TestMacaroonPolicy(t *testing.T) {
	inv := testMacaroon(invoiceOps)
	if err := CheckInvoiceMacaroon(inv); err != nil {
		t.Fatalf("invoice macaroon refused: %v", err)
	}
	if err := CheckInvoiceMacaroon([]byte(hex.EncodeToString(inv) + "\n")); err != nil {
		t.Fatalf("hex invoice macaroon refused: %v", err)
	}
	ops, _ := Permissions(inv)
	if strings.Join(ops, ",") != "address:read,address:write,invoices:read,invoices:write,onchain:read" {
		t.Fatalf("permissions %v", ops)
	}
	cases := []struct {
		name string
		mac  []byte
		text string
	}{
		{"admin", testMacaroon(adminOps), "admin macaroon"},
		{"can pay", testMacaroon(append(append([][2]string{}, invoiceOps...), [2]string{"offchain", "write"})), "spend"},
		{"read only", testMacaroon([][2]string{{"invoices", "read"}, {"offchain", "read"}}), "read more"},
		{"cannot write", testMacaroon([][2]string{{"invoices", "read"}}), "cannot both create and watch"},
		{"empty", nil, "version-2"},
		{"garbage", []byte("\x02\x02\xff\xff\xff"), "truncated"},
		{"not lnd", []byte{2, 2, 3, 'a', 'b', 'c', 0, 0}, "not an LND macaroon"},
	}
	for _, c := range cases {
		err := CheckInvoiceMacaroon(c.mac)
		if !errors.Is(err, ErrMacaroon) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func FuzzPermissions(f *testing.F) {
	f.Add(testMacaroon(invoiceOps))
	f.Add(testMacaroon(adminOps))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := Permissions(b)
		if err == nil && len(ops) == 0 {
			t.Fatal("no error and no permissions")
		}
	})
}
