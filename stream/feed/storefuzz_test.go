package feed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Fuzz targets for the decoders of the feed's own files (the meta file and the log), whose bytes
// a crash, a damaged disk or another program may have left in any state.

// crcFramed returns body behind the 4-byte CRC-32C that meta files start with.
func crcFramed(body []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(body, crcTable)), body...)
}

// seedMetas adds the meta files of real feeds (a compat writer, a manifest writer, a reader, an
// encrypted reader with its own block size cap) and damaged copies of one. Each is added twice:
// as the file's bytes, and as the body that the target frames with a valid checksum.
func seedMetas(f *testing.F) {
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{1}, 32))
	key := [32]byte{9, 8, 7}
	m := DefaultManifest(kp.Public)
	mkey := m.Hash()
	var files [][]byte
	for _, o := range []Options{
		{KeyPair: &kp, Mode: Compat},
		{KeyPair: &kp, Mode: Manifest, MaxBlockSize: 1 << 20},
		{Key: &key},
		{Key: &key, CompatKey: true, Encrypted: true, MaxBlockSize: MaxBlockSizeLimit},
		{Key: &mkey, Manifest: m.Encode()},
	} {
		dir := f.TempDir()
		w, err := Create(dir, o)
		if err != nil {
			f.Fatal(err)
		}
		w.Close()
		b, err := os.ReadFile(filepath.Join(dir, metaFile))
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, b)
	}
	good := files[1]
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x10
	files = append(files, good[:len(good)-3], flipped, nil, []byte("not a feed at all"))
	for _, b := range files {
		f.Add(b, false)
		if len(b) >= 4 {
			f.Add(bytes.Clone(b[4:]), true)
		}
	}
	// A body with trailing bytes, a mode, an encoding and a block size cap no writer stores.
	var e encoder
	e.uint(1)
	e.raw(key[:])
	e.uint(3)
	e.bytes(nil)
	e.uint(MaxBlockSizeLimit + 1)
	e.uint(2)
	f.Add(e.b, true)
	// A well-formed meta but for a block size cap over the limit, which readMeta once took.
	e = encoder{}
	e.uint(1)
	e.raw(key[:])
	e.uint(0)
	e.bytes(nil)
	e.uint(MaxBlockSizeLimit + 1)
	e.uint(0)
	f.Add(e.b, true)
}

// FuzzReadMeta: a meta file holding any bytes reads (decodeMeta, readMeta's decoder) as a feed
// identity or fails with an error wrapping ErrCorrupt; what reads is within the limits a writer
// keeps (its block size cap included: reads trust it before allocating), is the meta encoding of
// itself (any bytes after it aside), and written back as writeMeta writes it reads the same.
func FuzzReadMeta(f *testing.F) {
	seedMetas(f)
	f.Fuzz(func(t *testing.T, b []byte, frame bool) {
		if frame {
			b = crcFramed(b)
		}
		m, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("damaged meta: error %q does not wrap ErrCorrupt", err)
			}
			return
		}
		if m.maxBlockSize > MaxBlockSizeLimit {
			t.Fatalf("read a block size cap of %d, over the %d limit", m.maxBlockSize, MaxBlockSizeLimit)
		}
		if len(m.manifest) > maxManifestSize || m.modeKnown && m.mode != Compat && m.mode != Manifest {
			t.Fatalf("read an identity out of range: %+v", m)
		}
		if enc := m.encode(); !bytes.HasPrefix(b[4:], enc) {
			t.Fatalf("meta body %x reads as %+v, which encodes as %x", b[4:], m, enc)
		}
		m2, err := decodeMeta(crcFramed(m.encode())) // what writeMeta writes
		if err != nil {
			t.Fatalf("re-written meta does not read: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("meta %+v re-reads as %+v", m, m2)
		}
	})
}

// readMeta reads through the file what decodeMeta decodes, and its errors still wrap
// ErrCorrupt (readLog's file part is io.ReadAll).
func TestReadMetaFile(t *testing.T) {
	dir := t.TempDir()
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{1}, 32))
	w, err := Create(dir, Options{KeyPair: &kp, Mode: Manifest, MaxBlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeMeta(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readMeta(dir); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("readMeta = %+v, %v; want %+v", got, err, want)
	}
	if want.maxBlockSize != 1<<20 || !want.modeKnown || want.mode != Manifest {
		t.Fatalf("meta of a manifest writer with a 1 MiB cap reads as %+v", want)
	}
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, metaFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readMeta(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged meta: %v, want ErrCorrupt", err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a feed with damaged meta: %v, want ErrCorrupt", err)
	}
}

// fixFrames rewrites the checksum of every log frame that fits in raw, so that the fuzzer's
// records reach decodeRecord (and frames after a bad one are seen too); frames of length 0 or
// past maxRecordSize are left alone and end the walk.
func fixFrames(raw []byte) []byte {
	raw = bytes.Clone(raw)
	for off := 0; len(raw)-off >= 8; {
		n := int(binary.LittleEndian.Uint32(raw[off:]))
		if n == 0 || n > maxRecordSize || n > len(raw)-off-8 {
			break
		}
		binary.LittleEndian.PutUint32(raw[off+4:], crc32.Checksum(raw[off+8:off+8+n], crcTable))
		off += 8 + n
	}
	return raw
}

// seedLogs adds real logs: a writer's (appends, a sync point, several batches) and a sparse
// reader's (verified proofs), whole, cut short, with a damaged middle record, and with zeros
// after the end.
func seedLogs(f *testing.F) {
	var logs [][]byte
	kp, _ := KeyPairFromSeed(bytes.Repeat([]byte{1}, 32))
	dir := f.TempDir()
	w, err := Create(dir, Options{KeyPair: &kp})
	if err != nil {
		f.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 6; i++ {
		if i == 3 {
			_, err = w.AppendSync(block(i, 30), block(i+10, 5))
		} else {
			_, err = w.Append(block(i, 20))
		}
		if err != nil {
			f.Fatal(err)
		}
	}
	wlog, err := os.ReadFile(filepath.Join(dir, "oplog"))
	if err != nil {
		f.Fatal(err)
	}
	logs = append(logs, wlog)

	key := w.Key()
	rdir := f.TempDir()
	r, err := Create(rdir, Options{Key: &key})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	for _, req := range []Request{
		{Block: &BlockRequest{Index: 4}, Upgrade: &UpgradeRequest{Length: w.Length()}, Manifest: true},
		{Block: &BlockRequest{Index: 1, Nodes: 2}},
	} {
		p, err := w.Proof(req)
		if err != nil {
			f.Fatal(err)
		}
		if err := r.Verify(p); err != nil {
			f.Fatal(err)
		}
	}
	rlog, err := os.ReadFile(filepath.Join(rdir, "oplog"))
	if err != nil {
		f.Fatal(err)
	}
	logs = append(logs, rlog)

	first := int(binary.LittleEndian.Uint32(wlog)) + 8
	damaged := bytes.Clone(wlog)
	damaged[first+12] ^= 1
	logs = append(logs, wlog[:len(wlog)-5], damaged, append(bytes.Clone(wlog), make([]byte, 24)...), nil)
	for _, b := range logs {
		f.Add(b, false)
	}
	// A record that frames well but does not decode (kind 2).
	f.Add(append(binary.LittleEndian.AppendUint32(nil, 1), 0, 0, 0, 0, 2), true)
}

// FuzzReadLog: a log holding any bytes reads (parseLog, readLog's decoder) as records or fails
// with an error wrapping ErrCorrupt. What reads is a run of intact frames from offset 0 to end,
// each record at the offset given and re-encoding to exactly its frame's body; damaged says a
// frame after end is intact, so end is short of the file's end; and the log cut at end reads the
// same, undamaged.
func FuzzReadLog(f *testing.F) {
	seedLogs(f)
	f.Fuzz(func(t *testing.T, raw []byte, fix bool) {
		if fix {
			raw = fixFrames(raw)
		}
		recs, offs, end, damaged, err := parseLog(raw)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("damaged log: error %q does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(recs) != len(offs) || end < 0 || end > int64(len(raw)) {
			t.Fatalf("%d records at %d offsets, end %d of %d bytes", len(recs), len(offs), end, len(raw))
		}
		off := 0
		for k, r := range recs {
			if offs[k] != int64(off) {
				t.Fatalf("record %d at offset %d, want %d", k, offs[k], off)
			}
			n, ok := logRecordAt(raw, off)
			if !ok {
				t.Fatalf("record %d at offset %d is not an intact frame", k, off)
			}
			if enc := r.encode(nil); !bytes.Equal(enc, raw[off+8:off+8+n]) {
				t.Fatalf("record %d: body %x re-encodes as %x", k, raw[off+8:off+8+n], enc)
			}
			off += 8 + n
		}
		if end != int64(off) {
			t.Fatalf("log ends at %d, after the last record at %d", end, off)
		}
		if damaged && end == int64(len(raw)) {
			t.Fatal("damaged, with nothing after the end")
		}
		recs2, offs2, end2, damaged2, err := parseLog(raw[:end])
		if err != nil || damaged2 || end2 != end || len(recs2) != len(recs) || !reflect.DeepEqual(offs2, offs) {
			t.Fatalf("the log cut at %d reads as %d records ending at %d (damaged %v, %v)", end, len(recs2), end2, damaged2, err)
		}
		for k := range recs {
			if !reflect.DeepEqual(recs[k], recs2[k]) {
				t.Fatalf("record %d reads differently once the log is cut", k)
			}
		}
	})
}
