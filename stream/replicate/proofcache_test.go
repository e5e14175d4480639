package replicate

import (
	"testing"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// fillCache looks up key i and, when the caller is to make it, fills it with size bytes.
func fillCache(c *proofCache, i uint64, size int) (made bool) {
	e, mine := c.lookup(reqKey{hasUpgrade: true, start: i, upLength: 1})
	if mine {
		e.enc = make([]byte, size)
		c.made(e)
		close(e.ready)
	}
	return mine
}

func TestProofCache(t *testing.T) {
	tests := []struct {
		name   string
		keys   int // distinct keys made first, in order
		size   int // bytes each
		again  []uint64
		remade []bool // whether each of again had to be made again
	}{
		// The live edge's shapes of the last appends (viewers a few blocks apart, early
		// pushes) stay: with four entries the fifth shape evicted the first.
		{"sixteen shapes all kept", 16, 1 << 10, []uint64{0, 5, 15}, []bool{false, false, false}},
		{"entries beyond the count evict the oldest", cacheEntries + 2, 1 << 10, []uint64{cacheEntries + 1, 2, 0}, []bool{false, false, true}},
		// 4 MiB blocks: the byte budget keeps the newest four.
		{"bytes beyond the budget evict the oldest", 6, 4 << 20, []uint64{5, 2, 1}, []bool{false, false, true}},
		// One entry larger than the budget is still shared while it is the newest.
		{"the newest stays however large", 2, cacheBytes + 1, []uint64{1, 0}, []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c proofCache
			for i := 0; i < tt.keys; i++ {
				if !fillCache(&c, uint64(i), tt.size) {
					t.Fatalf("key %d found before it was made", i)
				}
			}
			for j, k := range tt.again {
				if got := fillCache(&c, k, tt.size); got != tt.remade[j] {
					t.Errorf("key %d made again: %v, want %v", k, got, tt.remade[j])
				}
			}
			if c.n > cacheEntries || (c.bytes > cacheBytes && c.n > 1) {
				t.Errorf("cache holds %d entries, %d bytes", c.n, c.bytes)
			}
		})
	}
}

// A failed entry is made again by the next session; one evicted while being made is shared
// by the sessions already waiting for it, and its size is not counted.
func TestProofCacheDropAndEvictWhileMaking(t *testing.T) {
	var c proofCache
	k := reqKey{hasBlock: true, index: 7}
	e, mine := c.lookup(k)
	if !mine {
		t.Fatal("first lookup is not the maker")
	}
	e.err = feed.ErrInvalidProof
	c.drop(e)
	close(e.ready)
	if _, mine := c.lookup(k); !mine {
		t.Fatal("a failed entry was shared instead of made again")
	}
	var d proofCache
	slow, _ := d.lookup(reqKey{index: 1})
	waiter, mine := d.lookup(reqKey{index: 1})
	if mine || waiter != slow {
		t.Fatal("a second session did not wait for the first one's proof")
	}
	for i := 0; i < cacheEntries; i++ {
		fillCache(&d, uint64(100+i), 10)
	}
	slow.enc = make([]byte, 1<<20)
	d.made(slow) // evicted meanwhile: counts nothing
	close(slow.ready)
	if d.bytes != cacheEntries*10 || d.n != cacheEntries {
		t.Fatalf("cache counts %d bytes in %d entries, want %d in %d", d.bytes, d.n, cacheEntries*10, cacheEntries)
	}
}
