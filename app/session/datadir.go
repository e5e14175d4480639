package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/atomicfile"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

// DataDir is the one directory a user's state lives in:
//
//	streams/<feed key hex>/feed/      my streams' feeds (resumable)
//	streams/<feed key hex>/stream.json  their settings and card
//	watched/<feed key hex>/feed/      streams I watched (sparse, verified copies)
//	watched/<feed key hex>/watched.json  the card, when, and my purchases
//	wallet/ledger, wallet/invoices    the seller's sales and issued invoices
//	settings.json                     payment back-ends and quotas (no secrets)
//
// Secrets (feed signing seeds, the network identity, LND credentials, the on-chain account key
// and the node's RPC password and certificate) are never here: they are
// in the secret store (app/secrets).
type DataDir struct{ Root string }

// OpenDataDir makes sure root exists (mode 0700: it holds what you watched and sold).
func OpenDataDir(root string) (DataDir, error) {
	if root == "" {
		return DataDir{}, errors.New("no data directory given")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return DataDir{}, fmt.Errorf("cannot make the data directory %s: %w", root, err)
	}
	return DataDir{Root: root}, nil
}

// DefaultDataDir is the per-user data directory of the platform.
func DefaultDataDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "dazaar-vision", "data")
	}
	return "dazaar-vision-data"
}

func (d DataDir) streamDir(id string) string  { return filepath.Join(d.Root, "streams", id) }
func (d DataDir) watchedDir(id string) string { return filepath.Join(d.Root, "watched", id) }
func (d DataDir) walletDir() string           { return filepath.Join(d.Root, "wallet") }

// StreamRecord is one of my streams: what a resume needs besides the feed and its key.
type StreamRecord struct {
	ID          string    `json:"id"` // feed key, hex
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Preset      string    `json:"preset"`
	Card        string    `json:"card"`  // the card as last shared
	Price       string    `json:"price"` // as price.Parse reads it
	Created     time.Time `json:"created"`
	LastLive    time.Time `json:"lastLive"`
	Blocks      uint64    `json:"blocks"`
	Bytes       uint64    `json:"bytes"`
}

// WatchedRecord is a stream I watched: the card to open it again, and what I bought.
type WatchedRecord struct {
	ID          string     `json:"id"`
	Card        string     `json:"card"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	LastWatched time.Time  `json:"lastWatched"`
	Purchases   []Purchase `json:"purchases,omitempty"`
	Bytes       uint64     `json:"bytes"` // stored on disk, for the quota
}

// Purchase is an invoice the viewer was given and checked (asked for: whether it was paid is
// the seller's to say, in its access figures).
type Purchase struct {
	InvoiceID string    `json:"invoice"`
	Method    string    `json:"method"`
	Sats      uint64    `json:"sats"`
	Millis    uint64    `json:"ms"`
	URI       string    `json:"uri"`
	Requested time.Time `json:"requested"`
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(path, bytes.NewReader(append(b, '\n')), true); err != nil {
		return fmt.Errorf("cannot save %s: %w", filepath.Base(path), err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is damaged: %w", path, err)
	}
	return nil
}

// MyStreams lists my streams, newest live first. Blocks and Bytes are read from each feed's
// head, read-only (feed.ReadHead: no lock taken, nothing written), so a stream live right now in
// another process, or whose process was killed, shows what its feed holds; stream.json's figures
// (saved while live and at a clean stop) stand in only when the feed cannot be read.
func (d DataDir) MyStreams() ([]StreamRecord, error) {
	var out []StreamRecord
	err := d.each("streams", "stream.json", func(b []byte) error {
		var r StreamRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if h, err := feed.ReadHead(filepath.Join(d.streamDir(r.ID), "feed")); err == nil {
			r.Blocks, r.Bytes = h.Length, h.ByteLength
		}
		out = append(out, r)
		return nil
	})
	slices.SortFunc(out, func(a, b StreamRecord) int { return b.LastLive.Compare(a.LastLive) })
	return out, err
}

// Watched lists the streams I watched, most recent first.
func (d DataDir) Watched() ([]WatchedRecord, error) {
	var out []WatchedRecord
	err := d.each("watched", "watched.json", func(b []byte) error {
		var r WatchedRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	slices.SortFunc(out, func(a, b WatchedRecord) int { return b.LastWatched.Compare(a.LastWatched) })
	return out, err
}

func (d DataDir) each(sub, file string, fn func([]byte) error) error {
	ents, err := os.ReadDir(filepath.Join(d.Root, sub))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.Root, sub, e.Name(), file))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = fn(b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", sub, e.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (d DataDir) saveStream(r StreamRecord) error {
	return writeJSON(filepath.Join(d.streamDir(r.ID), "stream.json"), r)
}

// removeStream removes one of my streams (its feed and record) from the data directory.
func (d DataDir) removeStream(id string) error {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return fmt.Errorf("no stream of yours has the ID %q", id)
	}
	if err := os.RemoveAll(d.streamDir(id)); err != nil {
		return fmt.Errorf("cannot remove the stream that did not go live: %w", err)
	}
	return nil
}

// Stream is one of my streams by ID.
func (d DataDir) Stream(id string) (StreamRecord, error) { return d.loadStream(id) }

func (d DataDir) loadStream(id string) (StreamRecord, error) {
	var r StreamRecord
	err := readJSON(filepath.Join(d.streamDir(id), "stream.json"), &r)
	if errors.Is(err, fs.ErrNotExist) {
		return r, fmt.Errorf("no stream of yours has the ID %s", id)
	}
	return r, err
}

func (d DataDir) saveWatched(r WatchedRecord) error {
	return writeJSON(filepath.Join(d.watchedDir(r.ID), "watched.json"), r)
}

// loadWatched reads a watched stream's record; none yet is an empty record. A damaged one is
// moved aside (watched.json.damaged, replacing an older one there), so that the record saved
// next, which starts empty, does not overwrite the purchases it may still show a person.
func (d DataDir) loadWatched(id string, log *slog.Logger) WatchedRecord {
	var r WatchedRecord
	path := filepath.Join(d.watchedDir(id), "watched.json")
	err := readJSON(path, &r)
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
	default:
		aside := path + ".damaged"
		if rerr := os.Rename(path, aside); rerr != nil {
			log.Warn("a watched stream's record cannot be read or moved aside; a new one replaces it", "err", err, "move", rerr)
		} else {
			log.Warn("a watched stream's record cannot be read; it is kept beside the new one", "err", err, "kept", aside)
		}
		r = WatchedRecord{}
	}
	return r
}

var _ = card.Card{}
