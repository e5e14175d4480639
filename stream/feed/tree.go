package feed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
)

// nodeSet holds tree nodes by flat-tree index in pages of 1024. Without a
// backing file it is all in memory (proof tests, benchmarks). With one (the
// feed's tree file) it is a cache: pages are read from the file on first use
// and clean pages beyond maxPages are dropped, so memory does not grow with
// the feed; pages holding nodes not yet checkpointed stay until markClean.
type nodeSet struct {
	pages    map[uint64]*nodePage
	file     io.ReaderAt
	maxPages int
	clock    uint64
	last     *nodePage // the page used last: most lookups land next to the previous one
	lastN    uint64
	buf      []byte
	err      error // first read error from the backing file
}

const (
	nodePageBits   = 10
	nodePageSize   = 1 << nodePageBits
	defaultMaxPage = 64 // 64 pages of 1024 nodes: about 3 MiB
)

type nodeSlot struct {
	size uint64
	hash [32]byte
	ok   bool
}

type nodePage struct {
	slots [nodePageSize]nodeSlot
	dirty bool
	used  uint64
}

func (s *nodeSet) page(i uint64, create bool) *nodePage {
	n := i >> nodePageBits
	s.clock++
	if s.last != nil && s.lastN == n {
		s.last.used = s.clock
		return s.last
	}
	if p := s.pages[n]; p != nil {
		p.used = s.clock
		s.last, s.lastN = p, n
		return p
	}
	var p *nodePage
	if s.file != nil {
		p = s.load(n)
	}
	if p == nil {
		if !create {
			return nil
		}
		p = new(nodePage)
	}
	if s.pages == nil {
		s.pages = map[uint64]*nodePage{}
	}
	p.used = s.clock
	s.pages[n] = p
	s.evict()
	s.last, s.lastN = p, n
	return p
}

// load reads page n from the backing file; nil when the file holds none of it.
func (s *nodeSet) load(n uint64) *nodePage {
	if s.buf == nil {
		s.buf = make([]byte, nodePageSize*nodeRecordSize)
	}
	got, err := s.file.ReadAt(s.buf, int64(n)*nodePageSize*nodeRecordSize)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	var p *nodePage
	for j := 0; j+nodeRecordSize <= got; j += nodeRecordSize {
		rec := s.buf[j : j+nodeRecordSize]
		size := binary.LittleEndian.Uint64(rec)
		var h [32]byte
		copy(h[:], rec[8:])
		if size == 0 && h == ([32]byte{}) {
			continue
		}
		if p == nil {
			p = new(nodePage)
		}
		p.slots[j/nodeRecordSize] = nodeSlot{size: size, hash: h, ok: true}
	}
	if p == nil && got > 0 {
		p = new(nodePage) // an empty page: remember it to avoid reading it again
	}
	return p
}

// evict drops the least recently used clean page while over the bound.
func (s *nodeSet) evict() {
	if s.file == nil || s.maxPages <= 0 || len(s.pages) <= s.maxPages {
		return
	}
	var victim uint64
	var oldest uint64 = 1<<64 - 1
	for n, p := range s.pages {
		if !p.dirty && p.used < oldest {
			victim, oldest = n, p.used
		}
	}
	if oldest != 1<<64-1 {
		if s.pages[victim] == s.last {
			s.last = nil
		}
		delete(s.pages, victim)
	}
}

// markClean is called once every node in memory is in the backing file.
func (s *nodeSet) markClean() {
	for _, p := range s.pages {
		p.dirty = false
	}
	for len(s.pages) > s.maxPages && s.maxPages > 0 {
		before := len(s.pages)
		s.evict()
		if len(s.pages) == before {
			break
		}
	}
}

func (s *nodeSet) get(i uint64) (Node, bool) {
	p := s.page(i, false)
	if p == nil {
		return Node{}, false
	}
	sl := &p.slots[i&(nodePageSize-1)]
	if !sl.ok {
		return Node{}, false
	}
	return Node{Index: i, Size: sl.size, Hash: sl.hash}, true
}

func (s *nodeSet) has(i uint64) bool {
	_, ok := s.get(i)
	return ok
}

func (s *nodeSet) put(n Node) {
	p := s.page(n.Index, true)
	p.slots[n.Index&(nodePageSize-1)] = nodeSlot{size: n.Size, hash: n.Hash, ok: true}
	if s.file != nil {
		p.dirty = true
	}
}

// tree is the Merkle tree state of a feed: its nodes, its roots (peaks) and
// its newest signed head. It does no I/O and no locking.
type tree struct {
	nodes      nodeSet
	roots      []Node
	length     uint64
	byteLength uint64
	fork       uint64
	signature  []byte
}

// appendLeaves adds blocks' leaves and the parents they complete, returning
// the new nodes (leaves and parents, in creation order) in out.
func (t *tree) appendLeaves(out []Node, leaves []Node) []Node {
	for _, n := range leaves {
		t.length++
		t.byteLength += n.Size
		out = append(out, n)
		t.roots = append(t.roots, n)
		for len(t.roots) > 1 {
			a, b := t.roots[len(t.roots)-2], t.roots[len(t.roots)-1]
			if flattree.Sibling(b.Index) != a.Index {
				break
			}
			p := ParentNode(a, b)
			out = append(out, p)
			t.roots = append(t.roots[:len(t.roots)-2], p)
		}
	}
	return out
}

func (t *tree) hash() [32]byte { return TreeHash(t.roots) }

// rootsFor returns the roots of the tree at an earlier length, from stored nodes.
func (t *tree) rootsFor(length uint64) ([]Node, error) {
	var idx [64]uint64
	var out []Node
	for _, i := range flattree.FullRoots(idx[:0], length) {
		n, ok := t.nodes.get(i)
		if !ok {
			return nil, fmt.Errorf("feed: node %d of length %d is not stored", i, length)
		}
		out = append(out, n)
	}
	return out, nil
}

// missingNodes counts how many levels above block i's leaf the local tree
// lacks before reaching a stored node (Hypercore's missingNodes): what a
// request for block i asks the peer to include.
func (t *tree) missingNodes(i uint64) uint64 {
	head := 2 * t.length
	it := flattree.NewIterator(2 * i)
	var n uint64
	for !it.Contains(head) && !t.nodes.has(it.Index) {
		n++
		it.Parent()
	}
	return n
}

// maxLength bounds feed lengths: 2^32 blocks, over four years of a stream appending 30 blocks a
// second. A proof is checked against it before anything is stored, so a peer holding the key
// cannot sign a tree of absurd length and make a reader index its storage there: the tree file's
// offsets stay below 2^33 nodes × 40 bytes and the blocks file's below 2^32 × 16 (sparse files),
// the stored-blocks bitset's page table below 2^16 entries, and no flat-tree arithmetic can
// overflow on a peer's numbers.
const maxLength = 1 << 32

// ErrFull is returned by Append when the feed would pass maxLength blocks.
var ErrFull = errors.New("the feed holds as many blocks as a feed can")

// Errors wrapped by proof generation and verification.
var (
	ErrInvalidRequest = errors.New("invalid request")
	ErrInvalidProof   = errors.New("invalid proof")
	ErrNotAvailable   = errors.New("not available")
)

// proofBuilder collects the nodes of a proof in Hypercore's order.
type proofBuilder struct {
	t          *tree
	block      []Node
	blockSet   bool
	upgrade    []Node
	upgradeSet bool
	additional []Node
	err        error
}

func (p *proofBuilder) get(i uint64) Node {
	n, ok := p.t.nodes.get(i)
	if !ok && p.err == nil {
		p.err = fmt.Errorf("feed: %w: node %d is not stored here", ErrNotAvailable, i)
	}
	return n
}

// blockPath adds the nodes from block index up to (not including) root.
func (p *proofBuilder) blockPath(index, root uint64) {
	it := flattree.NewIterator(2 * index)
	p.blockSet = true
	if p.block == nil {
		// The path to root has one node a level; the upgrade may add a few.
		p.block = make([]Node, 0, int(flattree.Depth(root))+2)
	}
	for it.Index != root {
		it.Sibling()
		p.block = append(p.block, p.get(it.Index))
		it.Parent()
	}
}

// proof builds the proof that answers req, following Hypercore's
// MerkleTree.proof node for node.
func (t *tree) proof(req Request) (*Proof, error) {
	head := 2 * t.length
	var from, to uint64 = 0, head
	if u := req.Upgrade; u != nil {
		if u.Length == 0 || u.Start > t.length || u.Length > t.length-u.Start {
			return nil, fmt.Errorf("feed: %w: upgrade %d+%d does not fit length %d", ErrInvalidRequest, u.Start, u.Length, t.length)
		}
		from = 2 * u.Start
		to = from + 2*u.Length
	}
	if req.Block != nil && req.Block.Nodes > 64 {
		return nil, fmt.Errorf("feed: %w: %d nodes asked for block %d", ErrInvalidRequest, req.Block.Nodes, req.Block.Index)
	}
	if req.Block != nil && req.Block.Index >= t.length {
		return nil, fmt.Errorf("feed: %w: block %d is past length %d", ErrInvalidRequest, req.Block.Index, t.length)
	}
	if req.Block != nil && 2*req.Block.Index >= to {
		return nil, fmt.Errorf("feed: %w: block %d is past the upgrade's length %d", ErrInvalidRequest, req.Block.Index, to/2)
	}
	p := &proofBuilder{t: t}
	subTree := head
	if req.Block != nil && (req.Upgrade == nil || req.Block.Index < req.Upgrade.Start) {
		it := flattree.NewIterator(2 * req.Block.Index)
		for i := uint64(0); i < req.Block.Nodes; i++ {
			it.Parent()
			if it.Contains(to) {
				return nil, fmt.Errorf("feed: %w: %d nodes for block %d reach past the tree", ErrInvalidRequest, req.Block.Nodes, req.Block.Index)
			}
		}
		subTree = it.Index
		p.blockPath(req.Block.Index, subTree)
	} else if req.Block != nil && req.Upgrade != nil {
		subTree = 2 * req.Block.Index
	}
	if req.Upgrade != nil {
		p.upgradeProof(req.Block, from, to, subTree)
		if head > to {
			p.additionalProof(to, head)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	// One allocation for the proof and its parts.
	all := &struct {
		p Proof
		b BlockProof
		u UpgradeProof
	}{}
	out := &all.p
	out.Fork = t.fork
	if req.Block != nil {
		all.b = BlockProof{Index: req.Block.Index, Nodes: p.block}
		out.Block = &all.b
	}
	if req.Upgrade != nil {
		out.Upgrade = &all.u
		all.u = UpgradeProof{
			Start:           req.Upgrade.Start,
			Length:          req.Upgrade.Length,
			Nodes:           p.upgrade,
			AdditionalNodes: p.additional,
			Signature:       t.signature,
		}
	}
	return out, nil
}

func (p *proofBuilder) upgradeProof(block *BlockRequest, from, to, subTree uint64) {
	p.upgradeSet = from == 0
	for it := flattree.NewIterator(0); it.FullRoot(to); it.NextTree() {
		// The reader already has this subtree.
		if it.Index+it.Factor/2 < from {
			continue
		}
		// Connect the reader's existing tree to this root.
		if !p.upgradeSet && it.Contains(from-2) {
			p.upgradeSet = true
			root, target := it.Index, from-2
			it.Seek(target)
			for it.Index != root {
				it.Sibling()
				if it.Index > target {
					if !p.blockSet && block != nil && it.Contains(subTree) {
						p.blockPath(block.Index, it.Index)
					} else {
						p.upgrade = append(p.upgrade, p.get(it.Index))
					}
				}
				it.Parent()
			}
			continue
		}
		p.upgradeSet = true
		// The block's path replaces this root instead of repeating it.
		if !p.blockSet && block != nil && it.Contains(subTree) {
			p.blockPath(block.Index, it.Index)
			continue
		}
		p.upgrade = append(p.upgrade, p.get(it.Index))
	}
}

func (p *proofBuilder) additionalProof(from, to uint64) {
	set := from == 0
	for it := flattree.NewIterator(0); it.FullRoot(to); it.NextTree() {
		if it.Index+it.Factor/2 < from {
			continue
		}
		if !set && it.Contains(from-2) {
			set = true
			root, target := it.Index, from-2
			it.Seek(target)
			for it.Index != root {
				it.Sibling()
				if it.Index > target {
					p.additional = append(p.additional, p.get(it.Index))
				}
				it.Parent()
			}
			continue
		}
		set = true
		p.additional = append(p.additional, p.get(it.Index))
	}
}

// verified is what checking a proof established, ready to be stored.
type verified struct {
	nodes      []Node // every node the proof proved, to store
	block      *BlockProof
	upgraded   bool
	roots      []Node
	length     uint64
	byteLength uint64
	fork       uint64
	signature  []byte
}

// nodeQueue hands out a proof's nodes in the order the verifier asks for them,
// plus one extra node (the block's subtree root) wherever it is asked for.
type nodeQueue struct {
	nodes []Node
	i     int
	extra *Node
	err   error
}

func (q *nodeQueue) left() int {
	n := len(q.nodes) - q.i
	if q.extra != nil {
		n++
	}
	return n
}

func (q *nodeQueue) shift(index uint64) Node {
	if q.extra != nil && q.extra.Index == index {
		n := *q.extra
		q.extra = nil
		return n
	}
	if q.i >= len(q.nodes) {
		if q.err == nil {
			q.err = fmt.Errorf("feed: %w: expected node %d, got none", ErrInvalidProof, index)
		}
		return Node{Index: index}
	}
	n := q.nodes[q.i]
	q.i++
	if n.Index != index && q.err == nil {
		q.err = fmt.Errorf("feed: %w: expected node %d, got node %d", ErrInvalidProof, index, n.Index)
	}
	return n
}

// verifyBlock hashes a block up its path and returns the untrusted subtree root.
func verifyBlock(b *BlockProof, out *verified) (*Node, error) {
	if b == nil {
		return nil, nil
	}
	if b.Index >= maxLength {
		return nil, fmt.Errorf("feed: %w: block index %d is past any tree", ErrInvalidProof, b.Index)
	}
	it := flattree.NewIterator(2 * b.Index)
	q := nodeQueue{nodes: b.Nodes}
	root := LeafNode(b.Index, b.Value)
	if out.nodes == nil {
		out.nodes = make([]Node, 0, 2*len(b.Nodes)+3)
	}
	out.nodes = append(out.nodes, root)
	for q.left() > 0 {
		n := q.shift(it.Sibling())
		if q.err != nil {
			return nil, q.err
		}
		root = parentAt(it.Parent(), root, n)
		out.nodes = append(out.nodes, n, root)
	}
	return &root, nil
}

// parentAt joins two nodes whose parent is index (checked by the caller's walk).
func parentAt(index uint64, a, b Node) Node {
	if a.Index > b.Index {
		a, b = b, a
	}
	size, h := hashParent(a, b)
	return Node{Index: index, Size: size, Hash: h}
}

// upgradeBatch grows a copy of the reader's roots with an upgrade proof.
type upgradeBatch struct {
	roots      []Node
	length     uint64
	byteLength uint64
	nodes      *[]Node
}

func (b *upgradeBatch) appendRoot(n Node, it *flattree.Iterator) {
	b.length += it.Factor / 2
	b.byteLength += n.Size
	b.roots = append(b.roots, n)
	*b.nodes = append(*b.nodes, n)
	for len(b.roots) > 1 {
		x := b.roots[len(b.roots)-1]
		y := b.roots[len(b.roots)-2]
		if it.Sibling() != y.Index {
			it.Sibling() // step back onto the newest root
			break
		}
		p := parentAt(it.Parent(), x, y)
		*b.nodes = append(*b.nodes, p)
		b.roots = append(b.roots[:len(b.roots)-2], p)
	}
}

// verifyUpgrade rebuilds the roots of the upgraded tree. It reports whether
// the block's subtree root was used (and so is covered by the signature).
func verifyUpgrade(u *UpgradeProof, blockRoot *Node, b *upgradeBatch) (bool, error) {
	q := nodeQueue{nodes: u.Nodes, extra: blockRoot}
	grow := len(b.roots) > 0
	i := 0
	to := 2 * (u.Start + u.Length)
	it := flattree.NewIterator(0)
	for ; it.FullRoot(to); it.NextTree() {
		if i < len(b.roots) && b.roots[i].Index == it.Index {
			i++
			continue
		}
		if grow {
			grow = false
			root := it.Index
			if i < len(b.roots) {
				it.Seek(b.roots[len(b.roots)-1].Index)
				for it.Index != root {
					n := q.shift(it.Sibling())
					if q.err != nil {
						return false, q.err
					}
					b.appendRoot(n, it)
				}
				continue
			}
		}
		n := q.shift(it.Index)
		if q.err != nil {
			return false, q.err
		}
		b.appendRoot(n, it)
	}
	// Nodes the walk did not ask for (a proof made for a reader at an older
	// length) are ignored and not stored, as Hypercore does.
	if b.length > maxLength {
		return false, fmt.Errorf("feed: %w: upgrade reaches length %d", ErrInvalidProof, b.length)
	}
	if len(b.roots) == 0 {
		return false, fmt.Errorf("feed: %w: upgrade gives an empty tree", ErrInvalidProof)
	}
	extra := u.AdditionalNodes
	for _, n := range extra {
		if n.Index >= 2*maxLength {
			return false, fmt.Errorf("feed: %w: additional node %d is past any tree", ErrInvalidProof, n.Index)
		}
	}
	it.Seek(b.roots[len(b.roots)-1].Index)
	i = 0
	for i < len(extra) && extra[i].Index == it.Sibling() {
		b.appendRoot(extra[i], it)
		i++
	}
	for i < len(extra) {
		n := extra[i]
		i++
		for n.Index != it.Index {
			if it.Factor <= 2 {
				return false, fmt.Errorf("feed: %w: unexpected additional node %d", ErrInvalidProof, n.Index)
			}
			it.LeftChild()
		}
		b.appendRoot(n, it)
		if b.length > maxLength || it.Factor == 0 {
			return false, fmt.Errorf("feed: %w: additional nodes reach length %d", ErrInvalidProof, b.length)
		}
		it.Sibling()
	}
	if b.length > maxLength {
		return false, fmt.Errorf("feed: %w: upgrade reaches length %d", ErrInvalidProof, b.length)
	}
	return q.extra == nil, nil
}

// verify checks a proof against the tree and the verifier without changing
// anything; the caller stores what it returns.
func (t *tree) verify(p *Proof, v *verifier) (*verified, error) {
	return t.verifyAt(&treeView{fork: t.fork, length: t.length, byteLength: t.byteLength, roots: t.roots}, p, v, true)
}

// treeView is the head a proof is checked against: the tree's own or, inside a
// batch (Feed.VerifyBatch), the head the batch's earlier proofs reached, with the
// nodes they proved.
type treeView struct {
	fork, length, byteLength uint64
	roots                    []Node
	pending                  map[uint64]Node
}

// trusted is node i if this view holds it.
func (t *tree) trusted(view *treeView, i uint64) (Node, bool) {
	if n, ok := view.pending[i]; ok {
		return n, true
	}
	return t.nodes.get(i)
}

// verifyAt is verify against view. With checkSig false an upgrade's signature is
// not checked: the caller checks a later one whose tree is built from this one's
// roots (so it commits to everything this proof proves) before it stores anything.
func (t *tree) verifyAt(view *treeView, p *Proof, v *verifier, checkSig bool) (*verified, error) {
	out := &verified{block: p.Block, fork: view.fork, length: view.length, byteLength: view.byteLength, roots: view.roots}
	if p.Block == nil && p.Upgrade == nil {
		return nil, fmt.Errorf("feed: %w: it carries neither a block nor an upgrade", ErrInvalidProof)
	}
	if p.Fork != view.fork && !(view.length == 0 && p.Upgrade != nil) {
		return nil, fmt.Errorf("feed: %w: proof is for fork %d but the feed is at fork %d", ErrInvalidProof, p.Fork, view.fork)
	}
	root, err := verifyBlock(p.Block, out)
	if err != nil {
		return nil, err
	}
	if u := p.Upgrade; u != nil {
		// Like Hypercore, the upgrade is walked from the roots this feed
		// trusts, whatever Start says: nodes meant for another starting point
		// do not fit the walk and are refused, and the result must carry the
		// key's signature either way.
		if u.Length == 0 || u.Start+u.Length < u.Start || u.Start+u.Length > maxLength {
			return nil, fmt.Errorf("feed: %w: upgrade length %d", ErrInvalidProof, u.Length)
		}
		b := &upgradeBatch{roots: append([]Node(nil), view.roots...), length: view.length, byteLength: view.byteLength, nodes: &out.nodes}
		used, err := verifyUpgrade(u, root, b)
		if err != nil {
			return nil, err
		}
		if checkSig {
			if err := v.verify(TreeHash(b.roots), b.length, p.Fork, u.Signature); err != nil {
				return nil, err
			}
		}
		if used {
			root = nil
		}
		// The walk only adds to the trusted roots, so the result is never
		// shorter; the same length is a valid no-op (Hypercore accepts it).
		if b.length > view.length || p.Fork != view.fork {
			out.upgraded = true
			out.roots, out.length, out.byteLength, out.fork = b.roots, b.length, b.byteLength, p.Fork
			out.signature = u.Signature
		}
	}
	if root != nil {
		trusted, ok := t.trusted(view, root.Index)
		if !ok {
			// The block's path does not reach a node we trust.
			return nil, fmt.Errorf("feed: %w: block %d's path ends at node %d, which is not verified here (ask with more nodes or an upgrade)", ErrInvalidProof, p.Block.Index, root.Index)
		}
		if trusted.Hash != root.Hash || trusted.Size != root.Size {
			return nil, fmt.Errorf("feed: %w: block %d does not hash to the verified node %d", ErrInvalidProof, p.Block.Index, root.Index)
		}
	}
	if out.block != nil && out.block.Index >= out.length {
		return nil, fmt.Errorf("feed: %w: block %d is past length %d", ErrInvalidProof, out.block.Index, out.length)
	}
	return out, nil
}
