// Package journal is the crash-safe record file under the wallet's stores.
package journal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/dazaarvision/dazaar-vision/internal/atomicfile"
)

// The journal is an append-only file of frames: 4-byte big-endian length, 4-byte CRC-32C of the
// payload, payload. A frame cut short at the end of the file (a crash mid-write) is dropped on
// open; a frame whose checksum fails anywhere else is reported, never skipped silently.

const MaxFrame = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt means the file holds a damaged record that is not a torn final write.
var ErrCorrupt = errors.New("journal: file is damaged")

func AppendFrame(w io.Writer, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("journal: record of %d bytes exceeds %d", len(payload), MaxFrame)
	}
	if len(payload) == 0 {
		// Its frame would be eight zero bytes, which a reader takes for the zeros a
		// power loss leaves past a file's written end.
		return errors.New("journal: an empty record cannot be written")
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(payload, castagnoli))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrames calls fn for each intact frame and returns the offset after the last intact frame.
func ReadFrames(f *os.File, fn func([]byte) error) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	r := bufio.NewReaderSize(f, 1<<16)
	var off int64
	var hdr [8]byte
	buf := make([]byte, 0, 512)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return off, nil // clean end, or torn header
			}
			return off, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if n == 0 && binary.BigEndian.Uint32(hdr[4:]) == 0 {
			// Writers never write an empty frame: zeros are what a power loss can leave
			// where a file was lengthened but not written. A tail of nothing but zeros is
			// torn; anything after them is damage.
			if zero, err := allZero(r); err != nil {
				return off, err
			} else if zero {
				return off, nil
			}
			return off, fmt.Errorf("%w: an empty record at offset %d, with data after it", ErrCorrupt, off)
		}
		if n > MaxFrame {
			if off+8+n > size {
				return off, nil // torn write of a garbage length at the tail
			}
			return off, fmt.Errorf("%w: record at offset %d claims %d bytes", ErrCorrupt, off, n)
		}
		if off+8+n > size {
			return off, nil // torn payload at the tail
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return off, err
		}
		if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			if off+8+n == size {
				return off, nil // last record half-written
			}
			return off, fmt.Errorf("%w: checksum mismatch at offset %d", ErrCorrupt, off)
		}
		if err := fn(buf); err != nil {
			return off, fmt.Errorf("%w: record at offset %d: %v", ErrCorrupt, off, err)
		}
		off += 8 + n
	}
}

// allZero reads r to its end and says whether every byte was zero.
func allZero(r io.Reader) (bool, error) {
	var b [4096]byte
	for {
		n, err := r.Read(b[:])
		for _, c := range b[:n] {
			if c != 0 {
				return false, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// WriteAtomically replaces path with the frames produced by fill: github.com/natefinch/atomic
// writes them to a synced temporary file and renames it over path, then the directory is synced
// so the rename survives a power loss. Errors name path, never the temporary file.
func WriteAtomically(path string, fill func(w io.Writer) error) error {
	var buf bytes.Buffer
	if err := fill(&buf); err != nil {
		return err
	}
	if err := atomicfile.Write(path, &buf, true); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}
