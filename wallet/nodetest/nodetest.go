// Package nodetest gives tests outside the wallet (the app's end-to-end tests) the wallet's
// real-node harnesses: a btcd simnet node and LND nodes on it, built by scripts/tools.sh.
// A missing binary fails the test; nothing here skips.
package nodetest

import (
	"crypto/sha256"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/wire"

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

// Coin is a spendable output of the btcd miner key; Output is one payment output.
type (
	Coin   = btcdtest.Coin
	Output = btcdtest.Output
)

// Net is the simnet's parameters.
var Net = btcdtest.Net

// BuildTx spends coin to outs (change back to the miner), paying fee, signalling RBF.
func BuildTx(t testing.TB, coin Coin, fee int64, outs ...Output) *wire.MsgTx {
	return btcdtest.BuildTx(t, coin, fee, outs...)
}

// MinerAddress is where the miner's coins (and change) go.
func MinerAddress() btcutil.Address { return btcdtest.MinerAddress() }

// AccountKey is a watch-only BIP84 account key (vpub) of a test seed, for simnet invoices.
func AccountKey(t testing.TB) string {
	seed := sha256.Sum256([]byte("dazaar-vision app test seed; never use with real coins"))
	k, err := hdkeychain.NewMaster(seed[:], btcdtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint32{84, 1, 0} {
		if k, err = k.Derive(hdkeychain.HardenedKeyStart + i); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := k.Neuter()
	if err != nil {
		t.Fatal(err)
	}
	if pub, err = pub.CloneWithVersion([]byte{0x04, 0x5f, 0x1c, 0xf6}); err != nil { // vpub
		t.Fatal(err)
	}
	return pub.String()
}
