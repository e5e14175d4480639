package invoice

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/internal/journal"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// Invoice is one issued invoice, as the seller keeps it.
type Invoice struct {
	ID      string            `json:"id"`
	Stream  string            `json:"stream"`
	Viewer  string            `json:"viewer"` // the authenticated peer ID it was issued to
	Method  invoicemsg.Method `json:"method"`
	Sats    uint64            `json:"sats"`
	Price   price.Price       `json:"price"` // the price when issued: payments convert at it
	Created time.Time         `json:"created"`
	Expires time.Time         `json:"expires"`
	Address string            `json:"addr,omitempty"`
	Key     string            `json:"key,omitempty"`   // ID of the account key Address derives from
	Index   uint32            `json:"index,omitempty"` // derivation index of Address
	Hash    string            `json:"hash,omitempty"`  // Lightning payment hash, hex
	Bolt11  string            `json:"bolt11,omitempty"`
	Node    string            `json:"node,omitempty"` // key (hex) of the Lightning node that signed Bolt11
	Paid    bool              `json:"paid,omitempty"` // some payment was seen for it
	// Used: a payment to Address settled (MinConf confirmations). Only used addresses move the
	// wallet's gap window; an unconfirmed payment that is later replaced does not.
	Used bool `json:"used,omitempty"`
	// Supersedes is the ID of the same viewer's invoice for the stream that this one superseded
	// at the per-viewer cap (see desk.go): that one stays payable but no longer counts toward
	// the cap.
	Supersedes string `json:"supersedes,omitempty"`
	// superseded: a newer invoice supersedes this one (known from its Supersedes on load).
	superseded bool
}

// store persists invoices and the next address index in a journal file. Every write is synced
// before the invoice is handed out, so an address is never given to two viewers, even across a
// crash.
type store struct {
	f *os.File
	w *bufio.Writer
}

type storeRecord struct {
	Invoice   *Invoice `json:"inv,omitempty"`
	NextIndex *uint32  `json:"next,omitempty"`
	Key       string   `json:"key,omitempty"` // the account key NextIndex counts for ("" before keys were recorded)
}

// ErrCorrupt means the invoice file is damaged (not merely cut short by a crash): a record that
// fails its checksum, does not decode, could not be written back, or names an address of no
// network. It is ledger.ErrCorrupt too (both files are wallet/internal/journal's).
var ErrCorrupt = journal.ErrCorrupt

// openStore replays the file and returns the number of records read.
func openStore(path string, onInvoice func(Invoice), onNext func(key string, next uint32)) (*store, int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("invoice: open %s: %w", path, err)
	}
	records := 0
	end, err := journal.ReadFrames(f, func(b []byte) error {
		records++
		r, err := decodeStoreRecord(b)
		if err != nil {
			return err
		}
		if r.Invoice != nil {
			onInvoice(*r.Invoice)
		}
		if r.NextIndex != nil {
			onNext(r.Key, *r.NextIndex)
		}
		return nil
	})
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("invoice: reading %s: %w", path, err)
	}
	if err := f.Truncate(end); err != nil {
		f.Close()
		return nil, 0, err
	}
	if _, err := f.Seek(end, 0); err != nil {
		f.Close()
		return nil, 0, err
	}
	return &store{f: f, w: bufio.NewWriter(f)}, records, nil
}

// writeBackRoom is what loading may add to a record before compaction writes it again (the
// account key's ID, the node's key, used).
const writeBackRoom = 512

// decodeStoreRecord decodes one record of the file. Compaction writes each record again: one that
// would not fit a frame then (JSON escapes grow: "<" becomes "\u003c") is not one this package
// wrote, and is refused.
func decodeStoreRecord(b []byte) (storeRecord, error) {
	var r storeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return storeRecord{}, err
	}
	if again, err := json.Marshal(r); err != nil || len(again) > journal.MaxFrame-writeBackRoom {
		return storeRecord{}, errors.New("a record too large to write back")
	}
	return r, nil
}

// rewriteStore replaces the file with the given invoices and next indexes per account key.
func rewriteStore(path string, invoices []*Invoice, next map[string]uint32) error {
	return journal.WriteAtomically(path, func(w io.Writer) error {
		for key, n := range next {
			b, _ := json.Marshal(storeRecord{NextIndex: &n, Key: key})
			if err := journal.AppendFrame(w, b); err != nil {
				return err
			}
		}
		for _, inv := range invoices {
			b, _ := json.Marshal(storeRecord{Invoice: inv})
			if err := journal.AppendFrame(w, b); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) put(r storeRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := journal.AppendFrame(s.w, b); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("invoice: write: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("invoice: sync: %w", err)
	}
	return nil
}

func (s *store) close() error { return s.f.Close() }
