package invoice

import (
	"bufio"
	"encoding/json"
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

// openStore replays the file and returns the number of records read.
func openStore(path string, onInvoice func(Invoice), onNext func(key string, next uint32)) (*store, int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("invoice: open %s: %w", path, err)
	}
	records := 0
	end, err := journal.ReadFrames(f, func(b []byte) error {
		records++
		var r storeRecord
		if err := json.Unmarshal(b, &r); err != nil {
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
