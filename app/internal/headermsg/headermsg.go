// Package headermsg is the app message in which a broadcaster (or a relay passing it on) tells
// a viewer where the newest stream header is: a resumed stream has one per run. It is one
// byte, Kind, then the block index as an unsigned varint; Kind is never an invoicemsg version,
// so both kinds share the seller's app-message channel.
package headermsg

import "encoding/binary"

// Kind is the message's first byte.
const Kind = 0xd5

// Encode is the message for the header at block index.
func Encode(index uint64) []byte { return binary.AppendUvarint([]byte{Kind}, index) }

// Decode returns the index b names, and false for a message of another kind or a malformed
// one (a truncated or overlong varint, or bytes after it). b comes from a peer: it is read in
// place, nothing is allocated.
func Decode(b []byte) (uint64, bool) {
	if len(b) < 2 || b[0] != Kind {
		return 0, false
	}
	v, n := binary.Uvarint(b[1:])
	if n <= 0 || 1+n != len(b) {
		return 0, false
	}
	return v, true
}
