//go:build linux

package invoice

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// TestAdmissionIndexes: the admission step counts a viewer's own invoices through the index by
// (viewer, stream), gives back a ticket's place whether the invoice was made or not, and the
// indexes forget invoices once they are paid or out of their window, so a request never scans
// every invoice issued.
func TestAdmissionIndexes(t *testing.T) {
	dir := t.TempDir()
	clk := mockClock()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Config{
		PriceOf: func(string) (price.Price, bool) { return perMinute, true },
		Ledger:  l, StorePath: filepath.Join(dir, "invoices"),
		OnChain: &OnChain{Key: accountKey(t), Watcher: fakeWatcher{}, GapLimit: 100},
		Clock:   clk, Burst: 1000, RatePerSec: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10}
	ask := func(viewer string) invoicemsg.Answer { return s.Handle(context.Background(), viewer, req) }
	var addrs []string
	for v := 0; v < 20; v++ {
		for i := 0; i < 3; i++ {
			a := ask(fmt.Sprint("viewer", v))
			if a.Code != invoicemsg.OK {
				t.Fatalf("viewer %d invoice %d: %+v", v, i, a)
			}
			addrs = append(addrs, a.Address)
		}
		// A 4th supersedes one of the three and takes over its address.
		if a := ask(fmt.Sprint("viewer", v)); a.Code != invoicemsg.OK || a.Address != addrs[len(addrs)-1] &&
			a.Address != addrs[len(addrs)-2] && a.Address != addrs[len(addrs)-3] {
			t.Fatalf("viewer %d: a 4th invoice: %+v", v, a)
		}
	}
	s.mu.Lock()
	if len(s.pendingViewer) != 0 || s.pendingChain != 0 || len(s.unpaid) != 20 || len(s.waiting) != 60 {
		t.Fatalf("pending %v/%d, unpaid index %d viewers, waiting %d", s.pendingViewer, s.pendingChain, len(s.unpaid), len(s.waiting))
	}
	s.mu.Unlock()
	if st := s.Status(); st.OutstandingAddresses != 60 {
		t.Fatalf("status %+v", st)
	}
	// A payment seen in the mempool takes the invoice out of its viewer's unpaid ones and the
	// address out of those waiting; its revocation puts the address back.
	op := wire.OutPoint{Hash: chainhash.Hash{7}, Index: 1}
	s.OnChainEvent(onchain.Event{Kind: onchain.Seen, OutPoint: op, Address: addrs[0], Sats: 1000})
	if a := ask("viewer0"); a.Code != invoicemsg.OK {
		t.Fatalf("after paying one: %+v", a)
	}
	if st := s.Status(); st.OutstandingAddresses != 60 { // 59 + the new one
		t.Fatalf("after a mempool payment: %+v", st)
	}
	s.OnChainEvent(onchain.Event{Kind: onchain.Gone, OutPoint: op, Address: addrs[0], Sats: 1000, Reason: "double-spent"})
	if st := s.Status(); st.OutstandingAddresses != 61 {
		t.Fatalf("after the payment was revoked: %+v", st)
	}
	// Past expiry and the monitoring window, the indexes drop everything as they meet it.
	clk.Add(25*time.Hour + time.Minute)
	if a := ask("viewer1"); a.Code != invoicemsg.OK {
		t.Fatalf("after the window: %+v", a)
	}
	s.Status()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) != 1 || len(s.unpaid[viewerStream{"viewer1", streamID}]) != 1 || len(s.unpaidLN) != 0 {
		t.Fatalf("indexes keep stale invoices: waiting %d, viewer1 unpaid %d", len(s.waiting), len(s.unpaid[viewerStream{"viewer1", streamID}]))
	}
}
