package feed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/dazaarvision/dazaar-vision/internal/atomicfile"
)

// The on-disk layout (flat files plus a checksummed log, Hypercore v10's way;
// ARCHITECTURE.md says why this and not an embedded store):
//
//	meta    the feed's public identity: key, mode, manifest (written once, atomically)
//	data    block bytes, in the order they arrived (readers store any order)
//	blocks  16 bytes per block i at 16*i: u64le offset in data, u32le length+1, u32le CRC-32C
//	        of the bytes; all zero = block not stored. This file is the bitfield.
//	tree    40 bytes per flat-tree index: u64le size, hash; all zero = node not stored
//	header  two 512-byte slots, written alternately: u32le CRC-32C, u32le length, then the
//	        checkpoint (sequence number, fork, length, byte length, signature, sync point)
//	oplog   the write-ahead log: records of u32le length, u32le CRC-32C, payload. Each record
//	        is one append batch or one verified proof: its new nodes, block entries and the
//	        signed head that covers them.
//
// An append writes the block bytes to data, then one oplog record, then updates
// memory. A record that is torn (a crash or power loss mid-write) fails its
// CRC on open and is cut off with everything after it, so the feed reopens at
// the last complete record: the last signed state. Block bytes a torn record
// would have referenced are never served. Every so often (and on Close) the
// log is checkpointed: data is synced (a block entry never reaches the disk
// before the bytes it points at), nodes and block entries are written to tree
// and blocks, those files are synced, the header slot not in use gets the new
// checkpoint and is synced, and only then is the log truncated.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// The log is checkpointed when it passes checkpointBytes or checkpointCount
// records (variables so that crash tests can checkpoint often).
var (
	checkpointBytes int64 = 4 << 20
	checkpointCount       = 4096
)

const (
	headerSlotSize   = 4096
	nodeRecordSize   = 40
	blockRecordSize  = 16
	maxRecordSize    = 64 << 20 // a log record never exceeds this; larger is corruption
	metaFile         = "meta"
	maxMetaSize      = 8192
	recordKindAppend = 1
	// MaxBlockSizeLimit is the largest MaxBlockSize a feed accepts.
	MaxBlockSizeLimit = 1 << 30
	// checkpointData bounds the block bytes written since the last
	// checkpoint, and so what Open may re-read to check a crashed log's
	// blocks (only those of records written after the last sync, see
	// record.synced).
	checkpointData = 1 << 30
)

type blockEntry struct {
	offset uint64
	length uint32 // stored as length+1 on disk so that zero means absent
	crc    uint32
}

// record is one oplog record.
type record struct {
	seq        uint64
	synced     uint64 // every record up to this seq had its data and log synced before this one was written
	upgraded   bool
	fork       uint64
	length     uint64
	byteLength uint64
	signature  []byte
	syncPoint  uint64 // index+1 of the newest sync point; 0 for none
	nodes      []Node
	blocks     []blockRef
}

type blockRef struct {
	index uint64
	entry blockEntry
}

func (r *record) encode(b []byte) []byte {
	e := encoder{b: b}
	e.uint(recordKindAppend)
	e.uint(r.seq)
	e.uint(r.synced)
	if r.upgraded {
		e.uint(1)
		e.uint(r.fork)
		e.uint(r.length)
		e.uint(r.byteLength)
		e.bytes(r.signature)
		e.uint(r.syncPoint)
	} else {
		e.uint(0)
	}
	appendNodes(&e, r.nodes)
	e.uint(uint64(len(r.blocks)))
	for _, bl := range r.blocks {
		e.uint(bl.index)
		e.uint(bl.entry.offset)
		e.uint(uint64(bl.entry.length))
		e.uint(uint64(bl.entry.crc))
	}
	return e.b
}

func decodeRecord(b []byte) (*record, error) {
	d := decoder{b: b}
	if k := d.uint(); d.err == nil && k != recordKindAppend {
		return nil, fmt.Errorf("unknown record kind %d", k)
	}
	r := &record{seq: d.uint(), synced: d.uint()}
	if up := d.uint(); up == 1 {
		r.upgraded = true
		r.fork = d.uint()
		r.length = d.uint()
		r.byteLength = d.uint()
		r.signature = d.bytes(maxSignatureSize)
		r.syncPoint = d.uint()
	} else if up != 0 {
		d.fail(fmt.Errorf("bad upgrade flag %d", up))
	}
	n := d.uint()
	if d.err == nil && n*34 > uint64(len(b)-d.off) {
		d.fail(errShort)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.nodes = append(r.nodes, d.node())
	}
	n = d.uint()
	if d.err == nil && n*4 > uint64(len(b)-d.off) {
		d.fail(errShort)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var ref blockRef
		ref.index = d.uint()
		ref.entry.offset = d.uint()
		l, c := d.uint(), d.uint()
		if l > 0xfffffffe || c > 0xffffffff {
			d.fail(errors.New("block entry out of range"))
		}
		ref.entry.length, ref.entry.crc = uint32(l), uint32(c)
		r.blocks = append(r.blocks, ref)
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%d trailing bytes", len(b)-d.off)
	}
	// Past maxLength nothing is ever verified (a log written by a version without the bound
	// can hold such a record: it is reported, never applied).
	if r.length > maxLength {
		return nil, fmt.Errorf("length %d is past the longest feed", r.length)
	}
	for _, n := range r.nodes {
		if n.Index >= 2*maxLength {
			return nil, fmt.Errorf("node %d is past the longest feed", n.Index)
		}
	}
	for _, b := range r.blocks {
		if b.index >= maxLength {
			return nil, fmt.Errorf("block %d is past the longest feed", b.index)
		}
	}
	return r, nil
}

// checkpoint is what a header slot holds.
type checkpoint struct {
	seq        uint64
	fork       uint64
	length     uint64
	byteLength uint64
	signature  []byte
	syncPoint  uint64
}

func (c *checkpoint) encode() []byte {
	var e encoder
	e.uint(1) // version
	e.uint(c.seq)
	e.uint(c.fork)
	e.uint(c.length)
	e.uint(c.byteLength)
	e.bytes(c.signature)
	e.uint(c.syncPoint)
	body := e.b
	out := make([]byte, 8, 8+len(body))
	binary.LittleEndian.PutUint32(out[0:], crc32.Checksum(body, crcTable))
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	return append(out, body...)
}

func decodeCheckpoint(slot []byte) (*checkpoint, error) {
	if len(slot) < 8 {
		return nil, errShort
	}
	n := binary.LittleEndian.Uint32(slot[4:])
	if n == 0 || int(n) > len(slot)-8 {
		return nil, errors.New("empty or oversized header slot")
	}
	body := slot[8 : 8+n]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(slot) {
		return nil, errors.New("header slot checksum mismatch")
	}
	d := decoder{b: body}
	if v := d.uint(); d.err == nil && v != 1 {
		return nil, fmt.Errorf("header version %d", v)
	}
	c := &checkpoint{seq: d.uint(), fork: d.uint(), length: d.uint(), byteLength: d.uint()}
	c.signature = append([]byte(nil), d.bytes(maxSignatureSize)...)
	c.syncPoint = d.uint()
	if d.err != nil {
		return nil, d.err
	}
	if c.length > maxLength {
		return nil, fmt.Errorf("length %d is past the longest feed", c.length)
	}
	return c, nil
}

// files are a feed directory's open files.
type files struct {
	dir                             string
	data, blocks, tree, header, log *os.File
	logSize                         int64
	logRecords                      int
	headerSlot                      int // slot the newest checkpoint is in
}

var storageFiles = []string{"data", "blocks", "tree", "header", "oplog"}

// createFiles makes a new feed's empty files, before meta (written last, then
// one directory sync for all of them) says a feed is there. The filesystem's
// journal keeps directory operations in order, so meta never survives
// without the files.
func createFiles(dir string) error {
	for _, name := range storageFiles {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil // the caller syncs the directory once meta is in place too
}

// openFiles opens a feed's files; a missing one is corruption, not a new feed.
func openFiles(dir string, readOnly bool) (*files, error) {
	fs := &files{dir: dir}
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	var err error
	open := func(name string) *os.File {
		if err != nil {
			return nil
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(dir, name), flag, 0)
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %s is missing", ErrCorrupt, name)
		}
		return f
	}
	fs.data, fs.blocks, fs.tree, fs.header, fs.log = open("data"), open("blocks"), open("tree"), open("header"), open("oplog")
	if err == nil && !readOnly {
		// The tree and blocks files are indexed by position, with holes where a reader holds
		// nothing.
		if err = markSparse(fs.tree); err == nil {
			err = markSparse(fs.blocks)
		}
	}
	if err != nil {
		fs.close()
		return nil, fmt.Errorf("feed: open storage in %s: %w", dir, err)
	}
	return fs, nil
}

func (fs *files) close() error {
	var first error
	for _, f := range []*os.File{fs.data, fs.blocks, fs.tree, fs.header, fs.log} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// readHeader returns the newest valid checkpoint (nil when there is none).
func (fs *files) readHeader() (*checkpoint, error) {
	buf := make([]byte, 2*headerSlotSize)
	n, err := fs.header.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	buf = buf[:n]
	var best *checkpoint
	for slot := 0; slot < 2; slot++ {
		if len(buf) < (slot+1)*headerSlotSize && len(buf) <= slot*headerSlotSize {
			continue
		}
		end := min(len(buf), (slot+1)*headerSlotSize)
		c, err := decodeCheckpoint(buf[slot*headerSlotSize : end])
		if err != nil {
			continue // a torn slot: the other one holds the previous checkpoint
		}
		if best == nil || c.seq > best.seq {
			best, fs.headerSlot = c, slot
		}
	}
	return best, nil
}

func (fs *files) writeHeader(c *checkpoint) error {
	b := c.encode()
	if len(b) > headerSlotSize {
		return fmt.Errorf("feed: checkpoint of %d bytes does not fit its slot", len(b))
	}
	slot := 1 - fs.headerSlot
	if _, err := fs.header.WriteAt(b, int64(slot*headerSlotSize)); err != nil {
		return err
	}
	if err := fs.header.Sync(); err != nil {
		return err
	}
	fs.headerSlot = slot
	return nil
}

// readLog returns the log's complete records, in order, with the offset each
// starts at, and the offset where the valid log ends (a torn tail starts
// there). A record whose checksum holds but which does not decode is not a
// torn write: it is reported as corruption. damaged says the log does not end
// in a torn write where it stops: a complete record follows the one that failed
// its checksum, so what was cut there was written, and may have been shared.
// A record of length 0 (never written: the zeros a power loss can leave past
// the end of a file) ends the log like a torn one.
func (fs *files) readLog() (recs []*record, offs []int64, end int64, damaged bool, err error) {
	raw, err := io.ReadAll(io.NewSectionReader(fs.log, 0, 1<<62))
	if err != nil {
		return nil, nil, 0, false, err
	}
	return parseLog(raw)
}

// parseLog is readLog over the log's bytes.
func parseLog(raw []byte) (recs []*record, offs []int64, end int64, damaged bool, err error) {
	off := 0
	for len(raw)-off >= 8 {
		n, ok := logRecordAt(raw, off)
		if !ok {
			if n > 0 && n <= maxRecordSize && off+8+n <= len(raw) {
				if m, ok := logRecordAt(raw, off+8+n); ok && m > 0 {
					damaged = true
				}
			}
			break
		}
		r, err := decodeRecord(raw[off+8 : off+8+n])
		if err != nil {
			return nil, nil, 0, false, fmt.Errorf("%w: log record at offset %d: %v", ErrCorrupt, off, err)
		}
		recs = append(recs, r)
		offs = append(offs, int64(off))
		off += 8 + n
	}
	return recs, offs, int64(off), damaged, nil
}

// logRecordAt reads the frame at off of a log: its body's length, and whether
// the frame is complete, not empty and its checksum holds.
func logRecordAt(raw []byte, off int) (int, bool) {
	if len(raw)-off < 8 {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(raw[off:])
	sum := binary.LittleEndian.Uint32(raw[off+4:])
	if n == 0 || n > maxRecordSize || int(n) > len(raw)-off-8 {
		return int(min(n, maxRecordSize+1)), false
	}
	return int(n), crc32.Checksum(raw[off+8:off+8+int(n)], crcTable) == sum
}

// appendLog writes one framed record at the end of the log.
func (fs *files) appendLog(body []byte, frame []byte) ([]byte, error) {
	frame = frame[:0]
	frame = binary.LittleEndian.AppendUint32(frame, uint32(len(body)))
	frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(body, crcTable))
	frame = append(frame, body...)
	if _, err := fs.log.WriteAt(frame, fs.logSize); err != nil {
		return frame, err
	}
	fs.logSize += int64(len(frame))
	fs.logRecords++
	return frame, nil
}

func putNodeRecord(b []byte, n Node) {
	binary.LittleEndian.PutUint64(b, n.Size)
	copy(b[8:40], n.Hash[:])
}

func putBlockRecord(b []byte, e blockEntry) {
	binary.LittleEndian.PutUint64(b, e.offset)
	binary.LittleEndian.PutUint32(b[8:], e.length+1)
	binary.LittleEndian.PutUint32(b[12:], e.crc)
}

// writeMeta stores the feed's public identity atomically (temp file, rename).
// With durable it also syncs the file and then the directory, so that the
// feed, files and all, survives power loss. A writer's identity must; a
// reader's is a cache of verified data that can be made again.
func writeMeta(dir string, m *metaInfo, durable bool) error {
	body := m.encode()
	frame := binary.LittleEndian.AppendUint32(nil, crc32.Checksum(body, crcTable))
	return replaceFile(dir, metaFile, append(frame, body...), durable)
}

// replaceFile writes b to dir/name with natefinch/atomic (a temporary file, synced, then
// renamed over the name), so that the name holds the old bytes or the new ones, never a mix;
// durable then syncs the directory, so that the rename itself survives power loss (the
// library does not). An error names dir/name, never the temporary file.
func replaceFile(dir, name string, b []byte, durable bool) error {
	return atomicfile.Write(filepath.Join(dir, name), bytes.NewReader(b), durable)
}

// metaInfo is the feed's public identity.
type metaInfo struct {
	key          [32]byte
	modeKnown    bool
	mode         Mode
	manifest     []byte
	maxBlockSize uint64
	encrypted    bool // blocks are encrypted before hashing (BlockEncryption)
}

func (m *metaInfo) encode() []byte {
	var e encoder
	e.uint(1) // version
	e.raw(m.key[:])
	if m.modeKnown {
		e.uint(1 + uint64(m.mode))
	} else {
		e.uint(0)
	}
	e.bytes(m.manifest)
	e.uint(m.maxBlockSize)
	var enc uint64
	if m.encrypted {
		enc = 1
	}
	e.uint(enc) // block encoding: 0 plain, 1 encrypted
	return e.b
}

// readMeta reads the feed's identity. A meta file that is not one (a bad size or checksum, an
// unknown version, mode or encoding, a field over its limit) is ErrCorrupt.
func readMeta(dir string) (*metaInfo, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	m, err := decodeMeta(raw)
	if err != nil {
		return nil, fmt.Errorf("feed: %s/meta: %w", dir, err)
	}
	return m, nil
}

// decodeMeta decodes a meta file's bytes (a CRC-32C, then the encoding); its errors wrap
// ErrCorrupt.
func decodeMeta(raw []byte) (*metaInfo, error) {
	if len(raw) < 4 || len(raw) > maxMetaSize {
		return nil, fmt.Errorf("%w: bad size (%d bytes)", ErrCorrupt, len(raw))
	}
	body := raw[4:]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(raw) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	d := decoder{b: body}
	if v := d.uint(); d.err == nil && v != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	m := &metaInfo{}
	d.fixed(m.key[:])
	switch mode := d.uint(); mode {
	case 0:
	case 1, 2:
		m.modeKnown, m.mode = true, Mode(mode-1)
	default:
		d.fail(fmt.Errorf("unknown mode %d", mode))
	}
	m.manifest = append([]byte(nil), d.bytes(maxManifestSize)...)
	// Reads trust the cap before allocating a block (Feed.entry): no feed is made with one
	// over the limit.
	if m.maxBlockSize = d.uint(); m.maxBlockSize > MaxBlockSizeLimit {
		d.fail(fmt.Errorf("a maximum block size of %d is over the %d limit", m.maxBlockSize, MaxBlockSizeLimit))
	}
	switch enc := d.uint(); enc {
	case 0:
	case 1:
		m.encrypted = true
	default:
		d.fail(fmt.Errorf("unknown block encoding %d", enc))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	}
	return m, nil
}
