package feed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func testKeyPair(t testing.TB, b byte) KeyPair {
	t.Helper()
	kp, err := KeyPairFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func newWriter(t testing.TB, mode Mode) (*Feed, KeyPair) {
	t.Helper()
	kp := testKeyPair(t, 7)
	f, err := Create(t.TempDir(), Options{KeyPair: &kp, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, kp
}

func newReader(t testing.TB, w *Feed) *Feed {
	t.Helper()
	key := w.Key()
	r, err := Create(t.TempDir(), Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func block(i int, size int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, size)
	if size >= 4 {
		b[0], b[1], b[2], b[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
	}
	return b
}

func mustAppend(t testing.TB, f *Feed, blocks ...[]byte) Head {
	t.Helper()
	h, err := f.Append(blocks...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// replicate asks w for block i (with an upgrade when r is behind) and verifies it on r.
func replicate(t testing.TB, w, r *Feed, i uint64) *Proof {
	t.Helper()
	req := Request{Block: &BlockRequest{Index: i, Nodes: r.MissingNodes(i)}}
	if l := w.Length(); r.Length() < l {
		req.Upgrade = &UpgradeRequest{Start: r.Length(), Length: l - r.Length()}
		if i >= r.Length() {
			req.Block.Nodes = 0
		}
	}
	if _, known := r.Mode(); !known {
		req.Manifest = true
	}
	p, err := w.Proof(req)
	if err != nil {
		t.Fatalf("proof for %d: %v", i, err)
	}
	if err := r.Verify(p); err != nil {
		t.Fatalf("verify %d: %v", i, err)
	}
	return p
}

func TestAppendReplicateBothModes(t *testing.T) {
	for _, mode := range []Mode{Compat, Manifest} {
		t.Run(mode.String(), func(t *testing.T) {
			w, kp := newWriter(t, mode)
			for i := 0; i < 10; i++ {
				mustAppend(t, w, block(i, 100+i))
			}
			mustAppend(t, w, block(10, 0), block(11, 5000), block(12, 1))
			h := w.Head()
			if h.Length != 13 {
				t.Fatalf("length %d", h.Length)
			}
			if k := w.Key(); mode == Compat && !bytes.Equal(k[:], kp.Public) {
				t.Fatal("compat key is not the public key")
			}
			r := newReader(t, w)
			// A late joiner: newest block first, then random older ones.
			for _, i := range []uint64{12, 3, 0, 11, 7, 10} {
				replicate(t, w, r, i)
				got, err := r.Get(i)
				if err != nil || !bytes.Equal(got, mustGet(t, w, i)) {
					t.Fatalf("block %d: %v", i, err)
				}
			}
			if r.Stored() != 6 || r.Has(5) {
				t.Fatalf("reader stores %d blocks", r.Stored())
			}
			rh := r.Head()
			if rh.Length != h.Length || rh.TreeHash != h.TreeHash || rh.ByteLength != h.ByteLength {
				t.Fatalf("reader head %+v, writer %+v", rh, h)
			}
			if m, ok := r.Mode(); !ok || m != mode {
				t.Fatalf("reader learned mode %v %v", m, ok)
			}
			if n, err := r.VerifyAll(); err != nil || n != 6 {
				t.Fatalf("reader VerifyAll %d %v", n, err)
			}
		})
	}
}

func mustGet(t testing.TB, f *Feed, i uint64) []byte {
	t.Helper()
	b, err := f.Get(i)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLiveTailNeedsNoHashes(t *testing.T) {
	w, _ := newWriter(t, Compat)
	r := newReader(t, w)
	for i := 0; i < 200; i++ {
		mustAppend(t, w, block(i, 64))
		p := replicate(t, w, r, uint64(i))
		if i > 0 && (len(p.Block.Nodes) != 0 || len(p.Upgrade.Nodes) != 0 || len(p.Upgrade.AdditionalNodes) != 0) {
			t.Fatalf("block %d: a reader holding the previous peaks got %d+%d+%d nodes", i, len(p.Block.Nodes), len(p.Upgrade.Nodes), len(p.Upgrade.AdditionalNodes))
		}
	}
}

func TestReopenKeepsState(t *testing.T) {
	kp := testKeyPair(t, 3)
	dir := t.TempDir()
	w, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ { // enough records to pass a checkpoint
		if i%100 == 0 {
			_, err = w.AppendSync(block(i, 10))
		} else {
			_, err = w.Append(block(i, 10))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	h := w.Head()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = Open(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.Head(); got.TreeHash != h.TreeHash || got.Length != 5000 || got.SyncPoint != 4900 || !got.HasSyncPoint {
		t.Fatalf("reopened head %+v, want %+v", got, h)
	}
	if b := mustGet(t, w, 4321); !bytes.Equal(b, block(4321, 10)) {
		t.Fatal("block 4321 differs after reopen")
	}
	mustAppend(t, w, []byte("more"))

	// A reader keeps its sparse blocks across restarts too.
	key := w.Key()
	rdir := t.TempDir()
	r, err := Create(rdir, Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	replicate(t, w, r, 5000)
	replicate(t, w, r, 17)
	r.Close()
	r, err = Open(rdir, Options{Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Has(17) || !r.Has(5000) || r.Has(18) || r.Length() != 5001 {
		t.Fatalf("reader after reopen: has17=%v has5000=%v length=%d", r.Has(17), r.Has(5000), r.Length())
	}
	replicate(t, w, r, 18) // needs only the nodes it lacks
}

func TestOpenWithWrongKeyPair(t *testing.T) {
	kp := testKeyPair(t, 1)
	dir := t.TempDir()
	f, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	other := testKeyPair(t, 2)
	if _, err := Open(dir, Options{KeyPair: &other}); !errors.Is(err, ErrWrongKeyPair) {
		t.Fatalf("got %v", err)
	}
	if _, err := Create(dir, Options{KeyPair: &kp}); !errors.Is(err, ErrExists) {
		t.Fatalf("create over a feed: %v", err)
	}
	if _, err := Open(t.TempDir(), Options{}); err == nil {
		t.Fatal("opened an empty directory")
	}
}

func TestBlockSizeCap(t *testing.T) {
	kp := testKeyPair(t, 1)
	f, err := Create(t.TempDir(), Options{KeyPair: &kp, MaxBlockSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Append(make([]byte, 1001)); !errors.Is(err, ErrBlockTooBig) {
		t.Fatalf("got %v", err)
	}
	if f.Length() != 0 {
		t.Fatal("a refused block changed the feed")
	}
	mustAppend(t, f, make([]byte, 1000))
}

// TestBadProofs tampers with every part of valid proofs: each must be refused
// with an error and leave the reader unchanged.
func TestBadProofs(t *testing.T) {
	w, _ := newWriter(t, Manifest)
	for i := 0; i < 37; i++ {
		mustAppend(t, w, block(i, 50))
	}
	fresh := func() *Feed { return newReader(t, w) }
	good := func(r *Feed, i uint64) *Proof {
		req := Request{Block: &BlockRequest{Index: i}, Upgrade: &UpgradeRequest{Start: r.Length(), Length: w.Length() - r.Length()}, Manifest: true}
		p, err := w.Proof(req)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	other, _ := func() (*Feed, KeyPair) {
		kp := testKeyPair(t, 99)
		f, err := Create(t.TempDir(), Options{KeyPair: &kp, Mode: Manifest})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		for i := 0; i < 37; i++ {
			mustAppend(t, f, block(i, 50))
		}
		return f, kp
	}()
	cases := []struct {
		name   string
		mutate func(p *Proof)
	}{
		{"tampered block", func(p *Proof) { p.Block.Value[3] ^= 1 }},
		{"longer block", func(p *Proof) { p.Block.Value = append(p.Block.Value, 0) }},
		{"tampered block node", func(p *Proof) { p.Block.Nodes[0].Hash[0] ^= 1 }},
		{"wrong node size", func(p *Proof) { p.Block.Nodes[0].Size++ }},
		{"wrong node index", func(p *Proof) { p.Block.Nodes[0].Index += 2 }},
		{"dropped node", func(p *Proof) { p.Block.Nodes = p.Block.Nodes[1:] }},
		{"extra node", func(p *Proof) { p.Block.Nodes = append(p.Block.Nodes, p.Block.Nodes[0]) }},
		{"tampered upgrade node", func(p *Proof) { p.Upgrade.Nodes[0].Hash[5] ^= 1 }},
		{"dropped upgrade node", func(p *Proof) { p.Upgrade.Nodes = p.Upgrade.Nodes[:len(p.Upgrade.Nodes)-1] }},
		{"wrong signature", func(p *Proof) { p.Upgrade.Signature[10] ^= 1 }},
		{"truncated signature", func(p *Proof) { p.Upgrade.Signature = p.Upgrade.Signature[:40] }},
		{"wrong length", func(p *Proof) { p.Upgrade.Length-- }},
		{"wrong fork", func(p *Proof) { p.Fork = 1 }},
		{"wrong start", func(p *Proof) { p.Upgrade.Start = 1 }},
		{"other feed's signature", func(p *Proof) {
			q, _ := other.Proof(Request{Upgrade: &UpgradeRequest{Start: 0, Length: 37}})
			p.Upgrade.Signature = q.Upgrade.Signature
		}},
		{"other feed's manifest", func(p *Proof) { p.Manifest = other.Manifest() }},
		{"garbage manifest", func(p *Proof) { p.Manifest = []byte{1, 2, 3} }},
		{"no upgrade to a fresh reader", func(p *Proof) { p.Upgrade = nil }},
		{"empty proof", func(p *Proof) { p.Block, p.Upgrade = nil, nil }},
		{"block past length", func(p *Proof) { p.Block.Index = 40 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fresh()
			p := good(r, 21)
			c.mutate(p)
			if err := r.Verify(p); err == nil {
				t.Fatal("accepted")
			} else {
				t.Logf("refused: %v", err)
			}
			if r.Length() != 0 || r.Stored() != 0 || r.Has(21) {
				t.Fatal("a refused proof changed the reader")
			}
			// The reader still works.
			if err := r.Verify(good(r, 21)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A block without upgrade for a reader that has the tree must still hash to its node.
	r := fresh()
	r.Verify(good(r, 21))
	p, _ := w.Proof(Request{Block: &BlockRequest{Index: 5, Nodes: r.MissingNodes(5)}})
	p.Block.Value[0] ^= 1
	if err := r.Verify(p); err == nil || r.Has(5) {
		t.Fatalf("tampered old block accepted: %v", err)
	}
	// A compat reader given a manifest-mode feed's key refuses compat signatures.
	wc, _ := newWriter(t, Compat)
	mustAppend(t, wc, []byte("x"))
	q, _ := wc.Proof(Request{Upgrade: &UpgradeRequest{Length: 1}})
	if err := fresh().Verify(q); err == nil {
		t.Fatal("proof of another feed accepted")
	}
}

func TestBadRequests(t *testing.T) {
	w, _ := newWriter(t, Compat)
	for i := 0; i < 10; i++ {
		mustAppend(t, w, block(i, 10))
	}
	for name, req := range map[string]Request{
		"block past length":      {Block: &BlockRequest{Index: 10}},
		"huge block index":       {Block: &BlockRequest{Index: 1 << 62}},
		"upgrade past length":    {Upgrade: &UpgradeRequest{Start: 5, Length: 6}},
		"upgrade overflow":       {Upgrade: &UpgradeRequest{Start: 1<<64 - 1, Length: 2}},
		"empty upgrade":          {Upgrade: &UpgradeRequest{Start: 3, Length: 0}},
		"nodes past the tree":    {Block: &BlockRequest{Index: 2, Nodes: 5}},
		"absurd nodes":           {Block: &BlockRequest{Index: 2, Nodes: 1 << 40}},
		"block past the upgrade": {Block: &BlockRequest{Index: 8}, Upgrade: &UpgradeRequest{Start: 0, Length: 4}},
	} {
		if _, err := w.Proof(req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDamagedFiles(t *testing.T) {
	kp := testKeyPair(t, 5)
	mk := func(t *testing.T) string {
		dir := t.TempDir()
		f, err := Create(dir, Options{KeyPair: &kp})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			mustAppend(t, f, block(i, 100))
		}
		// Leave the last appends in the log (no Close) to test both paths.
		f.mu.Lock()
		f.checkpointLocked()
		f.mu.Unlock()
		for i := 20; i < 25; i++ {
			mustAppend(t, f, block(i, 100))
		}
		f.crash()
		return dir
	}
	cases := []struct {
		name    string
		damage  func(dir string)
		wantLen uint64 // 0: open must fail
		wantErr bool
		// The fork after recovery: a torn tail was never shared, but a damaged record
		// with complete ones after it was written and maybe shared, so the writer moves
		// to a new fork rather than sign other blocks at those lengths.
		wantFork uint64
	}{
		{"torn log tail", func(dir string) { truncateBy(dir, "oplog", 7) }, 24, false, 0},
		{"garbage appended to log", func(dir string) { appendTo(dir, "oplog", []byte("garbage!garbage!")) }, 25, false, 0},
		// A power loss can leave a file longer than what was written, the rest zeros.
		{"zeros past the log's end", func(dir string) { appendTo(dir, "oplog", make([]byte, 4096)) }, 25, false, 0},
		{"log cut to nothing", func(dir string) { os.Truncate(filepath.Join(dir, "oplog"), 0) }, 20, false, 0},
		{"flipped bit in log", func(dir string) { flip(dir, "oplog", 30) }, 20, false, 1},
		{"flipped bit in block data", func(dir string) { flip(dir, "data", 150) }, 25, false, 0},
		{"truncated meta", func(dir string) { os.Truncate(filepath.Join(dir, "meta"), 10) }, 0, true, 0},
		{"garbage meta", func(dir string) { os.WriteFile(filepath.Join(dir, "meta"), []byte("not a feed at all"), 0o600) }, 0, true, 0},
		{"both header slots torn", func(dir string) { os.WriteFile(filepath.Join(dir, "header"), bytes.Repeat([]byte{0xff}, 1024), 0o600) }, 0, true, 0},
		{"tampered tree node", func(dir string) { flip(dir, "tree", 40*5+10) }, 0, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := mk(t)
			c.damage(dir)
			f, err := Open(dir, Options{KeyPair: &kp})
			if c.wantErr {
				if err == nil {
					n, verr := f.VerifyAll()
					f.Close()
					if verr == nil {
						t.Fatalf("opened and verified a damaged feed (length %d, %d blocks)", f.Length(), n)
					}
					t.Logf("refused on verify: %v", verr)
					return
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer f.Close()
			if f.Length() != c.wantLen || f.Head().Fork != c.wantFork {
				t.Fatalf("length %d, fork %d after recovery, want %d, %d", f.Length(), f.Head().Fork, c.wantLen, c.wantFork)
			}
			if c.name == "flipped bit in block data" {
				if _, err := f.Get(1); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("damaged block served: %v", err)
				}
				if _, err := f.Proof(Request{Block: &BlockRequest{Index: 1}}); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("damaged block proved: %v", err)
				}
				return
			}
			if _, err := f.VerifyAll(); err != nil {
				t.Fatalf("verify after recovery: %v", err)
			}
			// It appends on from the recovered state, and a reader accepts the result.
			mustAppend(t, f, []byte("after recovery"))
			r := newReader(t, f)
			replicate(t, f, r, f.Length()-1)
		})
	}
}

func truncateBy(dir, name string, n int64) {
	p := filepath.Join(dir, name)
	st, _ := os.Stat(p)
	os.Truncate(p, st.Size()-n)
}

func appendTo(dir, name string, b []byte) {
	f, _ := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(b)
	f.Close()
}

func flip(dir, name string, off int64) {
	f, _ := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x10
	f.WriteAt(b, off)
}

func TestSubscribeCoalesces(t *testing.T) {
	w, _ := newWriter(t, Compat)
	ch, cancel := w.Subscribe()
	defer cancel()
	for i := 0; i < 5; i++ {
		mustAppend(t, w, block(i, 1))
	}
	h := <-ch
	if h.Length != 5 {
		t.Fatalf("subscriber got length %d, want the newest (5)", h.Length)
	}
	select {
	case h := <-ch:
		t.Fatalf("backlog: %d", h.Length)
	default:
	}
}

func TestProofEncodingLimits(t *testing.T) {
	w, _ := newWriter(t, Compat)
	mustAppend(t, w, make([]byte, 2000))
	p, _ := w.Proof(Request{Block: &BlockRequest{Index: 0}, Upgrade: &UpgradeRequest{Length: 1}})
	b, _ := p.MarshalBinary()
	if _, err := DecodeProof(b, 1000); err == nil {
		t.Fatal("a block over the cap decoded")
	}
	for name, in := range map[string][]byte{
		"empty":            {},
		"bad version":      {9},
		"unknown flags":    {1, 0x40},
		"truncated":        b[:len(b)-3],
		"trailing":         append(append([]byte{}, b...), 0),
		"absurd length":    {1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"absurd node list": {1, 2, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, err := DecodeProof(in, 0); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := DecodeRequest([]byte{1, 1, 0, 0xff}); err == nil {
		t.Error("truncated request decoded")
	}
	rq := Request{Fork: 3, Block: &BlockRequest{Index: 1 << 40, Nodes: 3}, Upgrade: &UpgradeRequest{Start: 70000, Length: 5}, Manifest: true}
	rb, _ := rq.AppendBinary(nil)
	got, err := DecodeRequest(rb)
	if err != nil || fmt.Sprint(*got.Block, *got.Upgrade, got.Fork, got.Manifest) != fmt.Sprint(*rq.Block, *rq.Upgrade, rq.Fork, rq.Manifest) {
		t.Fatalf("request round trip: %+v %v", got, err)
	}
}

// TestEncryptedFeedRelays checks the room left for block encryption: the tree
// covers the ciphertext, so a relay without the key verifies and serves the
// blocks, and only a holder of the key reads them.
func TestEncryptedFeedRelays(t *testing.T) {
	kp := testKeyPair(t, 8)
	secret := bytes.Repeat([]byte{0x5e}, 32)
	var pk [32]byte
	copy(pk[:], kp.Public)
	enc, err := NewXChaCha20Encryption(pk, secret)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(t.TempDir(), Options{KeyPair: &kp, Encryption: enc})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	plain := []byte("paid video frame")
	mustAppend(t, w, plain, []byte("second"))
	if got, err := w.Read(0); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("writer Read: %q %v", got, err)
	}
	stored, _ := w.Get(0)
	if bytes.Contains(stored, plain) || len(stored) != len(plain)+enc.Overhead() {
		t.Fatal("stored block is not encrypted")
	}
	// A relay: verifies and stores ciphertext, cannot read it.
	key := w.Key()
	relay, err := Create(t.TempDir(), Options{Key: &key, Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	replicate(t, w, relay, 1)
	replicate(t, w, relay, 0)
	if _, err := relay.Read(0); err == nil {
		t.Fatal("relay read an encrypted block without the key")
	}
	// A paying viewer gets the blocks from the relay and reads them with the key.
	viewer, err := Create(t.TempDir(), Options{Key: &key, Encryption: enc})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	replicate(t, relay, viewer, 0)
	if got, err := viewer.Read(0); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("viewer Read: %q %v", got, err)
	}
	wrong, _ := NewXChaCha20Encryption(pk, bytes.Repeat([]byte{1}, 32))
	if got, _ := wrong.Decrypt(nil, 0, 0, stored); bytes.Equal(got, plain) {
		t.Fatal("a wrong key decrypted the block")
	}
}

func TestProofLengthAndCompatKey(t *testing.T) {
	w, _ := newWriter(t, Compat)
	for i := 0; i < 5; i++ {
		mustAppend(t, w, block(i, 10))
	}
	// The caller saw length 3; the proof (with additional nodes) reaches 5.
	p, length, err := w.ProofLength(Request{Block: &BlockRequest{Index: 2}, Upgrade: &UpgradeRequest{Length: 3}})
	if err != nil || length != 5 || len(p.Upgrade.AdditionalNodes) == 0 {
		t.Fatalf("ProofLength: %d %v", length, err)
	}
	key := w.Key()
	r, err := Create(t.TempDir(), Options{Key: &key, CompatKey: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if m, ok := r.Mode(); !ok || m != Compat {
		t.Fatal("a reader created with CompatKey does not know its mode")
	}
	if err := r.Verify(p); err != nil || r.Length() != length {
		t.Fatalf("verify: %v, length %d", err, r.Length())
	}
}

// A damaged length or offset in the blocks file is caught before anything is allocated or
// written by it: the block reads as damaged (ErrCorrupt, served to nobody), the others read
// as before, and new blocks still go where the data file ends, not out past a huge hole.
func TestDamagedBlockEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		field  int // byte offset in the 16-byte entry: 0 offset, 8 length+1
		value  uint64
		fields int // bytes written
	}{
		{"length", 8, 0xF0000000, 4},
		{"offset", 0, 1 << 50, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kp := testKeyPair(t, 5)
			dir := t.TempDir()
			f, err := Create(dir, Options{KeyPair: &kp})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				mustAppend(t, f, block(i, 100))
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "blocks")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var v [8]byte
			binary.LittleEndian.PutUint64(v[:], tc.value)
			copy(b[blockRecordSize*2+tc.field:], v[:tc.fields])
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			g, err := Open(dir, Options{KeyPair: &kp})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = g.Get(2)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get(2) = %v, want ErrCorrupt", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Fatalf("reading the damaged entry allocated %d bytes", got)
			}
			if _, err := g.Proof(Request{Block: &BlockRequest{Index: 2}}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Proof(2) = %v, want ErrCorrupt", err)
			}
			for _, i := range []uint64{0, 1, 3} {
				if b := mustGet(t, g, i); !bytes.Equal(b, block(int(i), 100)) {
					t.Fatalf("block %d: %q", i, b)
				}
			}
			mustAppend(t, g, block(4, 100))
			if b := mustGet(t, g, 4); !bytes.Equal(b, block(4, 100)) {
				t.Fatalf("block 4: %q", b)
			}
			if st, err := os.Stat(filepath.Join(dir, "data")); err != nil || st.Size() > 1<<20 {
				t.Fatalf("the data file after one more block: %v bytes, %v", st.Size(), err)
			}
		})
	}
}
