package feed

import (
	"bytes"
	"testing"
)

// Fuzz targets for every decoder of bytes that come from peers or disk.

func seedProofs(f *testing.F) {
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{1}, 32))
	w, err := Create(f.TempDir(), Options{KeyPair: &kp, Mode: Manifest})
	if err != nil {
		f.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 11; i++ {
		w.Append(block(i, 20))
	}
	for _, req := range []Request{
		{Block: &BlockRequest{Index: 10}, Upgrade: &UpgradeRequest{Length: 11}, Manifest: true},
		{Block: &BlockRequest{Index: 3}, Upgrade: &UpgradeRequest{Start: 0, Length: 6}},
		{Upgrade: &UpgradeRequest{Start: 4, Length: 7}},
		{Block: &BlockRequest{Index: 2, Nodes: 2}},
	} {
		p, err := w.Proof(req)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
}

func FuzzDecodeProof(f *testing.F) {
	seedProofs(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b, 1<<16)
		if err != nil {
			return
		}
		out, _ := p.MarshalBinary()
		p2, err := DecodeProof(out, 1<<16)
		if err != nil {
			t.Fatalf("re-encoded proof does not decode: %v", err)
		}
		out2, _ := p2.MarshalBinary()
		if !bytes.Equal(out, out2) {
			t.Fatal("encoding is not stable")
		}
	})
}

// FuzzVerify feeds decoded garbage to a reader: it must never panic, and
// whatever it accepts must leave it consistent with the real writer.
func FuzzVerify(f *testing.F) {
	seedProofs(f)
	// Forged upgrades that once made verification loop forever.
	for _, p := range []*Proof{
		{Upgrade: &UpgradeProof{Start: 0, Length: 1 << 62, Nodes: []Node{{Index: 1<<62 - 1}},
			AdditionalNodes: []Node{{Index: 1<<62 - 1 + 1<<63}, {Index: 5}}, Signature: make([]byte, 64)}},
		{Block: &BlockProof{Index: 1<<63 - 1, Value: []byte{1}}, Upgrade: &UpgradeProof{Start: 0, Length: 1, Signature: make([]byte, 68)}},
	} {
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{1}, 32))
	m := DefaultManifest(kp.Public)
	key := m.Hash()
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b, 1<<16)
		if err != nil {
			return
		}
		r, err := Create(t.TempDir(), Options{Key: &key, Manifest: m.Encode()})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.Verify(p); err != nil {
			if r.Length() != 0 || r.Stored() != 0 {
				t.Fatal("a refused proof changed the reader")
			}
			return
		}
		if _, err := r.VerifyAll(); err != nil {
			t.Fatalf("accepted a proof that leaves the reader inconsistent: %v", err)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []Request{{Block: &BlockRequest{Index: 5, Nodes: 2}}, {Upgrade: &UpgradeRequest{Start: 1, Length: 1 << 33}, Manifest: true}} {
		b, _ := r.AppendBinary(nil)
		f.Add(b)
	}
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{1}, 32))
	w, err := Create(f.TempDir(), Options{KeyPair: &kp})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 9; i++ {
		w.Append(block(i, 3))
	}
	f.Cleanup(func() { w.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		// Any decoded request is answered or refused, never a panic.
		w.Proof(*r)
	})
}

func FuzzDecodeRecord(f *testing.F) {
	r := &record{seq: 3, upgraded: true, length: 2, signature: make([]byte, 64), nodes: []Node{{Index: 2, Size: 5}}, blocks: []blockRef{{index: 1, entry: blockEntry{offset: 7, length: 5, crc: 9}}}}
	f.Add(r.encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		r2, err := decodeRecord(r.encode(nil))
		if err != nil || r2.seq != r.seq || len(r2.nodes) != len(r.nodes) {
			t.Fatalf("record round trip: %v", err)
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add((&checkpoint{seq: 9, length: 3, signature: make([]byte, 68)}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeCheckpoint(b)
	})
}

func FuzzDecodeManifest(f *testing.F) {
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{1}, 32))
	f.Add(DefaultManifest(kp.Public).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatalf("manifest re-encodes differently")
		}
	})
}

func FuzzDecodeMultiSignature(f *testing.F) {
	f.Add(encodeMultiSignature([]signerProof{{}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeMultiSignature(b)
	})
}

// The owner file decodes to a state or, when damaged, to the worst case; a
// decoded state encodes back to the same bytes' meaning.
func FuzzDecodeOwner(f *testing.F) {
	for _, o := range []ownerState{{}, {held: true, mode: ForkOnPowerLoss, boot: "9f1c2e70-5d0e-4d1b-a7a4-0c3f0d5b8e11"}, {held: true, mode: SyncEveryAppend}} {
		f.Add(o.encode())
	}
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o := decodeOwner(b)
		if len(o.boot) > maxBootID || o.mode > ForkOnPowerLoss {
			t.Fatalf("decoded an out-of-range owner state %+v", o)
		}
		if again := decodeOwner(o.encode()); again != o {
			t.Fatalf("owner state %+v re-decodes as %+v", o, again)
		}
	})
}
