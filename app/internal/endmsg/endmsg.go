// Package endmsg is the app message a broadcaster that stops sends its viewers last, so that
// they say the stream ended rather than that the broadcaster went away. It is the one byte
// Kind: never an invoicemsg version, nor headermsg's or stream/swarm's redirect kind, so all
// share the seller's app-message channel. It is not signed: a viewer believes it only from
// the card's seller, and it changes only the words shown once the link drops.
package endmsg

// Kind is the message's only byte.
const Kind = 0xd7

// Encode is the message.
func Encode() []byte { return []byte{Kind} }

// Is reports whether b is the message (b comes from a peer: read in place).
func Is(b []byte) bool { return len(b) == 1 && b[0] == Kind }
