package main

import (
	"crypto/ed25519"
	"encoding/binary"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dazaarvision/dazaar-vision/internal/flattree"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// boltAppendRun does the work of workload (a) against an embedded store
// (bbolt) instead of the feed's flat files and log: the same leaf and parent
// hashing and one signature per call, then one transaction holding the blocks,
// the new tree nodes and the signed head. It is the measurement behind the
// storage choice written in ARCHITECTURE.md.
func (w *workloads) boltAppendRun(size, n, batch int, fsync bool) map[string]float64 {
	dir := w.dir()
	defer os.RemoveAll(dir)
	db, err := bolt.Open(filepath.Join(dir, "feed.db"), 0o600, &bolt.Options{NoSync: !fsync, NoFreelistSync: true})
	must(err)
	defer db.Close()
	must(db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"blocks", "tree", "head"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	}))
	kp := seed()
	var roots []feed.Node
	var length uint64
	appendCall := func(blocks [][]byte) {
		var nodes []feed.Node
		for _, b := range blocks {
			n := feed.LeafNode(length, b)
			length++
			nodes = append(nodes, n)
			roots = append(roots, n)
			for len(roots) > 1 {
				a, c := roots[len(roots)-2], roots[len(roots)-1]
				if flattree.Offset(a.Index)&1 != 0 || flattree.Sibling(a.Index) != c.Index { // c is not a's right sibling
					break
				}
				p := feed.ParentNode(a, c)
				nodes = append(nodes, p)
				roots = append(roots[:len(roots)-2], p)
			}
		}
		sig := ed25519.Sign(kp.Secret, feed.Signable(nil, feed.TreeHash(roots), length, 0))
		must(db.Update(func(tx *bolt.Tx) error {
			bb, tb, hb := tx.Bucket([]byte("blocks")), tx.Bucket([]byte("tree")), tx.Bucket([]byte("head"))
			first := length - uint64(len(blocks))
			for i, b := range blocks {
				if err := bb.Put(u64key(first+uint64(i)), b); err != nil {
					return err
				}
			}
			for _, n := range nodes {
				v := make([]byte, 40)
				binary.LittleEndian.PutUint64(v, n.Size)
				copy(v[8:], n.Hash[:])
				if err := tb.Put(u64key(n.Index), v); err != nil {
					return err
				}
			}
			return hb.Put([]byte("head"), append(u64key(length), sig...))
		}))
	}
	appendCall([][]byte{make([]byte, size)})
	blocks := makeBlocks(n, size)
	t := time.Now()
	for i := 0; i < n; i += batch {
		appendCall(blocks[i:min(n, i+batch)])
	}
	s := time.Since(t).Seconds()
	return map[string]float64{"blocksPerSec": float64(n) / s, "MBps": float64(n*size) / 1e6 / s, "usPerBlock": s * 1e6 / float64(n)}
}

func u64key(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }
