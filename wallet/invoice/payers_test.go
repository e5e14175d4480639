//go:build linux

package invoice

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
)

// TestHundredOnChainPayersInOneBlockInterval: 100 viewers each ask for an on-chain invoice and
// pay it, ten at a time, with no block mined in between. With the default gap limit (20) every
// one of them gets an address and access: an address paid in the mempool is used (a wallet that
// watches the account key sees the payment), so it no longer holds a place among the addresses
// waiting for payment. Before, the 21st viewer was refused.
func TestHundredOnChainPayersInOneBlockInterval(t *testing.T) {
	node := btcdtest.Setup(t, btcdtest.Options{})
	f := newFixture(t, node, t.TempDir(), func(c *Config) {
		c.RatePerSec, c.Burst = 1000, 1000
	})
	height := node.Height()
	const payers, wave = 100, 10
	for w := 0; w < payers/wave; w++ {
		type paid struct {
			viewer string
			addr   string
		}
		var mu sync.Mutex
		var got []paid
		var wg sync.WaitGroup
		for i := 0; i < wave; i++ {
			viewer := fmt.Sprint("payer", w*wave+i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := f.seller.Handle(t.Context(), viewer, invoicemsg.Request{Stream: streamID, Method: invoicemsg.OnChain, Minutes: 10})
				if a.Code != invoicemsg.OK {
					t.Errorf("viewer %s refused: %s", viewer, a.Error)
					return
				}
				mu.Lock()
				got = append(got, paid{viewer, a.Address})
				mu.Unlock()
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.Fatalf("wave %d: %+v", w, f.seller.Status())
		}
		for _, p := range got {
			addr, err := onchain.ParseAddress(p.addr, btcdtest.Net)
			if err != nil {
				t.Fatal(err)
			}
			node.Pay(addr, 1000)
		}
		for _, p := range got {
			f.waitAccess(p.viewer, 10*time.Minute, false)
		}
		if st := f.seller.Status(); st.OutstandingAddresses != 0 || st.GapLimit != 20 {
			t.Fatalf("wave %d: every address is paid in the mempool, yet %+v", w, st)
		}
	}
	if h := node.Height(); h != height {
		t.Fatalf("a block was mined during the test (%d → %d)", height, h)
	}
	// One block confirms them all.
	node.Generate(1)
	for i := 0; i < payers; i++ {
		f.waitAccess(fmt.Sprint("payer", i), 10*time.Minute, true)
	}
	if st := f.seller.Status(); st.UnusedAddresses != 0 || st.GapAdvice != "" {
		t.Fatalf("after the block: %+v", st)
	}
}
