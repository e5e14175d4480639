package onchain

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Fuzz targets for what the bitcoin node answers: the JSON-RPC envelope and the results read
// from it, and the raw transactions and blocks decoded from hex.

// sampleTxs are transactions of the shapes the watcher reads: a segwit payment (P2WPKH input
// with a witness, change and a payment output), a legacy one, and a coinbase.
func sampleTxs() []*wire.MsgTx {
	h := chainhash.DoubleHashH([]byte("prev"))
	seg := wire.NewMsgTx(2)
	seg.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&h, 1), nil, wire.TxWitness{bytes.Repeat([]byte{0x30}, 71), bytes.Repeat([]byte{0x02}, 33)}))
	seg.AddTxOut(wire.NewTxOut(150_000, append([]byte{0x00, 0x14}, bytes.Repeat([]byte{0xab}, 20)...)))
	seg.AddTxOut(wire.NewTxOut(49_000, append([]byte{0x00, 0x14}, bytes.Repeat([]byte{0xcd}, 20)...)))
	seg.TxIn[0].Sequence = 0xfffffffd // replaceable
	legacy := wire.NewMsgTx(1)
	legacy.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&h, 0), bytes.Repeat([]byte{0x47}, 106), nil))
	legacy.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&h, 7), []byte{0x51}, nil))
	legacy.AddTxOut(wire.NewTxOut(1, []byte{0x76, 0xa9, 0x14}))
	legacy.LockTime = 800_000
	coinbase := wire.NewMsgTx(2)
	coinbase.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, 0xffffffff), []byte{0x03, 0x01, 0x02, 0x03}, wire.TxWitness{make([]byte, 32)}))
	coinbase.AddTxOut(wire.NewTxOut(5_000_000_000, []byte{0x00, 0x14, 1, 2, 3}))
	return []*wire.MsgTx{seg, legacy, coinbase}
}

func txHex(tx *wire.MsgTx) string {
	var b bytes.Buffer
	tx.Serialize(&b)
	return hex.EncodeToString(b.Bytes())
}

// FuzzDecodeTx: any string decodes (decodeTx, getrawtransaction's answer) to a transaction or an
// error, and a transaction that decodes re-encodes to bytes that decode to the same transaction
// (same serialization, same txid and wtxid). Transactions without inputs are left out of the
// round trip: their encoding is ambiguous with the segwit marker in Bitcoin's format itself.
func FuzzDecodeTx(f *testing.F) {
	for _, tx := range sampleTxs() {
		s := txHex(tx)
		f.Add(s)
		f.Add(strings.ToUpper(s))
		f.Add(s[:len(s)-6]) // cut short
		f.Add(s[:len(s)-1]) // odd length
		f.Add(s + "00")     // a byte after the end
		f.Add(s[:10] + "zz" + s[12:])
	}
	f.Add("")
	f.Add("0200000000") // a segwit marker and nothing more
	f.Fuzz(func(t *testing.T, s string) {
		tx, err := decodeTx(s)
		if err != nil {
			return
		}
		if len(tx.TxIn) == 0 {
			return
		}
		var buf bytes.Buffer
		if err := tx.Serialize(&buf); err != nil {
			t.Fatalf("decoded transaction does not serialize: %v", err)
		}
		again, err := decodeTx(hex.EncodeToString(buf.Bytes()))
		if err != nil {
			t.Fatalf("re-encoded transaction does not decode: %v", err)
		}
		var buf2 bytes.Buffer
		again.Serialize(&buf2)
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) || again.TxHash() != tx.TxHash() || again.WitnessHash() != tx.WitnessHash() {
			t.Fatalf("transaction %x re-decodes differently", buf.Bytes())
		}
	})
}

// FuzzDecodeBlock: as FuzzDecodeTx for getblock's raw blocks: a block that decodes re-encodes to
// one that decodes the same (header hash, transactions).
func FuzzDecodeBlock(f *testing.F) {
	blk := wire.NewMsgBlock(wire.NewBlockHeader(4, &chainhash.Hash{1}, &chainhash.Hash{2}, 0x207fffff, 7))
	for _, tx := range sampleTxs() {
		blk.AddTransaction(tx)
	}
	var b bytes.Buffer
	blk.Serialize(&b)
	s := hex.EncodeToString(b.Bytes())
	f.Add(s)
	f.Add(s[:160] + "00") // a header and no transaction
	f.Add(s[:len(s)-20])
	f.Fuzz(func(t *testing.T, s string) {
		blk, err := decodeBlock(s)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := blk.Serialize(&buf); err != nil {
			t.Fatalf("decoded block does not serialize: %v", err)
		}
		again, err := decodeBlock(hex.EncodeToString(buf.Bytes()))
		if err != nil {
			for _, tx := range blk.Transactions {
				if len(tx.TxIn) == 0 {
					return // the segwit marker ambiguity, as in FuzzDecodeTx
				}
			}
			t.Fatalf("re-encoded block does not decode: %v", err)
		}
		if again.BlockHash() != blk.BlockHash() || len(again.Transactions) != len(blk.Transactions) {
			t.Fatal("block re-decodes differently")
		}
		for i, tx := range blk.Transactions {
			if again.Transactions[i].WitnessHash() != tx.WitnessHash() {
				t.Fatalf("transaction %d re-decodes differently", i)
			}
		}
	})
}

// FuzzDecodeAnswer: any body the node answers decodes (decodeAnswer) into each result the
// watcher asks for, or fails: the node's error comes back as an *RPCError and re-encodes to an
// answer that gives the same error; a result that decodes, written back into an answer,
// decodes to the same value; and a hash the node names that parses prints back as itself.
func FuzzDecodeAnswer(f *testing.F) {
	for _, s := range []string{
		`{"result":812345,"error":null,"id":1}`,
		`{"result":"000000000000000000024bead8df69990852c202db0e0097c1a12ea637d7e96d","error":null,"id":2}`,
		`{"result":["5b5b6c9e3f5c2d1a0b9e8f7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39","00"],"error":null,"id":3}`,
		`{"result":{"bestblock":"00","confirmations":3,"value":0.0015,"scriptPubKey":{"hex":"0014ab"}},"error":null,"id":4}`,
		`{"result":null,"error":null,"id":5}`,
		`{"result":null,"error":{"code":-5,"message":"No such mempool or blockchain transaction."},"id":6}`,
		`{"result":"` + txHex(sampleTxs()[0]) + `","error":null,"id":7}`,
		`{"error":{"code":-28,"message":"Loading block index…"}}`,
		`<html>401</html>`,
		`{"result":1e99}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The node's own error: every result type sees it, as the same *RPCError.
		var rpcErr *RPCError
		if err := decodeAnswer(raw, "200 OK", "getblockcount", nil); errors.As(err, &rpcErr) {
			body, _ := json.Marshal(map[string]any{"result": nil, "error": rpcErr})
			var again *RPCError
			if err := decodeAnswer(body, "200 OK", "getblockcount", nil); !errors.As(err, &again) || *again != *rpcErr {
				t.Fatalf("node error %+v re-decodes as %v", rpcErr, err)
			}
		}
		var (
			count int32
			str   string
			list  []string
			txOut *struct {
				Confirmations int32 `json:"confirmations"`
			}
			rawOut json.RawMessage
		)
		for _, result := range []any{&count, &str, &list, &txOut, &rawOut} {
			err := decodeAnswer(raw, "200 OK", "m", result)
			if err != nil {
				continue
			}
			v := reflect.ValueOf(result).Elem().Interface()
			body, err := json.Marshal(map[string]any{"result": v, "error": nil})
			if err != nil {
				t.Fatalf("decoded result %#v does not encode: %v", v, err)
			}
			fresh := reflect.New(reflect.TypeOf(result).Elem())
			if err := decodeAnswer(body, "200 OK", "m", fresh.Interface()); err != nil {
				t.Fatalf("result %s re-decodes with %v", body, err)
			}
			got := fresh.Elem().Interface()
			if r, ok := v.(json.RawMessage); ok {
				// Raw results are compared as values: re-encoding compacts them.
				if !jsonEqual(r, got.(json.RawMessage)) {
					t.Fatalf("raw result %s re-decodes as %s", r, got)
				}
				continue
			}
			if !reflect.DeepEqual(v, got) {
				t.Fatalf("result %#v re-decodes as %#v", v, got)
			}
		}
		for _, s := range append([]string{str}, list...) {
			if h, err := chainhash.NewHashFromStr(s); err == nil && len(s) == 2*chainhash.HashSize {
				if h2, err := chainhash.NewHashFromStr(h.String()); err != nil || *h2 != *h || !strings.EqualFold(h.String(), s) {
					t.Fatalf("hash %q reads as %v, which prints as %q", s, h, h.String())
				}
			}
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}
