package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// DefaultUnreachableAfter is ViewerConfig.UnreachableAfter's default.
const DefaultUnreachableAfter = 15 * time.Second

// linkGrace is how long the link may be down before the viewer is told the broadcaster went
// away (a free stream's viewer changing source is briefly without one).
const linkGrace = time.Second

// relayGrace is how long a free stream's viewer whose source was another viewer (a relay) may
// be without one before it is told: longer than stream/swarm's switch to another source (3 s),
// since relays come and go all the time.
const relayGrace = 5 * time.Second

// Words the viewer is told when the link to the broadcaster fails.
const (
	textUnreachable = "The broadcaster cannot be reached"
	textWentAway    = "The broadcaster went away; trying to reconnect"
	textEnded       = "The broadcaster ended the stream (if they resume it, it plays on here)"
	textRelayGone   = "No source of the stream answers (the viewer relaying it left, and no other was found): the broadcaster may have stopped; still looking"
	textBack        = "Connected to the broadcaster again"
	textBackRelay   = "Receiving the stream again, through another viewer"
)

// watchLink tells the viewer, in events and in Snapshot's Reason, when the broadcaster
// cannot be reached at start (nothing answered within UnreachableAfter), when a session
// ends (the broadcaster stopped, its process died, or nothing arrived for the replication's
// idle timeout), and when it is back. A free stream's viewer served by a relay is told only
// when no other source was found within relayGrace (a relay leaving is routine; one whose
// own source is gone is left by stream/swarm), in words that do not blame the broadcaster.
// The upstream reconnects by itself all along.
func (v *Viewer) watchLink(ctx context.Context, seller peer.AddrInfo) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	started := time.Now()
	var ever, told bool     // ever connected; told the viewer the link is down
	var downSince time.Time // when the link went down (zero: it is up)
	fromSeller := true      // the source last connected was the broadcaster (not a relay)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		if v.ended.Load() {
			// The broadcaster said it ended the stream: said at once, and kept while the
			// viewer reconnects (a connection may come up briefly as the broadcaster's node
			// closes) until the stream resumes.
			if v.linkText() != textEnded {
				v.log.Info("the broadcaster ended the stream")
				v.setLink(textEnded)
				v.ev.emit(Event{Kind: EventConnection, Text: textEnded})
			}
			ever, told, downSince = true, true, now
			continue
		}
		if v.rv.Connected() {
			fromSeller = v.sw == nil || v.sw.Stats().ActiveIsSeller
			if told {
				v.setLink("")
				text := textBack
				if !fromSeller {
					text = textBackRelay
				}
				v.ev.emit(Event{Kind: EventConnection, Text: text})
			}
			ever, told, downSince = true, false, time.Time{}
			continue
		}
		if told {
			continue
		}
		switch {
		case ever && downSince.IsZero():
			downSince = now
		case ever && fromSeller && now.Sub(downSince) >= linkGrace:
			v.log.Warn("the broadcaster went away; reconnecting")
			v.setLink(textWentAway)
			v.ev.emit(Event{Kind: EventError, Text: textWentAway})
			told = true
		case ever && !fromSeller && now.Sub(downSince) >= relayGrace:
			v.log.Warn("no source of the stream answers; still looking")
			v.setLink(textRelayGone)
			v.ev.emit(Event{Kind: EventError, Text: textRelayGone})
			told = true
		case !ever && now.Sub(started) >= v.cfg.UnreachableAfter:
			text := fmt.Sprintf("%s: %s. Check that the broadcast is live; still trying.", textUnreachable, v.whyUnreachable(ctx, seller))
			if ctx.Err() != nil {
				return nil
			}
			if v.rv.Connected() {
				continue // it answered while we asked
			}
			v.log.Warn("the broadcaster cannot be reached", "after", v.cfg.UnreachableAfter)
			v.setLink(text)
			v.ev.emit(Event{Kind: EventError, Text: text})
			told = true
		}
	}
}

// setLink sets what Snapshot says while not connected ("" when nothing is wrong yet).
func (v *Viewer) setLink(text string) {
	v.linkMu.Lock()
	v.link = text
	v.linkMu.Unlock()
}

// linkText is what Snapshot says while not connected.
func (v *Viewer) linkText() string {
	v.linkMu.Lock()
	defer v.linkMu.Unlock()
	return v.link
}

// whyUnreachable dials the broadcaster once more and says, in plain words, what the attempt
// met.
func (v *Viewer) whyUnreachable(ctx context.Context, seller peer.AddrInfo) string {
	nothing := fmt.Sprintf("nothing answered at the card's addresses within %v", v.cfg.UnreachableAfter)
	if len(seller.Addrs) == 0 {
		nothing = fmt.Sprintf("the card has no addresses and the network did not find it within %v", v.cfg.UnreachableAfter)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := v.node.Connect(ctx, seller)
	var ne net.Error
	switch {
	case err == nil:
		return "it answers but has not started sending this stream"
	case dialRefused(err):
		return "nothing listens at the card's addresses (the broadcast may have ended)"
	case dialNoRoute(err):
		return "the network of the card's addresses cannot be reached from here"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return nothing
	}
	return fmt.Sprintf("%s (%v)", nothing, err)
}
