package replicate

import (
	"sync"

	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// proofCache shares encoded live proofs among sessions: after an append every viewer at the
// live edge needs the same block with the same upgrade, so it is made and encoded once. The
// first session to ask makes it; sessions asking meanwhile wait for that one (single flight)
// instead of making it again. It holds the last few (each holds a block; eviction is round
// robin). Only the seller's own live pushes (request id 0) use it: a viewer's requests carry
// ids from 1, so a viewer cannot put entries in it.
type proofCache struct {
	mu      sync.Mutex
	entries [4]*cachedProof
	next    int
}

type cachedProof struct {
	key   reqKey
	ready chan struct{} // closed once made (or failed)
	// Set before ready is closed, read only after.
	length uint64 // the signed length the proof's upgrade reaches
	enc    []byte // feed.Proof encoding (without the signature when early)
	block  *feed.BlockProof
	early  *feed.PendingProof // for early entries: hands out the signature once durable
	err    error
}

type reqKey struct {
	fork, index, nodes, start, upLength   uint64
	hasBlock, hasUpgrade, manifest, early bool
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
// its fields and closes ready); everyone else waits for ready.
func (c *proofCache) lookup(k reqKey) (*cachedProof, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e != nil && e.key == k {
			return e, false
		}
	}
	e := &cachedProof{key: k, ready: make(chan struct{})}
	c.entries[c.next%len(c.entries)] = e
	c.next++
	return e, true
}

// drop removes a failed entry so that the next lookup tries again.
func (c *proofCache) drop(e *cachedProof) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if c.entries[i] == e {
			c.entries[i] = nil
		}
	}
}
