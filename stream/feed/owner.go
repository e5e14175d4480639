package feed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// The owner file says whether a writer holds the feed, and how: with which
// durability, on which boot of the operating system. A writer that opens the
// feed writes it (synced) before it signs anything, and Close marks it clean
// after the last checkpoint. A writer that finds it still held learns that
// the last writer died; if that writer used ForkOnPowerLoss and the machine has
// rebooted since (or the boot cannot be told), appends whose signatures left
// the process may be lost, so the feed moves to a new fork before it signs
// again (bumpFork).
const ownerFile = "owner"

type ownerState struct {
	held bool       // a writer holds the feed (or died holding it)
	mode Durability // that writer's durability
	boot string     // the operating system boot it ran on ("" = unknown)
}

// encode gives u32le CRC-32C of the body, then the body: version, held,
// durability, boot.
func (o ownerState) encode() []byte {
	var e encoder
	e.uint(1) // version
	held := uint64(0)
	if o.held {
		held = 1
	}
	e.uint(held)
	e.uint(uint64(o.mode))
	e.bytes([]byte(o.boot))
	return append(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(e.b, crcTable)), e.b...)
}

// readOwner reads the owner file. A feed made before the file existed has
// none: its writers synced before sharing (clean). A damaged file (power loss
// while it was written) is taken as held by a writer of unknown boot and
// durability: the caller then moves to a new fork, which is always safe.
func readOwner(dir string) (ownerState, error) {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ownerState{}, nil
	}
	if err != nil {
		return ownerState{}, err
	}
	return decodeOwner(b), nil
}

// maxOwnerSize caps the owner file; maxBootID caps the boot ID in it.
const (
	maxOwnerSize = 512
	maxBootID    = 256
)

// decodeOwner decodes the owner file; anything damaged or unknown decodes as
// held by a ForkOnPowerLoss writer of unknown boot (the worst case).
func decodeOwner(b []byte) ownerState {
	damaged := ownerState{held: true, mode: ForkOnPowerLoss}
	if len(b) < 4 || len(b) > maxOwnerSize || crc32.Checksum(b[4:], crcTable) != binary.LittleEndian.Uint32(b) {
		return damaged
	}
	d := decoder{b: b[4:]}
	if v := d.uint(); d.err == nil && v != 1 {
		return damaged
	}
	held, mode := d.uint(), d.uint()
	boot := d.bytes(maxBootID)
	if d.err != nil || d.off != len(b)-4 || held > 1 || mode > uint64(ForkOnPowerLoss) {
		return damaged
	}
	return ownerState{held: held == 1, mode: Durability(mode), boot: string(boot)}
}

// writeOwner replaces the owner file, durably: written, synced, renamed into
// place, directory synced.
func writeOwner(dir string, o ownerState) error {
	if len(o.boot) > maxBootID {
		o.boot = "" // unknown: the safe side
	}
	return replaceFile(dir, ownerFile, o.encode(), true)
}

// mayHaveLostShared reports whether the last writer, found dead, may have
// shared signatures over appends the disk lost.
func (o ownerState) mayHaveLostShared(boot string) bool {
	if !o.held || o.mode != ForkOnPowerLoss {
		return false // closed cleanly, or its writer synced before sharing
	}
	// Same boot: only the process died; everything it wrote is in the
	// operating system's cache and reaches the disk.
	return o.boot == "" || boot == "" || o.boot != boot
}

// bumpFork signs the current length again on the next fork and syncs it, so
// that whatever this feed signs from now on cannot be confused with what a
// lost tail of the old fork signed. Called from Open, before the feed is
// shared with anyone (so without f.mu).
func (f *Feed) bumpFork(why string) error {
	nt := f.t
	nt.fork++
	sig := f.s.sign(nt.hash(), nt.length, nt.fork)
	r := &record{seq: f.seq + 1, synced: f.syncedSeq, upgraded: true, fork: nt.fork, length: nt.length,
		byteLength: nt.byteLength, signature: sig, syncPoint: f.syncPt}
	if err := f.writeRecord(r); err != nil {
		return fmt.Errorf("feed: write the new fork: %w", err)
	}
	f.apply(r)
	if err := f.syncFilesLocked(); err != nil {
		return fmt.Errorf("feed: sync the new fork: %w", err)
	}
	f.log.Warn("feed: "+why+"; moved to a new fork (viewers start again from it)",
		"dir", f.dir, "fork", nt.fork, "length", nt.length)
	return nil
}
