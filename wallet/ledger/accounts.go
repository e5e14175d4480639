package ledger

import (
	"slices"
	"strings"
)

// Account is one viewer's standing for one stream, as the seller's sales list shows it.
type Account struct {
	Key     Key
	Balance Balance
	Credits []Credit // ordered by ID
}

// Accounts lists every account of stream that holds at least one credit, ordered by viewer.
func (l *Ledger) Accounts(stream string) []Account {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Account
	for k, a := range l.accounts {
		if k.Stream != stream || len(a.credits) == 0 {
			continue
		}
		acc := Account{Key: k, Balance: a.bal}
		for _, c := range a.credits {
			acc.Credits = append(acc.Credits, c)
		}
		slices.SortFunc(acc.Credits, func(x, y Credit) int { return strings.Compare(x.ID, y.ID) })
		out = append(out, acc)
	}
	slices.SortFunc(out, func(x, y Account) int { return strings.Compare(x.Key.Viewer, y.Key.Viewer) })
	return out
}
