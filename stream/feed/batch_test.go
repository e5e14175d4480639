package feed

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// session records the proofs a seller would send a reader, in order, by
// replicating to a shadow reader that verifies them one at a time.
type session struct {
	t      testing.TB
	w      *Feed
	shadow *Feed
	proofs []*Proof
	heads  []Head // the shadow's head after each proof
}

func newSession(t testing.TB, mode Mode) *session {
	w, _ := newWriter(t, mode)
	return &session{t: t, w: w, shadow: newReader(t, w)}
}

// send asks w for req as the shadow stands, verifies it there and records it.
func (s *session) send(req Request) {
	s.t.Helper()
	if _, known := s.shadow.Mode(); !known {
		req.Manifest = true
	}
	p, err := s.w.Proof(req)
	if err != nil {
		s.t.Fatalf("proof: %v", err)
	}
	if err := s.shadow.Verify(p); err != nil {
		s.t.Fatalf("shadow verify: %v", err)
	}
	// The batch reader gets its own copy, as it would off the wire.
	b, err := p.MarshalBinary()
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := DecodeProof(b, DefaultMaxBlockSize)
	if err != nil {
		s.t.Fatal(err)
	}
	s.proofs = append(s.proofs, c)
	s.heads = append(s.heads, s.shadow.Head())
}

// live appends blocks and sends the newest with the upgrade that reaches it, as a
// live push does.
func (s *session) live(blocks ...[]byte) {
	s.t.Helper()
	from := s.shadow.Length()
	h := mustAppend(s.t, s.w, blocks...)
	s.send(Request{Block: &BlockRequest{Index: h.Length - 1}, Upgrade: &UpgradeRequest{Start: from, Length: h.Length - from}})
}

// fill sends block i alone, proved against what the shadow holds.
func (s *session) fill(i uint64) {
	s.t.Helper()
	s.send(Request{Block: &BlockRequest{Index: i, Nodes: s.shadow.MissingNodes(i)}})
}

// sameState fails unless r holds what the shadow held after its first n proofs
// (n = len for all of them).
func sameState(t *testing.T, s *session, r *Feed, n int) {
	t.Helper()
	want := Head{}
	if n > 0 {
		want = s.heads[n-1]
	}
	got := r.Head()
	if got.Fork != want.Fork || got.Length != want.Length || got.ByteLength != want.ByteLength || got.TreeHash != want.TreeHash {
		t.Fatalf("after %d proofs: head %+v, want %+v", n, got, want)
	}
	stored := map[uint64]bool{}
	for _, p := range s.proofs[:n] {
		if p.Block != nil {
			stored[p.Block.Index] = true
		}
	}
	if r.Stored() != uint64(len(stored)) {
		t.Fatalf("after %d proofs: %d blocks stored, want %d", n, r.Stored(), len(stored))
	}
	for i := range stored {
		if !bytes.Equal(mustGet(t, r, i), mustGet(t, s.w, i)) {
			t.Fatalf("block %d differs", i)
		}
	}
	if n, err := r.VerifyAll(); err != nil || n != uint64(len(stored)) {
		t.Fatalf("VerifyAll: %d, %v", n, err)
	}
}

// reopen closes r and opens its directory again, as the next run of the app does.
func reopen(t *testing.T, r *Feed) *Feed {
	t.Helper()
	key := r.Key()
	dir := r.Dir()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := Open(dir, Options{Key: &key})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func TestVerifyBatchMatchesVerify(t *testing.T) {
	scripts := []struct {
		name string
		run  func(s *session)
	}{
		{"live tail", func(s *session) {
			for i := range 40 {
				s.live(block(i, 100+i*37))
			}
		}},
		{"appends of several blocks", func(s *session) {
			for i := 0; i < 60; i += 3 {
				s.live(block(i, 500), block(i+1, 0), block(i+2, 3000))
			}
		}},
		{"late join then back-fill", func(s *session) {
			for i := range 50 {
				mustAppend(s.t, s.w, block(i, 200+i))
			}
			s.live(block(50, 10))
			rng := rand.New(rand.NewPCG(1, 2))
			for _, i := range rng.Perm(50) {
				s.fill(uint64(i))
			}
		}},
		{"live with back-fill between", func(s *session) {
			for i := range 30 {
				s.live(block(i, 700))
				if i%4 == 3 {
					s.fill(uint64(i - 2))
				}
			}
		}},
		{"a block sent twice", func(s *session) {
			for i := range 10 {
				s.live(block(i, 64))
			}
			s.fill(3)
			s.fill(3)
			s.live(block(10, 64))
		}},
	}
	for _, mode := range []Mode{Compat, Manifest} {
		for _, sc := range scripts {
			for _, size := range []int{2, 3, 7, maxBatch} {
				t.Run(mode.String()+"/"+sc.name+"/"+fmt.Sprint(size), func(t *testing.T) {
					s := newSession(t, mode)
					sc.run(s)
					r := newReader(t, s.w)
					// The first proof teaches the reader its signer; batches follow.
					if n, err := r.VerifyBatch(s.proofs[:1]); n != 1 || err != nil {
						t.Fatalf("first proof: %d, %v", n, err)
					}
					for i := 1; i < len(s.proofs); i += size {
						chunk := s.proofs[i:min(i+size, len(s.proofs))]
						if n, err := r.VerifyBatch(chunk); n != len(chunk) || err != nil {
							t.Fatalf("batch at %d: %d of %d, %v", i, n, len(chunk), err)
						}
					}
					sameState(t, s, r, len(s.proofs))
					r = reopen(t, r)
					sameState(t, s, r, len(s.proofs))
					if h := r.Head(); !bytes.Equal(h.Signature, s.shadow.Head().Signature) {
						t.Fatal("the stored signature is not the last one")
					}
				})
			}
		}
	}
}

// A batch that fails stores what Verify one at a time would, and returns its error.
func TestVerifyBatchFailures(t *testing.T) {
	const n = 12
	cases := []struct {
		name   string
		tamper func(ps []*Proof)
		stored int // proofs stored
		err    error
	}{
		{"last signature", func(ps []*Proof) { ps[n-1].Upgrade.Signature[5] ^= 1 }, n - 1, ErrBadSignature},
		// A live push's block is hashed into its upgrade, so its signature no longer fits.
		{"middle block", func(ps []*Proof) { ps[6].Block.Value[0] ^= 1 }, 6, ErrBadSignature},
		{"upgrade past its nodes", func(ps []*Proof) { ps[4].Upgrade.Length = 2 }, 4, ErrInvalidProof},
		{"first block", func(ps []*Proof) { ps[1].Block.Value[0] ^= 1 }, 1, ErrBadSignature},
		{"proof from another fork", func(ps []*Proof) { ps[9].Fork = 3 }, 9, ErrInvalidProof},
		{"oversized block", func(ps []*Proof) { ps[7].Block.Value = make([]byte, DefaultMaxBlockSize+1) }, 7, ErrBlockTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSession(t, Compat)
			for i := range n {
				s.live(block(i, 300+i))
			}
			r := newReader(t, s.w)
			if _, err := r.VerifyBatch(s.proofs[:1]); err != nil {
				t.Fatal(err)
			}
			ps := s.proofs[1:]
			c.tamper(s.proofs)
			got, err := r.VerifyBatch(ps)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if got+1 != c.stored {
				t.Fatalf("%d proofs stored, want %d", got+1, c.stored)
			}
			sameState(t, s, r, c.stored)
			sameState(t, s, reopen(t, r), c.stored)
		})
	}
}

// A bad signature on an upgrade before the batch's last is not noticed, and costs
// nothing: the last signature commits to the tree it would have signed, and only
// the last is stored.
func TestVerifyBatchChecksTheLastSignature(t *testing.T) {
	s := newSession(t, Compat)
	for i := range 8 {
		s.live(block(i, 100))
	}
	r := newReader(t, s.w)
	if _, err := r.VerifyBatch(s.proofs[:1]); err != nil {
		t.Fatal(err)
	}
	s.proofs[3].Upgrade.Signature[0] ^= 1
	if n, err := r.VerifyBatch(s.proofs[1:]); n != len(s.proofs)-1 || err != nil {
		t.Fatalf("%d stored, %v", n, err)
	}
	sameState(t, s, r, len(s.proofs))
	r = reopen(t, r)
	if h := r.Head(); !bytes.Equal(h.Signature, s.shadow.Head().Signature) {
		t.Fatal("the stored signature is not the last one")
	}
}

func TestVerifyBatchLimit(t *testing.T) {
	s := newSession(t, Compat)
	s.live(block(0, 1))
	r := newReader(t, s.w)
	ps := make([]*Proof, maxBatch+1)
	for i := range ps {
		ps[i] = s.proofs[0]
	}
	if n, err := r.VerifyBatch(ps); n != 0 || err == nil {
		t.Fatalf("a batch over the cap: %d, %v", n, err)
	}
}

// BenchmarkVerifyBatch verifies a live stream's pushes (5 KiB blocks) in batches of
// each size: ns/op is per block.
func BenchmarkVerifyBatch(b *testing.B) {
	s := newSession(b, Compat)
	for i := range 256 {
		s.live(block(i, 5<<10))
	}
	for _, size := range []int{1, 2, 4, 16} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.SetBytes(int64(size) * 5 << 10)
			var r *Feed
			next := len(s.proofs)
			for b.Loop() {
				if next+size > len(s.proofs) {
					b.StopTimer()
					if r != nil {
						r.Close()
					}
					r = newReader(b, s.w)
					if _, err := r.VerifyBatch(s.proofs[:1]); err != nil {
						b.Fatal(err)
					}
					next = 1
					b.StartTimer()
				}
				if _, err := r.VerifyBatch(s.proofs[next : next+size]); err != nil {
					b.Fatal(err)
				}
				next += size
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/block")
		})
	}
}
