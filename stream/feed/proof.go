package feed

import "fmt"

// Request asks a feed for a block with its proof, an upgrade to a newer signed
// length, or both; the fields follow Hypercore's request message.
type Request struct {
	Fork     uint64
	Block    *BlockRequest
	Upgrade  *UpgradeRequest
	Manifest bool // ask for the manifest (a reader that knows only a manifest-mode key)
}

// BlockRequest asks for block Index; Nodes is how many tree levels above the
// leaf the reader lacks (Feed.MissingNodes), 0 when the block is past its length.
type BlockRequest struct {
	Index uint64
	Nodes uint64
}

// UpgradeRequest asks for the signed tree from length Start to Start+Length.
type UpgradeRequest struct {
	Start  uint64
	Length uint64
}

// Proof answers a Request: Hypercore's data message.
type Proof struct {
	Fork     uint64
	Block    *BlockProof
	Upgrade  *UpgradeProof
	Manifest []byte // the encoded manifest, when asked for
}

// BlockProof is a block and the sibling path from its leaf upward.
type BlockProof struct {
	Index uint64
	Value []byte
	Nodes []Node
}

// UpgradeProof carries what a reader at length Start needs to trust length
// Start+Length, plus AdditionalNodes up to the writer's newest signed length,
// which Signature covers.
type UpgradeProof struct {
	Start           uint64
	Length          uint64
	Nodes           []Node
	AdditionalNodes []Node
	Signature       []byte
}

// Limits of the proof and request encodings, checked before allocation.
const (
	// DefaultMaxBlockSize is the largest block a feed accepts unless configured.
	DefaultMaxBlockSize = 4 << 20
	maxProofNodes       = 64 // a path or root set never exceeds the tree's 64 levels
	maxSignatureSize    = 1024
	wireVersion         = 1
)

const (
	flagBlock    = 1
	flagUpgrade  = 2
	flagManifest = 4
)

// AppendBinary appends the request's encoding to b.
func (r *Request) AppendBinary(b []byte) ([]byte, error) {
	e := encoder{b: b}
	e.uint(wireVersion)
	var flags uint64
	if r.Block != nil {
		flags |= flagBlock
	}
	if r.Upgrade != nil {
		flags |= flagUpgrade
	}
	if r.Manifest {
		flags |= flagManifest
	}
	e.uint(flags)
	e.uint(r.Fork)
	if r.Block != nil {
		e.uint(r.Block.Index)
		e.uint(r.Block.Nodes)
	}
	if r.Upgrade != nil {
		e.uint(r.Upgrade.Start)
		e.uint(r.Upgrade.Length)
	}
	return e.b, nil
}

// DecodeRequest decodes a request, rejecting unknown versions and flags.
func DecodeRequest(b []byte) (*Request, error) {
	d := decoder{b: b}
	if v := d.uint(); d.err == nil && v != wireVersion {
		return nil, fmt.Errorf("feed: request version %d is not supported", v)
	}
	flags := d.uint()
	if d.err == nil && flags&^(flagBlock|flagUpgrade|flagManifest) != 0 {
		return nil, fmt.Errorf("feed: request has unknown flags %#x", flags)
	}
	r := &Request{Fork: d.uint(), Manifest: flags&flagManifest != 0}
	if flags&flagBlock != 0 {
		r.Block = &BlockRequest{Index: d.uint(), Nodes: d.uint()}
	}
	if flags&flagUpgrade != 0 {
		r.Upgrade = &UpgradeRequest{Start: d.uint(), Length: d.uint()}
	}
	if d.err != nil {
		return nil, fmt.Errorf("feed: request: %w", d.err)
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("feed: request has %d trailing bytes", len(b)-d.off)
	}
	return r, nil
}

func appendNodes(e *encoder, ns []Node) {
	e.uint(uint64(len(ns)))
	for _, n := range ns {
		e.node(n)
	}
}

// AppendBinary appends the proof's encoding to b.
func (p *Proof) AppendBinary(b []byte) ([]byte, error) {
	e := encoder{b: b}
	e.uint(wireVersion)
	var flags uint64
	if p.Block != nil {
		flags |= flagBlock
	}
	if p.Upgrade != nil {
		flags |= flagUpgrade
	}
	if p.Manifest != nil {
		flags |= flagManifest
	}
	e.uint(flags)
	e.uint(p.Fork)
	if p.Block != nil {
		e.uint(p.Block.Index)
		e.bytes(p.Block.Value)
		appendNodes(&e, p.Block.Nodes)
	}
	if u := p.Upgrade; u != nil {
		e.uint(u.Start)
		e.uint(u.Length)
		appendNodes(&e, u.Nodes)
		appendNodes(&e, u.AdditionalNodes)
		e.bytes(u.Signature)
	}
	if p.Manifest != nil {
		e.bytes(p.Manifest)
	}
	return e.b, nil
}

// MarshalBinary encodes the proof.
func (p *Proof) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// DecodeProof decodes a proof, refusing blocks over maxBlockSize (0 means the
// default) and node lists over the tree's height before allocating. The
// returned proof aliases b.
func DecodeProof(b []byte, maxBlockSize int) (*Proof, error) {
	if maxBlockSize <= 0 {
		maxBlockSize = DefaultMaxBlockSize
	}
	d := decoder{b: b}
	if v := d.uint(); d.err == nil && v != wireVersion {
		return nil, fmt.Errorf("feed: proof version %d is not supported", v)
	}
	flags := d.uint()
	if d.err == nil && flags&^(flagBlock|flagUpgrade|flagManifest) != 0 {
		return nil, fmt.Errorf("feed: proof has unknown flags %#x", flags)
	}
	p := &Proof{Fork: d.uint()}
	if flags&flagBlock != 0 {
		bp := &BlockProof{Index: d.uint()}
		bp.Value = d.bytes(maxBlockSize)
		if bp.Value == nil && d.err == nil {
			bp.Value = []byte{}
		}
		bp.Nodes = d.nodes(maxProofNodes)
		p.Block = bp
	}
	if flags&flagUpgrade != 0 {
		u := &UpgradeProof{Start: d.uint(), Length: d.uint()}
		u.Nodes = d.nodes(maxProofNodes)
		u.AdditionalNodes = d.nodes(maxProofNodes)
		u.Signature = d.bytes(maxSignatureSize)
		p.Upgrade = u
	}
	if flags&flagManifest != 0 {
		p.Manifest = d.bytes(maxManifestSize)
	}
	if d.err != nil {
		return nil, fmt.Errorf("feed: proof: %w", d.err)
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("feed: proof has %d trailing bytes", len(b)-d.off)
	}
	return p, nil
}
