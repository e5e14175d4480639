// The Lightning side: the settled-invoice subscription, lookups after each (re)connection, and
// settles turned into credit.

package invoice

import (
	"context"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
)

// payee is the node key (hex) that signed a BOLT11 invoice, or "" if it cannot be read.
func payee(bolt11 string) string {
	inv, err := lightning.DecodeBolt11(bolt11)
	if err != nil || len(inv.Payee) == 0 {
		return ""
	}
	return hex.EncodeToString(inv.Payee)
}

// ConnectNotifier is implemented by Lightning backends that can report each (re)connection of
// their subscription (wallet/lightning's client does).
type ConnectNotifier interface {
	RunNotify(ctx context.Context, settleIndex uint64, onSettled func(Settled) error, onConnected func(context.Context)) error
}

// runLightning follows settles until ctx ends, starting over when the node changes.
func (s *Seller) runLightning(ctx context.Context) error {
	for {
		s.mu.Lock()
		node := s.lnNode
		s.mu.Unlock()
		idx := uint64(0)
		if node != "" {
			if v, ok := s.cfg.Ledger.Meta(s.settleKey(node)); ok {
				idx, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		sub, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			onSettled := func(st Settled) error {
				n := node
				if n == "" { // learned since from an invoice the same node signed
					s.mu.Lock()
					n = s.lnNode
					s.mu.Unlock()
				}
				return s.lightningSettled(n, st)
			}
			if n, ok := s.cfg.Lightning.(ConnectNotifier); ok {
				// LND replays nothing for a subscription from index 0, so while no index is
				// stored, settles are looked for by asking about each open invoice after every
				// (re)connection: one may have settled while the subscription was down.
				// The first connection always looks (a settle older than the stored index,
				// or one whose credit failed, is not replayed either).
				first := true
				done <- n.RunNotify(sub, idx, onSettled, func(ctx context.Context) {
					if _, ok := s.cfg.Ledger.Meta(s.settleKey(node)); first || !ok || node == "" {
						if s.reconcileLightning(ctx) {
							first = false
						}
					}
				})
				return
			}
			s.reconcileLightning(sub)
			done <- s.cfg.Lightning.Run(sub, idx, onSettled)
		}()
		select {
		case err := <-done:
			cancel()
			return err
		case <-s.lnRestart:
			cancel()
			<-done
			s.log.Info("invoice: the Lightning node changed; following its settles from its own index")
		}
	}
}

// settleKey names the stored settle index of a node: indexes of different nodes (after a
// migration or a restore) have nothing to do with each other.
func (s *Seller) settleKey(node string) string {
	return "lnd.settle_index." + s.cfg.Lightning.Network() + "." + node
}

// reconcileLightning looks up every Lightning invoice still within its monitoring window that
// the ledger has no credit for, and credits those LND reports settled; it reports whether it
// asked about them all. Until it has done so once in this run (the start-up lookups), the window
// is judged against the time up to which the last runs watched the invoice's node: an invoice
// may have settled while the seller was off, or ran without Lightning, for longer than the window.
func (s *Seller) reconcileLightning(ctx context.Context) bool {
	s.mu.Lock()
	now := s.clock.Now()
	var hashes []string
	for _, inv := range s.invoices {
		if inv.Hash == "" {
			continue
		}
		if inv.Paid { // credited, unless the ledger write failed after all
			if _, ok := s.cfg.Ledger.Credit(ledger.Key{Stream: inv.Stream, Viewer: inv.Viewer}, "ln:"+inv.Hash); ok {
				continue
			}
		}
		if s.lnChecked && !s.monitored(inv, now) || !s.lnChecked && !s.lnOpen(inv) {
			continue
		}
		hashes = append(hashes, inv.Hash)
	}
	s.mu.Unlock()
	all := true
	for _, h := range hashes {
		st, settled, err := s.cfg.Lightning.LookupInvoice(ctx, h)
		if err != nil {
			s.log.Warn("invoice: could not ask LND about an invoice; the subscription will report it if paid", "err", err)
			return false
		}
		if settled {
			if err := s.credit(st); err != nil {
				s.log.Error("invoice: crediting a Lightning payment failed", "err", err)
				all = false
			}
		}
	}
	if all {
		s.mu.Lock()
		s.lnChecked = true
		s.mu.Unlock()
	}
	return all
}

// LightningSettled credits a settled Lightning invoice and then records the settle index of the
// node, so a restart resumes after it; a repeat is credited once.
func (s *Seller) LightningSettled(st Settled) error {
	s.mu.Lock()
	node := s.lnNode
	s.mu.Unlock()
	return s.lightningSettled(node, st)
}

func (s *Seller) lightningSettled(node string, st Settled) error {
	if err := s.credit(st); err != nil {
		return err
	}
	if node == "" { // not known yet: no index is stored, open invoices are looked up instead
		return nil
	}
	// The index only moves forward (a lookup may credit an older settle).
	key := s.settleKey(node)
	if v, ok := s.cfg.Ledger.Meta(key); ok {
		if cur, _ := strconv.ParseUint(v, 10, 64); cur >= st.SettleIndex {
			return nil
		}
	}
	return s.cfg.Ledger.SetMeta(key, strconv.FormatUint(st.SettleIndex, 10))
}

// credit turns a settled Lightning invoice of ours into ledger credit, once.
func (s *Seller) credit(st Settled) error {
	s.mu.Lock()
	inv := s.byHash[st.Hash]
	if inv == nil {
		s.mu.Unlock()
		s.log.Debug("invoice: settled Lightning invoice that is not ours", "hash", st.Hash)
		return nil
	}
	key := ledger.Key{Stream: inv.Stream, Viewer: inv.Viewer}
	paid := st.AmtPaidMsat / 1000
	c := ledger.Credit{ID: "ln:" + st.Hash, Msat: st.AmtPaidMsat, Millis: inv.Price.MillisFor(st.AmtPaidMsat),
		State: ledger.Settled, Note: describe(inv, paid, s.clock.Now().After(inv.Expires))}
	s.mu.Unlock()
	// The credit first: an invoice marked paid is never looked up again, so marking it before
	// a ledger write that fails would lose the payment.
	changed, err := s.cfg.Ledger.SetCredit(key, c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	err = s.markPaid(inv, false)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if changed {
		s.log.Info("invoice: Lightning payment", "invoice", inv.ID, "viewer", inv.Viewer, "msat", st.AmtPaidMsat,
			"access", time.Duration(c.Millis)*time.Millisecond)
	}
	return nil
}
