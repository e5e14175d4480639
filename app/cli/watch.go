package cli

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/cli/mediatime"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/internal/human"
	"github.com/dazaarvision/dazaar-vision/media/export"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/dazaarvision/dazaar-vision/wallet/invoicemsg"
	"github.com/dazaarvision/dazaar-vision/wallet/paymentqr"
)

// readCardArg reads a card given as text, as a file name, or - for stdin (at most a card's
// size from either), and prints the parser's note on it.
func (e *env) readCardArg(arg string) (card.Card, error) {
	c, rep, err := e.parseCardArg(arg)
	if err == nil && rep.Note() != "" {
		fmt.Fprintln(e.err, rep.Note())
	}
	return c, err
}

func (e *env) watch(args []string) error {
	fs := e.flags("watch")
	minutes := fs.Uint("minutes", 0, "buy this many minutes at once (paid streams)")
	sats := fs.Uint64("sats", 0, "buy for this many sats at once (paid streams)")
	method := fs.String("method", "", "pay with lightning, onchain or any (default: Lightning when the seller takes it)")
	out := fs.String("o", "", "when done, write what was watched to this WebM file; - streams it live to stdout as WebM (watch CARD -o - | mpv -)")
	fromFlag := fs.String("from", "", "play (with -no-play: download) from this far into the stream (1m30s or 1:30; from the key frame at or before it), not from the live edge")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted or quit)")
	noPlay := fs.Bool("no-play", false, "only download (no sound, no decoding)")
	var listen listFlag
	fs.Var(&listen, "listen", "multiaddrs to listen on (default: every interface)")
	lan := fs.Bool("lan", false, "use private and loopback addresses for direct connections")
	rest, err := parse(fs, args, 1, -1, "[-minutes N | -sats N] [-method lightning|onchain|any] [-from 1m30s] [-o OUT.webm|-] CARD|FILE|-")
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("watch takes one card, and %q is not a flag (put a card with spaces in quotes, or give a file or -)", rest[1])
	}
	if *minutes > 0 && *sats > 0 {
		return usagef("give -minutes or -sats, not both: -minutes buys that much time, -sats spends that much")
	}
	if err := checkDuration(*dur); err != nil {
		return err
	}
	// The method is checked before the card is read: a mistyped one is refused as such,
	// whatever the stream's terms.
	m, err := methodFlag(*method)
	if err != nil {
		return err
	}
	from := time.Duration(-1)
	if *fromFlag != "" {
		if from, err = mediatime.Parse(*fromFlag); err != nil {
			return usagef("-from: %v", err)
		}
	}
	// With -o -, stdout carries the video: every message goes to stderr, and the pipe is the
	// playback (no sound of our own, nothing decoded twice).
	toStdout := *out == "-"
	if toStdout {
		if err := e.videoToStdout("-o -", "watch CARD -o - | mpv -"); err != nil {
			return err
		}
		*noPlay = true
	}
	// The figures are rewritten in place on a terminal, so the terms and an invoice's QR stay
	// on the screen; the other messages end the status line first. Written from the loop and
	// from goroutines (seeks, invoices, the live export): the status line serialises them.
	st, stopStatus := e.startStatus(e.err)
	defer stopStatus()
	text, status := st.Writer(e.out), st.Writer(e.err)
	if toStdout {
		text = status
	}
	c, err := e.readCardArg(rest[0])
	if err != nil {
		return err
	}
	if c.Price.IsFree() && (*minutes > 0 || *sats > 0 || *method != "") {
		return usagef("this stream is free: there is no time to buy, so leave out -minutes, -sats and -method")
	}
	store, err := e.openSecrets()
	if err != nil {
		return err
	}
	data, err := e.openData()
	if err != nil {
		return err
	}
	fmt.Fprintln(text, shownName(c.Name))
	if c.Description != "" {
		fmt.Fprintln(text, c.Description)
	}
	fmt.Fprintf(text, "Terms: %s\n", c.Terms())
	v, err := session.NewViewer(session.ViewerConfig{Data: data, Secrets: store, Card: c, NoPlayback: *noPlay, Logger: e.log,
		Network: session.NetworkConfig{Listen: listen, LAN: *lan, Public: *lan}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if *dur > 0 {
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	if err := v.Start(ctx); err != nil {
		return fmt.Errorf("cannot watch: %w", err)
	}
	defer v.Stop()
	var seeks sync.WaitGroup // seeks and invoice requests, waited for before the session stops
	defer seeks.Wait()
	opCtx, opCancel := context.WithCancel(ctx)
	defer opCancel()         // before the wait: a pending seek or invoice request ends with the command
	var toldRuns atomic.Bool // the viewer was told once how times count on a resumed stream
	seek := func(t time.Duration) {
		if toStdout {
			fmt.Fprintln(text, "seek is not possible while writing to stdout: use -from when starting")
			return
		}
		at, live, err := v.Seek(opCtx, t)
		if err != nil {
			if opCtx.Err() == nil { // else the command is ending: nothing to say
				fmt.Fprintf(text, "cannot seek: %v\n", err)
			}
			return
		}
		// Without playback (-no-play) the download goes on from there instead.
		doing := "playing"
		if *noPlay {
			doing = "downloading"
		}
		if live {
			fmt.Fprintf(text, "%v is past the live edge (%v): %s live\n", t, at.Round(time.Millisecond), doing)
		} else {
			fmt.Fprintf(text, "%s from %v\n", doing, at.Round(time.Millisecond))
		}
		if v.Snapshot().Resumed && !toldRuns.Swap(true) {
			fmt.Fprintln(text, "The broadcaster resumed this stream: times count from the start of its current run, and earlier runs cannot be played here.")
		}
	}
	var liveDone chan struct{}
	if toStdout {
		liveDone = make(chan struct{})
		go func() {
			defer close(liveDone)
			src, err := v.SeekSource(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fmt.Fprintf(text, "cannot write the stream: %v\n", err)
				}
				cancel()
				return
			}
			start := uint64(0)
			if from >= 0 {
				s, k, at, err := v.SeekBlock(ctx, from)
				if err != nil {
					fmt.Fprintf(text, "cannot start at %v: %v\n", from, err)
					cancel()
					return
				}
				src, start = s, k
				fmt.Fprintf(text, "writing from %v\n", at.Round(time.Millisecond))
			}
			res, err := export.Live(ctx, src, e.out, start, export.Options{Logger: e.log})
			if err != nil && ctx.Err() == nil {
				fmt.Fprintf(text, "stopped writing to stdout: %s\n", exportErrText(err))
				cancel()
				return
			}
			if err == nil {
				fmt.Fprintf(text, "wrote %v of video to stdout (%d frames, %d audio packets)\n", res.Duration.Round(time.Millisecond), res.VideoFrames, res.AudioPackets)
			}
		}()
	} else if from >= 0 {
		seeks.Go(func() { seek(from) })
	}
	buy := func(r session.BuyRequest) {
		r.Method = m
		inv, err := v.Buy(opCtx, r)
		if err != nil {
			if opCtx.Err() == nil {
				fmt.Fprintf(text, "no invoice: %v\n", err)
			}
			return
		}
		fmt.Fprintf(text, "Pay %d sats for %s of video (expires %s):\ninvoice %s\n", inv.Sats, human.Duration(inv.Media), inv.Expires.Format(time.TimeOnly), inv.URI)
		if isTerminalWriter(e.err) {
			if qr, err := paymentqr.Terminal(inv.URI); err == nil {
				fmt.Fprint(status, qr)
			}
		}
	}
	if !c.Price.IsFree() && (*minutes > 0 || *sats > 0) {
		seeks.Go(func() { buy(session.BuyRequest{Minutes: buyMinutes(uint64(*minutes)), Sats: *sats}) })
	} else if !c.Price.IsFree() {
		fmt.Fprintln(text, "Type `buy N` for N minutes, or `sats N`.")
	}
	lines := make(chan string)
	go func() { // ends with the process: a blocked terminal read cannot be cancelled
		sc := bufio.NewScanner(e.stdin)
		for sc.Scan() {
			select {
			case lines <- strings.TrimSpace(sc.Text()):
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastRemaining time.Duration
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-v.Done():
			break loop
		case l := <-lines:
			cmd, arg, _ := strings.Cut(l, " ")
			n, _ := strconv.ParseUint(strings.TrimSpace(arg), 10, 64)
			switch cmd {
			case "buy", "topup":
				seeks.Go(func() { buy(session.BuyRequest{Minutes: buyMinutes(n)}) })
			case "sats":
				seeks.Go(func() { buy(session.BuyRequest{Sats: n}) })
			case "pause", "resume", "live", "start":
				if *noPlay {
					fmt.Fprintf(text, "%s: nothing plays here (-no-play, or -o - writing the stream out)\n", cmd)
					continue
				}
				switch cmd {
				case "pause":
					v.Pause()
				case "resume":
					v.Resume()
				case "live":
					v.GoLive()
				case "start":
					v.GoToStart()
				}
			case "seek":
				t, err := mediatime.Parse(strings.TrimSpace(arg))
				if err != nil {
					fmt.Fprintln(text, err)
					continue
				}
				seeks.Go(func() { seek(t) })
			case "quit", "q":
				break loop
			case "":
			default:
				fmt.Fprintf(text, "commands: buy N (minutes), sats N, pause, resume, live, start, seek TIME (1m30s or 1:30), quit\n")
			}
		case ev := <-v.Events():
			switch ev.Kind {
			case session.EventAccess, session.EventPlaying, session.EventError, session.EventConnection:
				fmt.Fprintf(text, "%s %s\n", ev.Time.Format("15:04:05.000"), ev.Text)
				if ev.Kind == session.EventAccess && v.Access().State == wire.Refused && lastRemaining > 0 {
					fmt.Fprintln(text, "Paid time is over: type `buy N` to top up.")
				}
			}
		case <-tick.C:
			f := v.Snapshot()
			lastRemaining = max(lastRemaining, f.Remaining)
			now := time.Now()
			st.Show(now, fmt.Sprintf("%s %s%s · downloaded %s · %d blocks stored · %d behind live · decoded %d frames",
				now.Format("15:04:05.000"), connText(f), timeLeftText(c.Price.IsFree(), f), human.Bytes(f.BytesDown), f.Stored, f.BehindLive, f.FramesDecoded),
				connText(f))
		}
	}
	if liveDone != nil {
		cancel() // the live export writes what it holds and ends
		<-liveDone
	}
	cancel()
	seeks.Wait()
	f := v.Snapshot()
	fmt.Fprintf(text, "watched: decoded %d frames, downloaded %s\n", f.FramesDecoded, human.Bytes(f.BytesDown))
	v.Stop()
	if *out != "" && !toStdout {
		// The session is stopped; the stored copy is read back to export it.
		return exportHeld(e, c, data, *out)
	}
	return nil
}

func exportHeld(e *env, c card.Card, data session.DataDir, out string) error {
	src, closeFn, err := session.OpenHeld(data, c)
	if err != nil {
		return fmt.Errorf("nothing to write to %s: %w", out, err)
	}
	defer closeFn()
	res, err := export.ToFile(context.Background(), src, out, export.Options{Logger: e.log})
	if err != nil {
		return wordedError{fmt.Sprintf("cannot write %s: %s", out, exportErrText(err)), err}
	}
	pieces, from, to := src.Span()
	held := fmt.Sprintf("the stored blocks %d to %d", from, to-1)
	if pieces > 1 {
		held = fmt.Sprintf("%d stretches of the stored blocks %d to %d, the missing blocks between them left out", pieces, from, to-1)
	}
	fmt.Fprintf(e.out, "wrote %v of video to %s (%d frames, %d audio packets; %s)\n",
		res.Duration.Round(time.Millisecond), out, res.VideoFrames, res.AudioPackets, held)
	return nil
}

// timeLeftText is the status line's paid time, nothing for a free stream (it has no clock).
func timeLeftText(free bool, f session.ViewFigures) string {
	if free || f.Access == wire.Free {
		return ""
	}
	return " · time left " + human.Duration(f.Remaining)
}

func connText(f session.ViewFigures) string {
	switch {
	case !f.Connected && f.Reason != "":
		return "not connected"
	case !f.Connected:
		return "connecting"
	case f.Access == wire.Free && f.Starved > 0:
		return "free, no video for " + human.Duration(f.Starved) + " (the broadcaster may be down)"
	case f.Access == wire.Free:
		return "free"
	case f.Access == wire.Allowed && f.Starved > 0:
		return "paid, no video for " + human.Duration(f.Starved) + " (the broadcaster may be down; time left stands still)"
	case f.Access == wire.Allowed:
		return "paid"
	}
	return "not allowed: " + f.Reason
}

func methodFlag(s string) (invoicemsg.Method, error) {
	switch strings.ToLower(s) {
	case "":
		return 0, nil
	case "lightning", "ln":
		return invoicemsg.Lightning, nil
	case "onchain", "on-chain", "bitcoin", "btc":
		return invoicemsg.OnChain, nil
	case "any", "both":
		return invoicemsg.Any, nil
	}
	return 0, usagef("-method is lightning, onchain or any, not %q", s)
}

// buyMinutes is n as a request's minutes: a number past what one invoice can buy stays past
// it (Buy then says the bound) instead of wrapping to a small one.
func buyMinutes(n uint64) uint32 {
	return uint32(min(n, session.MaxBuyMinutes+1))
}
