package feed

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20"
)

// BlockEncryption encrypts blocks before they are hashed, so that the tree and
// every proof cover the ciphertext (Hypercore's model: encrypt, then hash). A
// peer without the key can still verify, store and serve the blocks: paid
// relaying without handing relays the stream. A feed opened without its
// BlockEncryption serves and verifies the ciphertext; Read needs the key.
type BlockEncryption interface {
	// Overhead is the number of bytes encryption adds to each block.
	Overhead() int
	// Encrypt appends the encrypted form of block index at fork to dst.
	Encrypt(dst []byte, index, fork uint64, plain []byte) []byte
	// Decrypt appends the plaintext of an encrypted block to dst.
	Decrypt(dst []byte, index, fork uint64, sealed []byte) ([]byte, error)
}

// XChaCha20Encryption is the block encryption of Dazaar Vision feeds: each
// block is an 8-byte header (u64le fork) followed by the block XORed with
// XChaCha20 under blockKey = BLAKE2b-256(NS[DEFAULT_ENCRYPTION] ‖ feed key ‖
// secret) and nonce u64le(index) ‖ u64le(fork) ‖ 8 zero bytes. There is no
// MAC: the signed tree already authenticates every byte.
type XChaCha20Encryption struct {
	key [32]byte
}

const encryptionHeader = 8

// NewXChaCha20Encryption derives the block key of a feed from a 32-byte secret.
func NewXChaCha20Encryption(feedKey [32]byte, secret []byte) (*XChaCha20Encryption, error) {
	if len(secret) != 32 {
		return nil, fmt.Errorf("feed: an encryption secret is 32 bytes, got %d", len(secret))
	}
	h := getHasher()
	ns := namespaces[NSDefaultEncryption]
	h.Write(ns[:])
	h.Write(feedKey[:])
	h.Write(secret)
	return &XChaCha20Encryption{key: sum(h)}, nil
}

func (e *XChaCha20Encryption) Overhead() int { return encryptionHeader }

func (e *XChaCha20Encryption) stream(index, fork uint64) *chacha20.Cipher {
	var nonce [chacha20.NonceSizeX]byte
	binary.LittleEndian.PutUint64(nonce[0:], index)
	binary.LittleEndian.PutUint64(nonce[8:], fork)
	c, err := chacha20.NewUnauthenticatedCipher(e.key[:], nonce[:])
	if err != nil {
		panic(err) // key and nonce sizes are fixed
	}
	return c
}

func (e *XChaCha20Encryption) Encrypt(dst []byte, index, fork uint64, plain []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, fork)
	n := len(dst)
	dst = append(dst, plain...)
	e.stream(index, fork).XORKeyStream(dst[n:], dst[n:])
	return dst
}

var errShortCiphertext = errors.New("encrypted block is shorter than its header")

func (e *XChaCha20Encryption) Decrypt(dst []byte, index, _ uint64, sealed []byte) ([]byte, error) {
	if len(sealed) < encryptionHeader {
		return nil, errShortCiphertext
	}
	fork := binary.LittleEndian.Uint64(sealed)
	n := len(dst)
	dst = append(dst, sealed[encryptionHeader:]...)
	e.stream(index, fork).XORKeyStream(dst[n:], dst[n:])
	return dst, nil
}
