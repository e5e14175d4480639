package feed

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Hypercore's compact encoding of unsigned integers: below 0xfd one byte;
// then 0xfd ‖ u16le, 0xfe ‖ u32le, 0xff ‖ u64le.
type encoder struct{ b []byte }

func (e *encoder) uint(n uint64) {
	switch {
	case n < 0xfd:
		e.b = append(e.b, byte(n))
	case n <= 0xffff:
		e.b = append(e.b, 0xfd)
		e.b = binary.LittleEndian.AppendUint16(e.b, uint16(n))
	case n <= 0xffffffff:
		e.b = append(e.b, 0xfe)
		e.b = binary.LittleEndian.AppendUint32(e.b, uint32(n))
	default:
		e.b = append(e.b, 0xff)
		e.b = binary.LittleEndian.AppendUint64(e.b, n)
	}
}

func (e *encoder) raw(p []byte) { e.b = append(e.b, p...) }

func (e *encoder) bytes(p []byte) {
	e.uint(uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) node(n Node) {
	e.uint(n.Index)
	e.uint(n.Size)
	e.b = append(e.b, n.Hash[:]...)
}

var errShort = errors.New("message ends early")

// decoder reads what encoder writes. The first error sticks; every length is
// checked against what is left (and a caller's cap) before allocation.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail(errShort)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uint() uint64 {
	c := d.byte()
	if d.err != nil {
		return 0
	}
	var n int
	switch c {
	case 0xfd:
		n = 2
	case 0xfe:
		n = 4
	case 0xff:
		n = 8
	default:
		return uint64(c)
	}
	if len(d.b)-d.off < n {
		d.fail(errShort)
		return 0
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	var v, floor uint64
	switch n {
	case 2:
		v, floor = uint64(binary.LittleEndian.Uint16(p)), 0xfd
	case 4:
		v, floor = uint64(binary.LittleEndian.Uint32(p)), 0x10000
	default:
		v, floor = binary.LittleEndian.Uint64(p), 0x100000000
	}
	if v < floor {
		// Each number has one encoding: refuse padded ones.
		d.fail(fmt.Errorf("number %d is not in its shortest encoding", v))
		return 0
	}
	return v
}

func (d *decoder) fixed(dst []byte) {
	if d.err != nil {
		return
	}
	if len(d.b)-d.off < len(dst) {
		d.fail(errShort)
		return
	}
	copy(dst, d.b[d.off:])
	d.off += len(dst)
}

// bytes reads a length-prefixed byte string of at most max bytes. The result
// aliases the input.
func (d *decoder) bytes(max int) []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.fail(fmt.Errorf("field of %d bytes is over its %d-byte limit", n, max))
		return nil
	}
	if uint64(len(d.b)-d.off) < n {
		d.fail(errShort)
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) node() Node {
	var n Node
	n.Index = d.uint()
	n.Size = d.uint()
	d.fixed(n.Hash[:])
	return n
}

// nodes reads a count and that many nodes, refusing counts over max before
// allocating.
func (d *decoder) nodes(max int) []Node {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.fail(fmt.Errorf("%d nodes is over the limit of %d", n, max))
		return nil
	}
	// Each node takes at least 34 bytes: refuse counts the input can't hold.
	if n*34 > uint64(len(d.b)-d.off) {
		d.fail(errShort)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]Node, n)
	for i := range out {
		out[i] = d.node()
	}
	return out
}
