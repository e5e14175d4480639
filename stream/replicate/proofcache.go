package replicate

import (
	"sync"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// proofCache shares encoded live proofs among sessions: after an append every viewer at the
// live edge needs the same block with the same upgrade, so it is made and encoded once. The
// first session to ask makes it; sessions asking meanwhile wait for that one (single flight)
// instead of making it again. Only the seller's own live pushes (request id 0) use it: a
// viewer's requests carry ids from 1, so a viewer cannot put entries in it.
//
// Viewers are not all at the same length when a block arrives: some are a block or a few
// behind, and each such length is its own proof (block vlen with the upgrade vlen→n, then
// the blocks after it with their paths), and an early push is one more. The cache holds the
// proofs of the last several appends (cacheEntries, and cacheBytes of encodings and blocks,
// oldest out first), so those few shapes are each made once, not once per viewer: with room
// for four, 400 viewers on loopback made 28 proofs an append and 265 an early one.
type proofCache struct {
	mu    sync.Mutex
	byKey map[reqKey]*cachedProof
	ring  [cacheEntries]*cachedProof // insertion order: ring[head] is the oldest
	head  int
	n     int
	bytes int // sizes of the entries in the ring
}

const (
	cacheEntries = 64
	cacheBytes   = 16 << 20 // what four of the largest blocks (4 MiB) held before
)

type cachedProof struct {
	key   reqKey
	ready chan struct{} // closed once made (or failed)
	size  int           // bytes it holds, set with the fields below (under proofCache.mu)
	// Set before ready is closed, read only after.
	length  uint64             // the signed length the proof's upgrade reaches
	proof   *feed.Proof        // without its upgrade's signature when pending is set
	pending *feed.PendingProof // a proof with an upgrade: hands out the signature once durable
	enc     []byte             // the encoding without the signature, for early data (made while not durable)
	block   *feed.BlockProof
	err     error
	// signed is the encoding with the signature, made once durable by the first session
	// to send it (proofCache.signed).
	signOnce sync.Once
	signed   []byte
	signErr  error
}

type reqKey struct {
	fork, index, nodes, start, upLength uint64
	hasBlock, hasUpgrade, manifest      bool
}

func keyOf(r feed.Request) reqKey {
	k := reqKey{fork: r.Fork, manifest: r.Manifest}
	if r.Block != nil {
		k.hasBlock, k.index, k.nodes = true, r.Block.Index, r.Block.Nodes
	}
	if r.Upgrade != nil {
		k.hasUpgrade, k.start, k.upLength = true, r.Upgrade.Start, r.Upgrade.Length
	}
	return k
}

// lookup returns the entry for k, and whether the caller is the one to make it (it then sets
// its fields, calls made and closes ready); everyone else waits for ready.
func (c *proofCache) lookup(k reqKey) (*cachedProof, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		return e, false
	}
	if c.byKey == nil {
		c.byKey = make(map[reqKey]*cachedProof, cacheEntries)
	}
	if c.n == cacheEntries {
		c.evictOldest()
	}
	e := &cachedProof{key: k, ready: make(chan struct{})}
	c.byKey[k] = e
	c.ring[(c.head+c.n)%cacheEntries] = e
	c.n++
	return e, true
}

// made records the size of an entry its maker has filled, and makes room for it by dropping
// the oldest entries beyond cacheBytes (never the newest: one large block still shares).
func (c *proofCache) made(e *cachedProof) {
	size := len(e.enc)
	if e.block != nil {
		size += len(e.block.Value)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey[e.key] != e {
		return // already evicted (or dropped): it holds nothing here
	}
	e.size = size
	c.bytes += size
	for c.bytes > cacheBytes && c.n > 1 {
		c.evictOldest()
	}
}

func (c *proofCache) evictOldest() {
	old := c.ring[c.head]
	c.ring[c.head] = nil
	c.head = (c.head + 1) % cacheEntries
	c.n--
	c.bytes -= old.size
	if c.byKey[old.key] == old {
		delete(c.byKey, old.key)
	}
}

// signed returns e's encoding with the upgrade's signature sig (once the disk has what it
// signs), made by the first session to send it and counted in the cache's bytes from then on.
func (c *proofCache) signed(e *cachedProof, sig []byte) ([]byte, error) {
	e.signOnce.Do(func() {
		e.signed, e.signErr = withSignature(e.proof, sig).AppendBinary(nil)
		if e.signErr == nil {
			c.grow(e, len(e.signed))
		}
	})
	return e.signed, e.signErr
}

// grow counts n more bytes held by an entry already made, and makes room for them as made
// does.
func (c *proofCache) grow(e *cachedProof, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey[e.key] != e {
		return // evicted or dropped: it holds nothing here
	}
	e.size += n
	c.bytes += n
	for c.bytes > cacheBytes && c.n > 1 {
		c.evictOldest()
	}
}

// withSignature is p with sig in its upgrade: a copy, since p may be shared.
func withSignature(p *feed.Proof, sig []byte) *feed.Proof {
	if p.Upgrade == nil || sig == nil {
		return p
	}
	q, u := *p, *p.Upgrade
	u.Signature = sig
	q.Upgrade = &u
	return &q
}

// drop removes a failed entry so that the next lookup tries again. Its ring slot stays until
// its turn to go; the map no longer finds it.
func (c *proofCache) drop(e *cachedProof) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey[e.key] == e {
		delete(c.byKey, e.key)
	}
}
