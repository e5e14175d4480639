package ledger

import (
	"path/filepath"
	"testing"
)

func TestAccountsListsOneStreamsPayers(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "ledger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []struct {
		k  Key
		id string
	}{
		{Key{"s1", "bob"}, "ln:b"},
		{Key{"s1", "alice"}, "ln:a2"},
		{Key{"s1", "alice"}, "ln:a1"},
		{Key{"s2", "carol"}, "ln:c"},
	} {
		if _, err := l.SetCredit(c.k, Credit{ID: c.id, Msat: 1000, Millis: 60_000, State: Settled}); err != nil {
			t.Fatal(err)
		}
	}
	got := l.Accounts("s1")
	if len(got) != 2 || got[0].Key.Viewer != "alice" || got[1].Key.Viewer != "bob" {
		t.Fatalf("accounts %+v", got)
	}
	if len(got[0].Credits) != 2 || got[0].Credits[0].ID != "ln:a1" || got[0].Balance.GrantedMillis != 120_000 {
		t.Fatalf("alice %+v", got[0])
	}
	if len(l.Accounts("none")) != 0 {
		t.Fatal("an unknown stream has accounts")
	}
}
