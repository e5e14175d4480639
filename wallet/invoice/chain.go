// The chain side: watcher events become credit, the gap limit's bookkeeping, the scanned height.

package invoice

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/dazaarvision/dazaar-vision/internal/human"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
)

// outstanding counts the current key's addresses that await a payment and may still get one
// credited (unexpired, or within the monitoring window). An address with a live payment (seen in
// the mempool or confirmed, and not revoked) is used, not outstanding: a wallet that watches the
// account key sees the payment and moves its gap window past it, so it holds no place among the
// GapLimit. A payment that is revoked (double-spent, dropped) gives the place back. It looks only
// at the addresses still waiting, dropping those past their window. Locked.
func (s *Seller) outstanding(now time.Time) int {
	n := 0
	for addr, inv := range s.waiting {
		switch {
		case inv.Used || now.After(inv.Expires.Add(s.cfg.Monitoring)):
			delete(s.waiting, addr)
		case len(s.live[addr]) == 0:
			n++
		}
	}
	return n
}

// setLive records that payment id to addr is live (seen, not revoked) or not. Locked.
func (s *Seller) setLive(addr, id string, live bool) {
	m := s.live[addr]
	if live {
		if m == nil {
			m = map[string]struct{}{}
			s.live[addr] = m
		}
		m[id] = struct{}{}
		return
	}
	delete(m, id)
	if len(m) == 0 {
		delete(s.live, addr)
	}
}

// markPaid records that a payment was seen for inv; used also that one settled, which moves
// the wallet's gap window. Locked.
func (s *Seller) markPaid(inv *Invoice, used bool) error {
	used = used && inv.Address != ""
	if inv.Paid && (inv.Used || !used) {
		return nil
	}
	c := *inv
	c.Paid, c.Used = true, c.Used || used
	if err := s.st.put(storeRecord{Invoice: &c}); err != nil {
		return err
	}
	inv.Paid, inv.Used = c.Paid, c.Used
	s.dropUnpaid(inv)
	if inv.Used && inv.Key == s.keyID {
		s.usedUpTo = max(s.usedUpTo, int64(inv.Index))
		if s.waiting[inv.Address] == inv {
			delete(s.waiting, inv.Address)
		}
	}
	return nil
}

// describe says in plain words how a payment compares with its invoice.
func describe(inv *Invoice, paidSats uint64, late bool) string {
	var msg string
	switch {
	case paidSats < inv.Sats:
		msg = fmt.Sprintf("underpaid: %d of %d sats, credited as %s of access", paidSats, inv.Sats, human.Duration(inv.Price.DurationFor(paidSats)))
	case paidSats > inv.Sats:
		msg = fmt.Sprintf("overpaid: %d sats for a %d-sat invoice, all credited as %s of access", paidSats, inv.Sats, human.Duration(inv.Price.DurationFor(paidSats)))
	default:
		msg = fmt.Sprintf("paid in full: %s of access", human.Duration(inv.Price.DurationFor(paidSats)))
	}
	if late {
		msg += "; paid after the invoice expired, credited anyway"
	}
	return msg
}

// quoted is the invoice whose amount a payment of paid sats to inv's address answers, for the
// payment's note: inv, or an earlier unpaid invoice of the same viewer and stream for the same
// address and price asking exactly that amount (one inv superseded and took the address over
// from, or one that expired before inv reused its address), so that paying the amount of an
// invoice shown earlier is not called an under- or overpayment. The credit does not depend on
// it: it is what was paid, at inv's price. Locked.
func (s *Seller) quoted(inv *Invoice, paid uint64) *Invoice {
	if paid == inv.Sats {
		return inv
	}
	for o := range s.unpaid[viewerStream{inv.Viewer, inv.Stream}] {
		if o != inv && o.Address == inv.Address && o.Sats == paid && o.Price == inv.Price {
			return o
		}
	}
	return inv
}

// OnChainEvent turns a watcher event into ledger credit. Pass it as the watcher's OnEvent.
func (s *Seller) OnChainEvent(e onchain.Event) {
	if err := s.onChainEvent(e); err != nil {
		s.log.Error("invoice: crediting an on-chain payment failed; it will be retried on the next event", "err", err,
			"outpoint", e.OutPoint.String())
	}
}

func (s *Seller) onChainEvent(e onchain.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.byAddress[e.Address]
	if inv == nil {
		s.log.Warn("invoice: payment to an address with no invoice", "address", e.Address, "sats", e.Sats)
		return nil
	}
	key := ledger.Key{Stream: inv.Stream, Viewer: inv.Viewer}
	id := "btc:" + e.OutPoint.String()
	paid := uint64(max(e.Sats, 0))
	late := s.clock.Now().After(inv.Expires)
	if old, ok := s.cfg.Ledger.Credit(key, id); ok {
		late = strings.Contains(old.Note, "after the invoice expired")
	}
	c := ledger.Credit{ID: id}
	switch {
	case e.Kind == onchain.Gone:
		delete(s.provisional, id)
		s.setLive(e.Address, id, false)
		old, ok := s.cfg.Ledger.Credit(key, id)
		if !ok {
			return nil
		}
		c.Msat, c.Millis, c.State = old.Msat, old.Millis, ledger.Revoked
		c.Note = "revoked: " + e.Reason
	case e.Kind == onchain.Confirmed && e.Confirmations >= s.cfg.OnChain.MinConf:
		delete(s.provisional, id)
		s.setLive(e.Address, id, true)
		c.Msat = paid * 1000
		c.Millis = inv.Price.MillisFor(c.Msat)
		c.State = ledger.Settled
		c.Height = e.Height
		c.Note = describe(s.quoted(inv, paid), paid, late)
	default: // in the mempool, or confirmed fewer times than MinConf
		s.provisional[id] = provPayment{sats: paid, address: e.Address}
		s.setLive(e.Address, id, true)
		c = s.provisionalCredit(inv, key, id, paid, late, e.Reason)
	}
	if old, ok := s.cfg.Ledger.Credit(key, id); ok && old.State == c.State && old.Msat == c.Msat && old.Millis == c.Millis && old.Height == c.Height {
		return nil
	}
	// The credit first: should marking the invoice fail, the credit is still there and the
	// invoice is resumed from the ledger after a restart.
	if _, err := s.cfg.Ledger.SetCredit(key, c); err != nil {
		return err
	}
	s.log.Info("invoice: on-chain payment", "invoice", inv.ID, "viewer", inv.Viewer, "state", c.State.String(),
		"sats", paid, "access", time.Duration(c.Millis)*time.Millisecond, "note", c.Note)
	if c.State != ledger.Revoked {
		if err := s.markPaid(inv, c.State == ledger.Settled); err != nil {
			return err
		}
	}
	if c.State != ledger.Provisional {
		// The cap this payment held is free again: other unconfirmed payments of the same
		// viewer (a fee bump replacing this one, say) may now count in full.
		s.refillProvisional(key, id)
	}
	return nil
}

// provisionalCredit is the credit an unconfirmed payment of paid sats earns: what the viewer's
// cap leaves after their other unconfirmed payments. Locked.
func (s *Seller) provisionalCredit(inv *Invoice, key ledger.Key, id string, paid uint64, late bool, reason string) ledger.Credit {
	capMsat := s.cfg.OnChain.ProvisionalCapSats * 1000
	for _, o := range s.cfg.Ledger.Credits(key) {
		if o.State == ledger.Provisional && o.ID != id {
			capMsat -= min(capMsat, o.Msat)
		}
	}
	if total := s.cfg.OnChain.ProvisionalTotalCapSats * 1000; total > 0 {
		seen := map[ledger.Key]bool{}
		for _, i := range s.byAddress {
			k := ledger.Key{Stream: i.Stream, Viewer: i.Viewer}
			if !i.Paid || seen[k] {
				continue
			}
			seen[k] = true
			for _, o := range s.cfg.Ledger.Credits(k) {
				if o.State == ledger.Provisional && o.ID != id {
					total -= min(total, o.Msat)
				}
			}
		}
		capMsat = min(capMsat, total)
	}
	c := ledger.Credit{ID: id, State: ledger.Provisional, Msat: min(paid*1000, capMsat)}
	c.Millis = inv.Price.MillisFor(c.Msat)
	q := s.quoted(inv, paid)
	c.Note = "unconfirmed; provisional until confirmed: " + describe(q, paid, late)
	if reason != "" {
		c.Note = "unconfirmed again (" + reason + "): " + describe(q, paid, late)
	}
	return c
}

// refillProvisional raises key's other unconfirmed credits that the cap had cut, now that the
// credit done no longer counts against it. Locked.
func (s *Seller) refillProvisional(key ledger.Key, done string) {
	for _, o := range s.cfg.Ledger.Credits(key) {
		p, ok := s.provisional[o.ID]
		if o.State != ledger.Provisional || o.ID == done || !ok || o.Msat >= p.sats*1000 {
			continue
		}
		inv := s.byAddress[p.address]
		if inv == nil {
			continue
		}
		c := s.provisionalCredit(inv, key, o.ID, p.sats, strings.Contains(o.Note, "after the invoice expired"), "")
		if c.Msat <= o.Msat {
			continue
		}
		c.Note = o.Note
		if _, err := s.cfg.Ledger.SetCredit(key, c); err != nil {
			s.log.Error("invoice: raising an unconfirmed payment's credit failed", "err", err, "credit", o.ID)
			return
		}
	}
}

type provPayment struct {
	sats    uint64
	address string
}

func heightKey(net *chaincfg.Params) string { return "onchain.height." + onchain.NetworkName(net) }

// ResumeHeight is the block from which a watcher should scan after a restart so that no payment
// confirmed while the app was down is missed: a few blocks (reorg depth) below the highest block
// the last run scanned, or 0 (the watcher's default) on a first run. Pass it as
// WatchConfig.StartHeight.
func ResumeHeight(l *ledger.Ledger, net *chaincfg.Params) int32 {
	v, ok := l.Meta(heightKey(net))
	if !ok {
		return 0
	}
	h, err := strconv.ParseInt(v, 10, 32)
	if err != nil || h <= 0 {
		return 0
	}
	return int32(max(1, h-6))
}

// saveHeights records how far the watcher has scanned, every 2 s (a write only when a block
// came) and when ctx ends.
func (s *Seller) saveHeights(ctx context.Context) {
	key := heightKey(s.cfg.OnChain.Key.Net())
	save := func() {
		h := s.cfg.OnChain.Watcher.Height()
		if h <= 0 {
			return
		}
		if v, ok := s.cfg.Ledger.Meta(key); ok {
			if cur, _ := strconv.ParseInt(v, 10, 32); int32(cur) >= h {
				return
			}
		}
		if err := s.cfg.Ledger.SetMeta(key, strconv.Itoa(int(h))); err != nil {
			s.log.Error("invoice: saving the scanned block height failed", "err", err)
		}
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	saveUntilDone(ctx, t.C, save)
}

// saveUntilDone calls save at every tick and once more when ctx ends, then returns.
func saveUntilDone(ctx context.Context, tick <-chan time.Time, save func()) {
	for {
		select {
		case <-ctx.Done():
			save()
			return
		case <-tick:
			save()
		}
	}
}
