// Package nodetest gives tests outside the wallet (the app's end-to-end tests) the wallet's
// real-node harnesses: a btcd simnet node and LND nodes on it, built by scripts/tools.sh.
// A missing binary fails the test; nothing here skips.
package nodetest

import (
	"testing"

	"github.com/dazaarvision/dazaar-vision/wallet/internal/btcdtest"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/lndtest"
)

// Btcd is a running btcd simnet node; LND is a running LND.
type (
	Btcd = btcdtest.Node
	LND  = lndtest.Node
)

// StartBtcd runs btcd in simnet with RPC over TLS (LND needs it), mined past segwit.
func StartBtcd(t testing.TB) *Btcd { return btcdtest.Setup(t, btcdtest.Options{TLS: true}) }

// StartLND runs an LND named name on btcd and waits until it is synced.
func StartLND(t testing.TB, name string, btcd *Btcd) *LND {
	n := lndtest.Start(t, name, btcd)
	n.WaitReady()
	return n
}

// LightningPair starts btcd and two LND nodes, payer and payee, with a funded channel of
// channelSats from payer to payee, as a viewer's wallet and a seller's node.
func LightningPair(t testing.TB, channelSats int64) (btcd *Btcd, payer, payee *LND) {
	btcd = StartBtcd(t)
	payer = lndtest.Start(t, "payer", btcd)
	payee = lndtest.Start(t, "payee", btcd)
	payer.WaitReady()
	payee.WaitReady()
	payer.Fund(channelSats * 2)
	payer.OpenChannel(payee, channelSats)
	return btcd, payer, payee
}
