// The desk's front: a viewer's request is admitted against the caps (a ticket holds its place
// while the invoice is made), then answered with an invoice.
//
// The per-viewer cap (Config.PerViewer) does not refuse: a viewer who compares amounts (the
// window's "Another amount", the command line's "buy N") asks again and again and cannot see
// the invoices they were shown before, so refusing them locked them out of buying for the
// invoice expiry, even right after their paid time ran out. At the cap, a request supersedes the
// viewer's oldest unpaid, unexpired invoice for the stream instead: that invoice stops counting
// toward the cap but stays payable and is still credited (a Lightning invoice stays open at LND
// until its expiry and counts toward MaxOutstandingLN until then; an address keeps mapping to
// the same viewer and stream), and an on-chain request takes over its address, so one viewer
// holds at most PerViewer addresses however often they ask. Bounding what the seller can be made
// to create was never the per-viewer cap's job: peer IDs cost nothing, and a client that makes
// new ones meets no per-viewer cap at all. The global caps do it, for any number of viewers: the
// creation rate, MaxOutstandingLN, and the gap limit on the addresses waiting for payment.

package invoice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/dazaarvision/dazaar-vision/internal/human"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
)

// viewerStream keys the desk's per-viewer indexes.
type viewerStream struct{ viewer, stream string }

// ticket is an admitted request: it holds a place against the desk's caps (per viewer, unpaid
// Lightning invoices, addresses waiting for payment) while its invoice is made, so that
// concurrent requests cannot slip past them, until release.
type ticket struct {
	s     *Seller
	key   viewerStream
	ln    bool // holds a place among unpaid Lightning invoices
	fresh bool // holds a place among the addresses waiting for payment
	// reuse is an unpaid invoice of this viewer whose address is handed out again: the one
	// superseded, or one that expired, or one superseded earlier by a request without an address.
	reuse *Invoice
	// old is the invoice this request supersedes (nil below the per-viewer cap): taken out of
	// the viewer's count at admission, and counted again if no invoice is issued after all.
	old    *Invoice
	issued bool // the invoice is indexed
	now    time.Time
	done   bool
}

// lightningAnswerTimeout bounds the wait for the seller's LND to make an invoice: well under a
// viewer's wait for an answer (30 s in app/session), so a node that does not answer is said to
// the viewer as such, with the on-chain way out, instead of the viewer giving up first; and the
// requests queued behind it are not held for long.
var lightningAnswerTimeout = 10 * time.Second // a variable for tests only

// admit is the admission step: it checks a request against the caps using the indexes (this
// viewer's unpaid invoices, the unpaid Lightning invoices, the addresses waiting for payment)
// and the global rate limit, and returns a ticket holding the request's place, or the refusal.
// At the per-viewer cap the ticket supersedes the viewer's oldest unpaid, unexpired invoice for
// the stream (see the file comment); the global caps refuse as before, whoever asks.
func (s *Seller) admit(viewer, stream string, wantChain, wantLN bool) (*ticket, invoicemsg.Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	key := viewerStream{viewer, stream}
	mine, oldest, reuse := s.viewerInvoices(key, now, wantChain)
	var old *Invoice
	if mine+s.pendingViewer[key] >= s.cfg.PerViewer {
		if oldest == nil {
			// Only requests still being answered fill the cap: a client asking many times at
			// once, not a person comparing amounts.
			return nil, refuse(invoicemsg.RateLimited, "your earlier requests for this stream are still being answered; try again in a moment")
		}
		old = oldest
		if wantChain && s.reusable(old) {
			// The superseded invoice's address: the same viewer's, so no privacy cost, and no
			// new address to count toward the gap limit.
			reuse = old
		}
	}
	if wantLN && s.unpaidLNLocked(now)+s.pendingLN >= s.cfg.MaxOutstandingLN {
		return nil, refuse(invoicemsg.RateLimited, "the seller has too many unpaid Lightning invoices; try again in a few minutes")
	}
	fresh := wantChain && reuse == nil
	if fresh {
		if out := s.outstanding(now) + s.pendingChain; out >= int(s.cfg.OnChain.GapLimit) {
			s.log.Warn("invoice: on-chain invoice refused: as many addresses as the gap limit are waiting for payment. "+
				"Raise the gap limit in your wallet (e.g. Electrum, Sparrow: wallet settings) and in Dazaar Vision's "+
				"settings together to allow more at once",
				"gap_limit", s.cfg.OnChain.GapLimit, "outstanding_addresses", out)
			return nil, refuse(invoicemsg.Unavailable, "the seller cannot hand out more bitcoin addresses right now; try Lightning or again later")
		}
	}
	if !s.limiter.AllowN(now, 1) {
		return nil, refuse(invoicemsg.RateLimited, "the seller is creating too many invoices; try again in a few seconds")
	}
	if old != nil {
		old.superseded = true // no longer counted, nor superseded again, while this one is made
	}
	s.pendingViewer[key]++
	if wantLN {
		s.pendingLN++
	}
	if fresh {
		s.pendingChain++
	}
	return &ticket{s: s, key: key, ln: wantLN, fresh: fresh, reuse: reuse, old: old, now: now}, invoicemsg.Answer{}
}

// releaseLocked gives the ticket's places back; once the invoice is indexed it is counted there
// instead. Without an invoice, the one it was to supersede counts again. Idempotent. Locked.
func (t *ticket) releaseLocked() {
	if t.done {
		return
	}
	t.done = true
	s := t.s
	if t.old != nil && !t.issued {
		t.old.superseded = false
	}
	if s.pendingViewer[t.key]--; s.pendingViewer[t.key] <= 0 {
		delete(s.pendingViewer, t.key)
	}
	if t.ln {
		s.pendingLN--
	}
	if t.fresh {
		s.pendingChain--
	}
}

func (t *ticket) release() {
	t.s.mu.Lock()
	t.releaseLocked()
	t.s.mu.Unlock()
}

// viewerInvoices counts key's unpaid, unexpired invoices that are not superseded and finds the
// oldest of them (the one a request at the cap supersedes). If chain is set, it also finds an
// unpaid invoice of theirs (still monitored) whose address should be handed out again rather
// than a fresh one: an expired one, or one superseded by a request that needed no address. A
// payment to it still goes to the same viewer and stream. It drops invoices past their
// monitoring window from the index. Locked.
func (s *Seller) viewerInvoices(key viewerStream, now time.Time, chain bool) (mine int, oldest, reuse *Invoice) {
	m := s.unpaid[key]
	for inv := range m {
		switch {
		case now.After(inv.Expires.Add(s.cfg.Monitoring)):
			delete(m, inv)
		case !now.After(inv.Expires) && !inv.superseded:
			mine++
			if oldest == nil || inv.Created.Before(oldest.Created) || inv.Created.Equal(oldest.Created) && inv.ID < oldest.ID {
				oldest = inv
			}
		case chain && s.reusable(inv) && (reuse == nil || inv.Index < reuse.Index):
			reuse = inv
		}
	}
	if m != nil && len(m) == 0 {
		delete(s.unpaid, key)
	}
	return mine, oldest, reuse
}

// reusable reports whether inv's address may be handed out again to its viewer: an address of
// the current account key whose newest invoice inv is (not one a newer invoice took over). inv is
// unpaid, so no payment to the address was seen. Locked.
func (s *Seller) reusable(inv *Invoice) bool {
	return inv.Address != "" && inv.Key == s.keyID && s.byAddress[inv.Address] == inv
}

// unpaidLNLocked counts the unpaid, unexpired Lightning invoices, dropping expired ones from
// the index (an expired invoice cannot be paid). Locked.
func (s *Seller) unpaidLNLocked(now time.Time) int {
	for inv := range s.unpaidLN {
		if now.After(inv.Expires) {
			delete(s.unpaidLN, inv)
		}
	}
	return len(s.unpaidLN)
}

func refuse(code invoicemsg.Code, format string, args ...any) invoicemsg.Answer {
	return invoicemsg.Answer{Code: code, Error: fmt.Sprintf(format, args...)}
}

// Memo is the Lightning invoice description binding an invoice to a stream and a viewer, in the
// form the original Dazaar used.
func Memo(stream, viewer string) string { return "dazaar: " + stream + " " + viewer }

// Handle answers viewer's request. viewer must be the peer ID the transport authenticated.
func (s *Seller) Handle(ctx context.Context, viewer string, req invoicemsg.Request) invoicemsg.Answer {
	if viewer == "" || len(viewer) > ledger.MaxIDLen {
		return refuse(invoicemsg.BadRequest, "unauthenticated viewer")
	}
	if err := req.Validate(); err != nil {
		return refuse(invoicemsg.BadRequest, "%v", err)
	}
	p, ok := s.cfg.PriceOf(req.Stream)
	if !ok {
		return refuse(invoicemsg.Refused, "this seller does not sell stream %q", req.Stream)
	}
	if p.IsFree() {
		return refuse(invoicemsg.Refused, "this stream is free; no payment needed")
	}
	sats := req.Sats
	if req.Minutes > 0 {
		var err error
		if sats, err = p.CostSats(time.Duration(req.Minutes) * time.Minute); err != nil {
			return refuse(invoicemsg.BadRequest, "%v", err)
		}
	}
	wantChain := req.Method == invoicemsg.OnChain || req.Method == invoicemsg.Any
	wantLN := req.Method == invoicemsg.Lightning || req.Method == invoicemsg.Any
	if wantChain && s.cfg.OnChain == nil {
		return refuse(invoicemsg.Unavailable, "this seller takes Lightning payments only")
	}
	if wantLN && s.cfg.Lightning == nil {
		return refuse(invoicemsg.Unavailable, "this seller takes on-chain payments only")
	}
	if wantChain && sats < s.cfg.OnChain.MinSats {
		way := "buy more time"
		if s.cfg.Lightning != nil {
			way += " or pay with Lightning"
		}
		return refuse(invoicemsg.Refused, "on-chain payments start at %d sats (fees make smaller ones impractical); %s", s.cfg.OnChain.MinSats, way)
	}

	t, refusal := s.admit(viewer, req.Stream, wantChain, wantLN)
	if t == nil {
		return refusal
	}
	defer t.release()
	now, reuse := t.now, t.reuse

	idb := make([]byte, 16)
	rand.Read(idb)
	inv := &Invoice{ID: hex.EncodeToString(idb), Stream: req.Stream, Viewer: viewer, Method: req.Method, Sats: sats,
		Price: p, Created: now, Expires: now.Add(s.cfg.Expiry)}
	if t.old != nil {
		inv.Supersedes = t.old.ID // recorded with the invoice: the next New knows it too
	}
	if wantChain && reuse != nil && !inv.Created.After(reuse.Created) {
		// The address's newest invoice is the one created last (index, whatever order the
		// store is replayed in): make that strict even where the clock has not moved since
		// the invoice whose address this one takes over.
		inv.Created = reuse.Created.Add(time.Nanosecond)
	}
	if wantLN {
		lnCtx, cancel := context.WithTimeout(ctx, lightningAnswerTimeout)
		hash, bolt11, err := s.cfg.Lightning.AddInvoice(lnCtx, sats*1000, Memo(req.Stream, viewer), s.cfg.Expiry)
		cancel()
		if err != nil {
			s.log.Error("invoice: Lightning node refused an invoice", "err", err)
			return refuse(invoicemsg.Unavailable, "the seller's Lightning node is not answering; try again later or pay on-chain")
		}
		inv.Hash, inv.Bolt11, inv.Node = hash, bolt11, payee(bolt11)
		if k := inv.Node; k != "" {
			s.mu.Lock()
			old := s.lnNode
			s.lnNode = k
			s.mu.Unlock()
			if old != "" && old != k {
				s.log.Warn("invoice: the Lightning node is not the one that signed earlier invoices", "was", old, "now", k)
				select {
				case s.lnRestart <- struct{}{}:
				default:
				}
			}
		}
	}
	var addr btcutil.Address
	if wantChain {
		inv.Key = s.keyID
		if reuse != nil {
			inv.Index = reuse.Index
		} else {
			// Reserve the address index durably before anyone sees it (and only once the
			// Lightning half, if any, exists: a failure there costs no address).
			s.mu.Lock()
			next := s.next[s.keyID] + 1
			if err := s.st.put(storeRecord{NextIndex: &next, Key: s.keyID}); err != nil {
				s.mu.Unlock()
				s.log.Error("invoice: saving invoice failed", "err", err)
				return refuse(invoicemsg.Unavailable, "the seller could not save the invoice")
			}
			inv.Index = next - 1
			s.next[s.keyID] = next
			s.mu.Unlock()
		}
		a, err := s.cfg.OnChain.Key.Address(inv.Index)
		if err != nil {
			s.log.Error("invoice: deriving an address failed", "index", inv.Index, "err", err)
			return refuse(invoicemsg.Unavailable, "the seller could not make a bitcoin address; try again or pay with Lightning")
		}
		addr, inv.Address = a, a.EncodeAddress()
	}
	s.mu.Lock()
	err := s.st.put(storeRecord{Invoice: inv})
	if err == nil {
		s.index(inv) // counted by the indexes from now on: the ticket's place is no longer needed
		t.issued = true
		t.releaseLocked()
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("invoice: saving invoice failed", "err", err)
		return refuse(invoicemsg.Unavailable, "the seller could not save the invoice")
	}
	if addr != nil {
		if err := s.cfg.OnChain.Watcher.Watch(addr); err != nil {
			s.log.Error("invoice: the watcher refused an address", "address", inv.Address, "err", err)
			return refuse(invoicemsg.Unavailable, "the seller cannot watch for bitcoin payments right now; try again or pay with Lightning")
		}
	}
	ans := invoicemsg.Answer{ID: inv.ID, Stream: inv.Stream, Method: inv.Method, Sats: sats,
		Millis: p.MillisFor(sats * 1000), ExpiresAt: inv.Expires.Unix(), Address: inv.Address, Bolt11: inv.Bolt11}
	if wantChain {
		ans.Network = onchain.NetworkName(s.cfg.OnChain.Key.Net())
		ans.URI = onchain.PaymentURI{Address: inv.Address, Sats: sats, Label: s.cfg.Label,
			Message:   fmt.Sprintf("%s of stream %s", human.Duration(time.Duration(ans.Millis)*time.Millisecond), short(inv.Stream)),
			Lightning: inv.Bolt11}.String()
	} else {
		ans.Network = s.cfg.Lightning.Network()
		ans.URI = "lightning:" + inv.Bolt11
	}
	s.log.Info("invoice: issued", "id", inv.ID, "stream", inv.Stream, "viewer", viewer, "sats", sats, "method", inv.Method.String(),
		"supersedes", inv.Supersedes)
	return ans
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
