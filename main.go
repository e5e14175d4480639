// Dazaar Vision: paid peer-to-peer live video.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dazaarvision/dazaar-vision/app/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
