package session

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filecoin-project/go-clock"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
)

// The ledger gate bills each delivered block's media time, except the blocks a viewer needs
// to start at the live edge on its first admission in a broadcast.
func TestLedgerGateBilling(t *testing.T) {
	const viewer = peer.ID("viewer-a")
	tests := []struct {
		name      string
		window    [2]uint64 // newest sync block .. live edge at admission
		admit     int       // allowed checks before the deliveries
		delivered []uint64
		wantUsed  uint64 // ms billed (100 ms a block)
	}{
		{"no join window", [2]uint64{0, 0}, 1, []uint64{10, 11, 12}, 300},
		{"join window free", [2]uint64{10, 13}, 1, []uint64{10, 11, 12, 13, 14}, 200},
		{"past blocks billed", [2]uint64{10, 13}, 1, []uint64{0, 1, 2, 9}, 400},
		{"window kept across rechecks", [2]uint64{10, 13}, 3, []uint64{12, 13}, 100},
		{"not admitted: everything billed", [2]uint64{10, 13}, 0, []uint64{10, 11}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, key := paidMinute(t, viewer)
			calls := 0
			g := &ledgerGate{stream: "s", ledger: l, clock: clock.New(), log: slog.Default(),
				millis: func(uint64) uint64 { return 100 },
				joinWindow: func() (uint64, uint64) {
					calls++
					// The live edge moves on; only the first admission's window counts.
					return tc.window[0] + uint64(calls-1)*10, tc.window[1] + uint64(calls-1)*10
				}}
			for range tc.admit {
				if a, err := g.Check(context.Background(), viewer); err != nil || a.Reason != "" {
					t.Fatalf("check: %+v %v", a, err)
				}
			}
			for _, i := range tc.delivered {
				g.Delivered(viewer, i, 1000)
			}
			if got := l.Balance(key).ConsumedMillis; got != tc.wantUsed {
				t.Fatalf("billed %d ms, want %d", got, tc.wantUsed)
			}
		})
	}
}

// The allowance's deadline is read from the gate's clock (the seller's, which re-asks at it),
// not the system's: with a mock clock it is the mock's now plus the paid time left.
func TestLedgerGateDeadlineUsesItsClock(t *testing.T) {
	const viewer = peer.ID("viewer-a")
	l, _ := paidMinute(t, viewer)
	clk := clock.NewMock()
	clk.Set(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	g := &ledgerGate{stream: "s", ledger: l, clock: clk, log: slog.Default(), millis: func(uint64) uint64 { return 1000 }}
	for _, tc := range []struct {
		name      string
		delivered int // 1 s blocks delivered before the check
		want      time.Duration
	}{
		{"paid minute", 0, time.Minute},
		{"ten seconds watched", 10, 50 * time.Second},
	} {
		for i := range tc.delivered {
			g.Delivered(viewer, uint64(i), 1000)
		}
		a, err := g.Check(context.Background(), viewer)
		if err != nil || a.Reason != "" {
			t.Fatalf("%s: check: %+v %v", tc.name, a, err)
		}
		if want := clk.Now().Add(tc.want); !a.Until.Equal(want) {
			t.Fatalf("%s: allowed until %v, want %v (the mock clock's now + paid time left)", tc.name, a.Until, want)
		}
	}
}

// paidMinute is a ledger in which viewer paid for one minute of stream "s".
func paidMinute(t *testing.T, viewer peer.ID) (*ledger.Ledger, ledger.Key) {
	t.Helper()
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger"), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	key := ledger.Key{Stream: "s", Viewer: viewer.String()}
	if _, err := l.SetCredit(key, ledger.Credit{ID: "ln:x", Msat: 1000, Millis: 60_000, State: ledger.Settled}); err != nil {
		t.Fatal(err)
	}
	return l, key
}

// A viewer refused for want of paid time is told why: nothing paid, an on-chain payment seen
// and waiting for its confirmation (with no provisional access, it buys nothing until then),
// time used up, or a payment revoked (replaced or double-spent).
func TestLedgerGateRefusalReasons(t *testing.T) {
	const viewer = peer.ID("viewer-b")
	cases := []struct {
		name    string
		credits []ledger.Credit
		want    string
	}{
		{"nothing paid", nil, "Not paid yet"},
		{"payment seen, unconfirmed", []ledger.Credit{{ID: "btc:a:0", State: ledger.Provisional}}, "Your payment was seen"},
		{"time used up, then a payment seen", []ledger.Credit{{ID: "ln:x", Msat: 1000, Millis: 1, State: ledger.Settled},
			{ID: "btc:a:0", State: ledger.Provisional}}, "Your payment was seen"},
		{"time used up", []ledger.Credit{{ID: "ln:x", Msat: 1000, Millis: 1, State: ledger.Settled}}, "No paid time left"},
		{"payment revoked", []ledger.Credit{{ID: "btc:a:0", Msat: 1000, Millis: 1, State: ledger.Revoked}}, "Not paid yet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger"), slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			key := ledger.Key{Stream: "s", Viewer: viewer.String()}
			for _, cr := range c.credits {
				if _, err := l.SetCredit(key, cr); err != nil {
					t.Fatal(err)
				}
				if cr.State == ledger.Settled {
					if _, err := l.Consume(key, cr.Millis); err != nil {
						t.Fatal(err)
					}
				}
			}
			g := &ledgerGate{stream: "s", ledger: l, clock: clock.New(), log: slog.Default(), millis: func(uint64) uint64 { return 1 }}
			a, err := g.Check(context.Background(), viewer)
			if err != nil || !strings.HasPrefix(a.Reason, c.want) {
				t.Fatalf("reason %q (%v), want %q…", a.Reason, err, c.want)
			}
		})
	}
}

// TestEarnedSaysPaymentsAwaitingConfirmation: the seller's earnings line names the payments
// seen that count only once confirmed. Before, it read "earned 0 sats (+0 unconfirmed)" while
// a viewer's payment waited in the mempool.
func TestEarnedSaysPaymentsAwaitingConfirmation(t *testing.T) {
	for _, c := range []struct {
		f    BroadcastFigures
		want string
	}{
		{BroadcastFigures{}, "0 sats"},
		{BroadcastFigures{EarnedMsat: 1_200_000, ProvisionalMsat: 300_000}, "1200 sats (+300 unconfirmed)"},
		{BroadcastFigures{Awaiting: 1}, "0 sats, 1 payment waiting for its confirmation"},
		{BroadcastFigures{EarnedMsat: 5000, Awaiting: 2}, "5 sats, 2 payments waiting for their confirmation"},
	} {
		if got := c.f.Earned(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.f, got, c.want)
		}
	}
}
