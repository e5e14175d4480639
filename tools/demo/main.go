//go:build linux

// Command demo shows the whole paid flow on this machine with real parts (`make demo`): a
// bitcoin simnet node (btcd) and two Lightning nodes (LND; the seller's, and the buyer's
// "demo wallet" with a funded channel to it), then two app windows as two processes: a
// broadcaster live with a price, paid through the seller's LND, filming the test camera and
// microphone, and a viewer with the card pasted and an invoice asked for. "Pay with the demo
// wallet" in the viewer pays it from the buyer's LND, and the video starts; when the bought
// minute is used up the seller stops sending until a top-up.
//
// Ctrl+C, or closing either window, stops both windows and the nodes and removes their
// temporary folders. The nodes are the wallet's test harness (wallet/nodetest); their binaries
// are built by `make tools` (scripts/tools.sh) into $DV_TOOLS_CACHE.
//
//	go run ./tools/demo [-price "60 sats per minute"] [-minutes 1] [-v]
//
// The program runs itself twice more for the windows (-role seller, -role viewer): each window
// is a process of its own, as a broadcaster and a viewer on two machines would be.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// config is the demo's flags; the windows' roles take theirs from the same set.
type config struct {
	role    string
	dir     string
	price   string
	minutes uint
	verbose bool
	// The seller's window.
	lndHost, lndMacaroon, lndCert, cardFile string
	// The viewer's window.
	payHost, payMacaroon, payCert string
}

func (c *config) flags(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.price, "price", "60 sats per minute", "the stream's price")
	fs.UintVar(&c.minutes, "minutes", 1, "minutes of video the viewer's invoice buys")
	fs.BoolVar(&c.verbose, "v", false, "log what the windows do")
	// Internal: how the demo starts its two windows.
	fs.StringVar(&c.role, "role", "", "internal: seller or viewer")
	fs.StringVar(&c.dir, "dir", "", "internal: the window's folder")
	fs.StringVar(&c.lndHost, "lnd-host", "", "internal")
	fs.StringVar(&c.lndMacaroon, "lnd-macaroon", "", "internal")
	fs.StringVar(&c.lndCert, "lnd-cert", "", "internal")
	fs.StringVar(&c.cardFile, "card-file", "", "internal")
	fs.StringVar(&c.payHost, "pay-host", "", "internal")
	fs.StringVar(&c.payMacaroon, "pay-macaroon", "", "internal")
	fs.StringVar(&c.payCert, "pay-cert", "", "internal")
	return fs
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	if err := c.flags(stderr).Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	switch c.role {
	case "":
		return runDemo(ctx, c, stdout, stderr)
	case "seller":
		return runSeller(ctx, c, log)
	case "viewer":
		return runViewer(ctx, c, log)
	}
	return fmt.Errorf("unknown role %q", c.role)
}
