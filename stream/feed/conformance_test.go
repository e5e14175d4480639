package feed

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
	"golang.org/x/crypto/blake2b"
)

// The conformance test reads every *.json file of the Hypercore test vector
// schema in $HYPERCORE_VECTORS_DIR (default ../shared/testdata/hypercore beside
// the repository) and in testdata/hypercore, and recomputes or verifies every
// value in them. Nothing of those files is known to the code under test.

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == nil {
		*h = nil
		return nil
	}
	v, err := hex.DecodeString(*s)
	*h = v
	return err
}

type vNode struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Hash  hexBytes `json:"hash"`
}

func (n vNode) node() Node {
	var out Node
	out.Index, out.Size = n.Index, n.Size
	copy(out.Hash[:], n.Hash)
	return out
}

// readerCheck is the reader's state after a step: lengthAfter and hasBlockN flags.
type readerCheck struct {
	LengthAfter *uint64
	Has         map[string]bool
}

func (r *readerCheck) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	r.Has = map[string]bool{}
	for k, v := range m {
		switch {
		case k == "lengthAfter":
			var n uint64
			if err := json.Unmarshal(v, &n); err == nil {
				r.LengthAfter = &n
			}
		case strings.HasPrefix(k, "hasBlock"):
			var h bool
			if err := json.Unmarshal(v, &h); err == nil {
				r.Has[k] = h
			}
		}
	}
	return nil
}

type vProof struct {
	ReaderState  string `json:"readerState"`
	Name         string `json:"name"`
	WriterLength uint64 `json:"writerLength"`
	Request      struct {
		Block *struct {
			Index uint64 `json:"index"`
			Nodes uint64 `json:"nodes"`
		} `json:"block"`
		Upgrade *struct {
			Start  uint64 `json:"start"`
			Length uint64 `json:"length"`
		} `json:"upgrade"`
	} `json:"request"`
	Proof struct {
		Fork  uint64 `json:"fork"`
		Block *struct {
			Index uint64   `json:"index"`
			Value hexBytes `json:"value"`
			Nodes []vNode  `json:"nodes"`
		} `json:"block"`
		Upgrade *struct {
			Start           uint64   `json:"start"`
			Length          uint64   `json:"length"`
			Nodes           []vNode  `json:"nodes"`
			AdditionalNodes []vNode  `json:"additionalNodes"`
			Signature       hexBytes `json:"signature"`
		} `json:"upgrade"`
	} `json:"proof"`
	VerifiedByHypercore any          `json:"verifiedByHypercore"`
	ReaderCheck         *readerCheck `json:"readerCheck"`
}

type vectorFile struct {
	Seed    hexBytes `json:"seed"`
	KeyPair struct {
		PublicKey hexBytes `json:"publicKey"`
		SecretKey hexBytes `json:"secretKey"`
	} `json:"keyPair"`
	Namespaces map[string]hexBytes `json:"namespaces"`
	Manifest   struct {
		Encoded hexBytes `json:"encoded"`
		Hash    hexBytes `json:"hash"`
	} `json:"manifest"`
	Keys struct {
		ManifestMode struct {
			Key          hexBytes `json:"key"`
			DiscoveryKey hexBytes `json:"discoveryKey"`
			CapInit      hexBytes `json:"replicateCapabilityInitiator_handshakeAA"`
			CapResp      hexBytes `json:"replicateCapabilityResponder_handshakeAA"`
		} `json:"manifestMode"`
		CompatMode struct {
			Key          hexBytes `json:"key"`
			DiscoveryKey hexBytes `json:"discoveryKey"`
		} `json:"compatMode"`
	} `json:"keys"`
	Blocks []struct {
		Index   uint64   `json:"index"`
		Size    int      `json:"size"`
		Hex     hexBytes `json:"hex"`
		Blake2b hexBytes `json:"blake2b256"`
	} `json:"blocks"`
	LeafHashes []vNode `json:"leafHashes"`
	TreeNodes  []vNode `json:"treeNodes"`
	Lengths    []struct {
		Length       uint64   `json:"length"`
		Fork         uint64   `json:"fork"`
		ByteLength   uint64   `json:"byteLength"`
		Roots        []vNode  `json:"roots"`
		TreeHash     hexBytes `json:"treeHash"`
		ManifestMode struct {
			Signable         hexBytes `json:"signable"`
			SignatureEd25519 hexBytes `json:"signatureEd25519"`
			SignatureEncoded hexBytes `json:"signatureEncoded"`
			Verifies         bool     `json:"verifies"`
		} `json:"manifestMode"`
		CompatMode struct {
			Signable  hexBytes `json:"signable"`
			Signature hexBytes `json:"signature"`
			Verifies  bool     `json:"verifies"`
		} `json:"compatMode"`
	} `json:"lengths"`
	Proofs []vProof `json:"proofs"`
	V10    *struct {
		Key        hexBytes   `json:"key"`
		TreeHash   hexBytes   `json:"treeHash"`
		Signatures []hexBytes `json:"signatures"`
	} `json:"v10"`
}

// sharedVectorDir is the directory of shared vectors: $HYPERCORE_VECTORS_DIR, or
// ../shared/testdata/hypercore beside the repository.
func sharedVectorDir() string {
	if dir := os.Getenv("HYPERCORE_VECTORS_DIR"); dir != "" {
		return dir
	}
	if root, err := repoRoot(); err == nil {
		return filepath.Join(root, "..", "shared", "testdata", "hypercore")
	}
	return ""
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

type checker struct {
	t      *testing.T
	file   string
	checks int
}

func (c *checker) eq(what string, got, want []byte) {
	c.t.Helper()
	c.checks++
	if !bytes.Equal(got, want) {
		c.t.Errorf("%s: %s:\n got %x\nwant %x", c.file, what, got, want)
	}
}

func (c *checker) ok(what string, cond bool) {
	c.t.Helper()
	c.checks++
	if !cond {
		c.t.Errorf("%s: %s", c.file, what)
	}
}

func (c *checker) noErr(what string, err error) {
	c.t.Helper()
	c.checks++
	if err != nil {
		c.t.Errorf("%s: %s: %v", c.file, what, err)
	}
}

func nodesEqual(c *checker, what string, got []Node, want []vNode) {
	c.t.Helper()
	c.checks++
	if len(got) != len(want) {
		c.t.Errorf("%s: %s: %d nodes, want %d (%v vs %v)", c.file, what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		if got[i] != want[i].node() {
			c.t.Errorf("%s: %s: node %d is %d/%d/%x, want %d/%d/%x", c.file, what, i, got[i].Index, got[i].Size, got[i].Hash, want[i].Index, want[i].Size, want[i].Hash)
		}
	}
}

// vectorFiles lists dir's *.json files. A directory that is missing, unreadable or holds
// none is an error.
func vectorFiles(dir string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("no directory (HYPERCORE_VECTORS_DIR is not set and no go.mod was found)")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no *.json vector file", dir)
	}
	sort.Strings(files)
	return files, nil
}

// checkVectorFile checks one file; a file that is not of the vectors schema fails.
func checkVectorFile(t *testing.T, f string) {
	t.Helper()
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Errorf("%s: %v", f, err)
		return
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Errorf("%s: not a vectors file: %v", f, err)
		return
	}
	if len(v.Seed) == 0 || len(v.Lengths) == 0 || len(v.Blocks) == 0 {
		t.Errorf("%s: not of the vectors schema (no seed, lengths or blocks)", f)
		return
	}
	c := &checker{t: t, file: f}
	checkVectors(c, &v)
	t.Logf("%s: %d checks", f, c.checks)
}

// TestConformance checks the committed vectors (testdata/hypercore) and the shared ones.
// With DV_REQUIRE_VECTORS set (make test), the shared directory must exist, be readable and
// hold at least one file, and every file there must be of the schema: the committed files
// do not stand in for them.
func TestConformance(t *testing.T) {
	committed, err := vectorFiles(filepath.Join("testdata", "hypercore"))
	if err != nil {
		t.Fatalf("committed vectors: %v", err)
	}
	for _, f := range committed {
		checkVectorFile(t, f)
	}
	dir := sharedVectorDir()
	shared, err := vectorFiles(dir)
	if err != nil {
		if os.Getenv("DV_REQUIRE_VECTORS") != "" {
			t.Fatalf("shared vectors: %v (DV_REQUIRE_VECTORS is set: make test needs them)", err)
		}
		t.Logf("shared vectors not checked: %v (set DV_REQUIRE_VECTORS=1 to require them)", err)
		return
	}
	for _, f := range shared {
		checkVectorFile(t, f)
	}
}

func checkVectors(c *checker, v *vectorFile) {
	// Namespaces.
	name := NameHash()
	c.eq("H(hypercore)", name[:], v.Namespaces["hypercoreNameHash"])
	for i, n := range []string{"TREE", "REPLICATE_INITIATOR", "REPLICATE_RESPONDER", "MANIFEST", "DEFAULT_NAMESPACE", "DEFAULT_ENCRYPTION"} {
		ns := Namespace(i)
		c.eq("namespace "+n, ns[:], v.Namespaces[n])
	}
	// Keys.
	kp, err := KeyPairFromSeed(v.Seed)
	c.noErr("key pair from seed", err)
	if err != nil {
		return
	}
	c.eq("public key", kp.Public, v.KeyPair.PublicKey)
	c.eq("secret key", kp.Secret, v.KeyPair.SecretKey)
	m := DefaultManifest(kp.Public)
	c.eq("manifest encoding", m.Encode(), v.Manifest.Encoded)
	dm, err := DecodeManifest(v.Manifest.Encoded)
	c.noErr("manifest decodes", err)
	c.eq("manifest re-encoding", dm.Encode(), v.Manifest.Encoded)
	mh := m.Hash()
	c.eq("manifest hash", mh[:], v.Manifest.Hash)
	c.eq("manifest-mode key", mh[:], v.Keys.ManifestMode.Key)
	dk := DiscoveryKey(mh)
	c.eq("manifest-mode discovery key", dk[:], v.Keys.ManifestMode.DiscoveryKey)
	aa := bytes.Repeat([]byte{0xaa}, 32)
	capI := ReplicationCapability(aa, true, mh)
	capR := ReplicationCapability(aa, false, mh)
	c.eq("initiator capability", capI[:], v.Keys.ManifestMode.CapInit)
	c.eq("responder capability", capR[:], v.Keys.ManifestMode.CapResp)
	var pk [32]byte
	copy(pk[:], kp.Public)
	c.eq("compat key", pk[:], v.Keys.CompatMode.Key)
	dkc := DiscoveryKey(pk)
	c.eq("compat discovery key", dkc[:], v.Keys.CompatMode.DiscoveryKey)

	// Blocks and leaves.
	blocks := make([][]byte, len(v.Blocks))
	for i, b := range v.Blocks {
		blocks[i] = b.Hex
		if blocks[i] == nil {
			blocks[i] = []byte{}
		}
		c.ok(fmt.Sprintf("block %d size", i), len(b.Hex) == b.Size && b.Index == uint64(i))
		h := blake2b.Sum256(b.Hex)
		c.eq(fmt.Sprintf("block %d plain hash", i), h[:], b.Blake2b)
	}
	for _, l := range v.LeafHashes {
		if l.Index/2 >= uint64(len(blocks)) {
			c.ok(fmt.Sprintf("leaf %d names a block that exists", l.Index), false)
			continue
		}
		n := LeafNode(l.Index/2, blocks[l.Index/2])
		c.ok(fmt.Sprintf("leaf %d", l.Index), n == l.node())
	}

	// Every length: roots, tree hash, byte length, both signatures.
	ms, _ := newSigner(kp, Manifest)
	cs, _ := newSigner(kp, Compat)
	var tr tree
	for i, l := range v.Lengths {
		for tr.length < l.Length && tr.length < uint64(len(blocks)) {
			for _, n := range tr.appendLeaves(nil, []Node{LeafNode(tr.length, blocks[tr.length])}) {
				tr.nodes.put(n)
			}
		}
		what := fmt.Sprintf("length %d", l.Length)
		c.ok(what+" reached", tr.length == l.Length && l.Fork == 0)
		nodesEqual(c, what+" roots", tr.roots, l.Roots)
		th := tr.hash()
		c.eq(what+" tree hash", th[:], l.TreeHash)
		c.ok(what+" byte length", tr.byteLength == l.ByteLength)
		c.eq(what+" manifest signable", ms.signable(th, l.Length, l.Fork), l.ManifestMode.Signable)
		c.eq(what+" compat signable", cs.signable(th, l.Length, l.Fork), l.CompatMode.Signable)
		msig := ms.sign(th, l.Length, l.Fork)
		c.eq(what+" manifest signature envelope", msig, l.ManifestMode.SignatureEncoded)
		c.eq(what+" manifest raw signature", msig[2:min(66, len(msig))], l.ManifestMode.SignatureEd25519)
		c.eq(what+" compat signature", cs.sign(th, l.Length, l.Fork), l.CompatMode.Signature)
		c.noErr(what+" manifest signature verifies", ms.verify(th, l.Length, l.Fork, l.ManifestMode.SignatureEncoded))
		c.noErr(what+" compat signature verifies", cs.verify(th, l.Length, l.Fork, l.CompatMode.Signature))
		if v.V10 != nil && i < len(v.V10.Signatures) {
			c.eq(what+" v10 signature", cs.sign(th, l.Length, l.Fork), v.V10.Signatures[i])
		}
	}
	if v.V10 != nil {
		c.eq("v10 key", pk[:], v.V10.Key)
		th := tr.hash()
		c.eq("v10 tree hash", th[:], v.V10.TreeHash)
	}
	for _, n := range v.TreeNodes {
		got, ok := tr.nodes.get(n.Index)
		c.ok(fmt.Sprintf("tree node %d", n.Index), ok && got == n.node())
	}

	// Proofs.
	rs := &readerSet{byName: map[string]*modelReader{}, byProof: map[string]*modelReader{}}
	for _, p := range v.Proofs {
		checkProof(c, p, blocks, ms, rs)
	}
}

// modelReader is a reader that the recorded proofs are replayed on, in order,
// as the real Hypercore readers got them: the nodes it holds are the nodes it
// verified, so a proof that needs nodes it lacks fails here as it failed there.
type modelReader struct {
	t      tree
	blocks map[uint64]bool
}

func (r *modelReader) commit(res *verified) {
	for _, n := range res.nodes {
		r.t.nodes.put(n)
	}
	if res.block != nil {
		r.blocks[res.block.Index] = true
	}
	if res.upgraded {
		r.t.roots, r.t.length, r.t.byteLength, r.t.fork, r.t.signature = res.roots, res.length, res.byteLength, res.fork, res.signature
	}
}

type readerSet struct {
	byName  map[string]*modelReader
	byProof map[string]*modelReader
}

var (
	readerName = regexp.MustCompile(`^reader (\S+): `)
	viaProof   = regexp.MustCompile(`via (P\d+)`)
	proofName  = regexp.MustCompile(`^(P\d+)`)
)

// reader finds the reader a step ran on from its readerState:
// "[reader X: ]empty ..." starts one, "[reader X: ]verified length N (after
// Pk)" or "verified length N via Pk" continues one. ok is false when the
// state names no reader this test can follow.
func (rs *readerSet) reader(state string) (r *modelReader, wantLen uint64, ok bool) {
	name := ""
	if m := readerName.FindStringSubmatch(state); m != nil {
		name = m[1]
	}
	wantLen, known := readerLength(state)
	if !known {
		return nil, 0, false
	}
	rest := strings.TrimPrefix(state, "reader "+name+": ")
	if strings.HasPrefix(rest, "empty") {
		r = &modelReader{blocks: map[uint64]bool{}}
		if name != "" {
			rs.byName[name] = r
		}
		return r, 0, true
	}
	if name != "" {
		r = rs.byName[name]
	} else if m := viaProof.FindStringSubmatch(state); m != nil {
		r = rs.byProof[m[1]]
	}
	return r, wantLen, r != nil
}

var verifiedLength = regexp.MustCompile(`^(?:reader \S+: )?verified length (\d+)`)

// readerLength reads the reader's length from a readerState text.
func readerLength(state string) (uint64, bool) {
	if strings.HasPrefix(state, "empty") || strings.Contains(state, ": empty") {
		return 0, true
	}
	if m := verifiedLength.FindStringSubmatch(state); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// writerAt builds the writer's tree at a length, signed in manifest mode.
func writerAt(blocks [][]byte, length uint64, s *signer) *tree {
	tr := &tree{}
	var leaves []Node
	for i := uint64(0); i < length; i++ {
		leaves = append(leaves, LeafNode(i, blocks[i]))
	}
	for _, n := range tr.appendLeaves(nil, leaves) {
		tr.nodes.put(n)
	}
	tr.signature = s.sign(tr.hash(), tr.length, tr.fork)
	return tr
}

// readerAt is a reader that has verified the writer's tree up to length: it
// holds that tree's nodes and roots but no later ones.
func readerAt(w *tree, length uint64) *tree {
	r := &tree{}
	if length == 0 {
		return r
	}
	for i := uint64(0); i < 2*length; i++ {
		if flattree.RightSpan(i) < 2*length {
			if n, ok := w.nodes.get(i); ok {
				r.nodes.put(n)
			}
		}
	}
	roots, err := r.rootsFor(length)
	if err != nil {
		panic(err)
	}
	r.roots, r.length = roots, length
	for _, n := range roots {
		r.byteLength += n.Size
	}
	return r
}

func checkProof(c *checker, p vProof, blocks [][]byte, s *signer, rs *readerSet) {
	what := "proof " + p.Name
	if p.WriterLength > uint64(len(blocks)) {
		c.ok(what+": writer length within the blocks", false)
		return
	}
	w := writerAt(blocks, p.WriterLength, s)
	var req Request
	if b := p.Request.Block; b != nil {
		req.Block = &BlockRequest{Index: b.Index, Nodes: b.Nodes}
	}
	if u := p.Request.Upgrade; u != nil {
		req.Upgrade = &UpgradeRequest{Start: u.Start, Length: u.Length}
	}

	// The recorded proof, as Hypercore made it.
	rec := &Proof{Fork: p.Proof.Fork}
	if b := p.Proof.Block; b != nil {
		rec.Block = &BlockProof{Index: b.Index, Value: []byte(b.Value)}
		if rec.Block.Value == nil {
			rec.Block.Value = []byte{}
		}
		for _, n := range b.Nodes {
			rec.Block.Nodes = append(rec.Block.Nodes, n.node())
		}
	}
	if u := p.Proof.Upgrade; u != nil {
		rec.Upgrade = &UpgradeProof{Start: u.Start, Length: u.Length, Signature: u.Signature}
		for _, n := range u.Nodes {
			rec.Upgrade.Nodes = append(rec.Upgrade.Nodes, n.node())
		}
		for _, n := range u.AdditionalNodes {
			rec.Upgrade.AdditionalNodes = append(rec.Upgrade.AdditionalNodes, n.node())
		}
	}

	// Ours must equal it node for node and byte for byte.
	ours, err := w.proof(req)
	c.noErr(what+": we produce a proof", err)
	if err == nil {
		c.ok(what+": fork", ours.Fork == rec.Fork)
		c.ok(what+": block part present alike", (ours.Block == nil) == (rec.Block == nil))
		if ours.Block != nil && rec.Block != nil {
			// The tree holds no block bytes: the value is the vector's block, for the
			// encoding round trip below (comparing it would compare the vector with itself).
			ours.Block.Value = blocks[ours.Block.Index]
			c.ok(what+": block index", ours.Block.Index == rec.Block.Index)
			nodesEqual(c, what+": block nodes", ours.Block.Nodes, p.Proof.Block.Nodes)
		}
		c.ok(what+": upgrade part present alike", (ours.Upgrade == nil) == (rec.Upgrade == nil))
		if ours.Upgrade != nil && rec.Upgrade != nil {
			c.ok(what+": upgrade range", ours.Upgrade.Start == rec.Upgrade.Start && ours.Upgrade.Length == rec.Upgrade.Length)
			nodesEqual(c, what+": upgrade nodes", ours.Upgrade.Nodes, p.Proof.Upgrade.Nodes)
			nodesEqual(c, what+": additional nodes", ours.Upgrade.AdditionalNodes, p.Proof.Upgrade.AdditionalNodes)
			c.eq(what+": signature", ours.Upgrade.Signature, rec.Upgrade.Signature)
		}
		// Our encoding round-trips it.
		enc, _ := ours.MarshalBinary()
		dec, err := DecodeProof(enc, 0)
		c.noErr(what+": encoding round trip", err)
		if err == nil {
			enc2, _ := dec.MarshalBinary()
			c.eq(what+": re-encoding", enc2, enc)
		}
	}

	// Hypercore's proof verifies with our verifier, for a reader at the
	// length the request started from.
	// Replay Hypercore's proof on the reader it was made for.
	r, wantLen, followed := rs.reader(p.ReaderState)
	if !followed {
		// A state this test cannot follow: a reader holding every node of
		// the tree at the upgrade's start (a superset of any real reader).
		start := p.WriterLength
		if req.Upgrade != nil {
			start = req.Upgrade.Start
		}
		r = &modelReader{t: *readerAt(w, start), blocks: map[uint64]bool{}}
		wantLen = start
	}
	if m := proofName.FindStringSubmatch(p.Name); m != nil {
		rs.byProof[m[1]] = r
	}
	c.ok(fmt.Sprintf("%s: reader is at length %d before", what, wantLen), r.t.length == wantLen)
	res, err := r.t.verify(rec, s.verifier)
	if p.VerifiedByHypercore != true {
		c.ok(fmt.Sprintf("%s: refused as Hypercore did (%v)", what, p.VerifiedByHypercore), err != nil)
	} else {
		c.noErr(what+": verifies", err)
	}
	if err == nil {
		r.commit(res)
	}
	if p.ReaderCheck != nil {
		if p.ReaderCheck.LengthAfter != nil {
			c.ok(fmt.Sprintf("%s: reader length after is %d (ours %d)", what, *p.ReaderCheck.LengthAfter, r.t.length), r.t.length == *p.ReaderCheck.LengthAfter)
		}
		for k, v := range p.ReaderCheck.Has {
			if i, err := strconv.ParseUint(strings.TrimPrefix(k, "hasBlock"), 10, 64); err == nil && strings.HasPrefix(k, "hasBlock") {
				c.ok(fmt.Sprintf("%s: %s is %v", what, k, v), r.blocks[i] == v)
			}
		}
	}
}

// With DV_REQUIRE_VECTORS set, TestConformance fails when the shared vectors are missing,
// unreadable or empty, or when a file there is not of the schema (run in a child process).
func TestConformanceRequiresSharedVectors(t *testing.T) {
	good, err := vectorFiles(filepath.Join("testdata", "hypercore"))
	if err != nil {
		t.Fatal(err)
	}
	goodRaw, err := os.ReadFile(good[0])
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	mk := func(name string, files map[string]string) string {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, body := range files {
			if err := os.WriteFile(filepath.Join(d, n), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	unreadable := mk("unreadable", map[string]string{"v.json": string(goodRaw)})
	if err := os.Chmod(unreadable, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(unreadable, 0o755) })
	cases := []struct {
		name, dir string
		pass      bool
	}{
		{"good", mk("good", map[string]string{"v.json": string(goodRaw)}), true},
		{"missing", filepath.Join(root, "missing"), false},
		{"empty", mk("empty", map[string]string{"README.md": "no vectors"}), false},
		{"not json", mk("notjson", map[string]string{"v.json": string(goodRaw), "w.json": "{not json"}), false},
		{"other schema", mk("schema", map[string]string{"v.json": string(goodRaw), "w.json": `{"name": "something else"}`}), false},
	}
	// A vector file that cannot be read (a link to nothing: unreadable for root too) fails.
	brokenFile := mk("unreadablefile", map[string]string{"v.json": string(goodRaw)})
	if err := os.Symlink(filepath.Join(root, "nothing-here.json"), filepath.Join(brokenFile, "w.json")); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name, dir string
		pass      bool
	}{"unreadable file", brokenFile, false})
	// Root reads a mode-000 directory anyway: then that case is a readable one.
	if _, err := os.ReadDir(unreadable); err != nil {
		cases = append(cases, struct {
			name, dir string
			pass      bool
		}{"unreadable", unreadable, false})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConformance$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DV_REQUIRE_VECTORS=1", "HYPERCORE_VECTORS_DIR="+c.dir)
			out, err := cmd.CombinedOutput()
			if (err == nil) != c.pass {
				t.Fatalf("TestConformance with %s vectors: err %v, want pass=%v\n%s", c.name, err, c.pass, out)
			}
		})
	}
}
