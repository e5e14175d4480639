package replicate

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Rates that bound what viewers can make the seller's wallet do (peer IDs cost nothing, so
// besides the per-peer bounds there are bounds for all viewers together).
const (
	checkInterval  = 500 * time.Millisecond // one peer's gate checks, at most one per (over all its sessions)
	checkRate      = 100                    // gate checks per second, all viewers, for each of the two classes below
	appRate        = 200                    // app messages per second, all viewers
	sessionAppRate = 10                     // app messages per second, one session

	// New streams one peer may open: streamOpenBurst at once, then streamOpenRate a second.
	// A viewer opens one per session, the next after a reconnect backoff (50 ms at the
	// least, doubling); a peer over this gets its new streams reset before any session starts.
	streamOpenRate  = 4
	streamOpenBurst = 16
)

// gateChecks spaces the gate's checks. Each peer gets one check per checkInterval, however
// many streams it opens (a new stream is a new session, so the spacing cannot live in the
// session). All peers together get checkRate a second in each of two classes: peers the gate
// refused last time (a refused peer asking again, possibly in a loop), and everyone else
// (a viewer's first check, a paying viewer's recheck). Refused peers queueing for their class
// therefore never delay a paying viewer's first check.
//
// Waits use rate.Limiter.Wait, which gives a reservation back when the session's context
// ends first: a cancelled session does not use up the others' checks.
type gateChecks struct {
	first, refused *rate.Limiter

	mu    sync.Mutex
	peers map[peer.ID]*peerCheck
	sweep int // prune the map when it grows past this
}

// peerCheck is one peer's spacing and the class of its next check.
type peerCheck struct {
	lim *rate.Limiter
	// refused: the peer's next check is a refused peer's. Set when its first check starts
	// (a check whose session ended before the answer counts as refused, or a peer whose
	// streams are reset faster than the gate answers would stay a first-timer for ever),
	// cleared when the gate lets it in. Guarded by gateChecks.mu.
	refused bool
}

func newGateChecks() *gateChecks {
	return &gateChecks{first: rate.NewLimiter(checkRate, 2*checkRate), refused: rate.NewLimiter(checkRate, 2*checkRate),
		peers: map[peer.ID]*peerCheck{}, sweep: 256}
}

// wait returns when a check of p may go to the gate, or ctx's error.
func (g *gateChecks) wait(ctx context.Context, p peer.ID) error {
	g.mu.Lock()
	pc := g.peers[p]
	if pc == nil {
		if len(g.peers) >= g.sweep {
			g.prune()
		}
		pc = &peerCheck{lim: rate.NewLimiter(rate.Every(checkInterval), 1)}
		g.peers[p] = pc
	}
	class := g.first
	if pc.refused {
		class = g.refused
	}
	pc.refused = true // until the gate lets it in
	g.mu.Unlock()
	if err := pc.lim.Wait(ctx); err != nil {
		return err
	}
	return class.Wait(ctx)
}

// answered records the gate's answer for p (also when the session asking ended meanwhile):
// whether its next check is a refused peer's.
func (g *gateChecks) answered(p peer.ID, refused bool) {
	g.mu.Lock()
	if pc := g.peers[p]; pc != nil {
		pc.refused = refused
	}
	g.mu.Unlock()
}

// vouch makes p's next check a first check: the seller's owner says something changed for it
// (a payment arrived), so it no longer waits among the refused peers.
func (g *gateChecks) vouch(p peer.ID) {
	g.answered(p, false)
}

// prune drops the peers whose spacing has run out (their next check could go at once, as a
// new peer's), so the map holds only peers checked within the last checkInterval or waiting
// now: at most about (2*checkRate)*checkInterval plus the sessions waiting. Those who were
// refused keep their entry until then, so that leaving and coming back skips no spacing.
// Called with mu held.
func (g *gateChecks) prune() {
	now := time.Now()
	for p, pc := range g.peers {
		if pc.lim.TokensAt(now) >= 1 && !pc.refused {
			delete(g.peers, p)
		}
	}
	for p, pc := range g.peers {
		if len(g.peers) < g.sweep/2 {
			break
		}
		// Refused peers whose spacing ran out: their next check is made as a first check.
		if pc.lim.TokensAt(now) >= 1 {
			delete(g.peers, p)
		}
	}
	g.sweep = max(256, 2*len(g.peers))
}

// newAppLimiter is a token bucket for application messages: perSecond a second, bursts of
// twice that. Overflow policy: a message over the rate is dropped (see readLoop).
func newAppLimiter(perSecond int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), 2*perSecond)
}

// streamOpens counts the streams each peer opens (see streamOpenRate). Entries of peers whose
// bucket has refilled are pruned when the map grows, so its size follows the peers that opened
// streams within the last few seconds.
type streamOpens struct {
	mu      sync.Mutex
	peers   map[peer.ID]*openBucket
	sweep   int
	refused int
}

type openBucket struct {
	lim    *rate.Limiter
	logged bool // the peer's first refusal was logged
}

func newStreamOpens() *streamOpens {
	return &streamOpens{peers: map[peer.ID]*openBucket{}, sweep: 256}
}

// allow takes one of p's stream openings; false when it has none left.
func (o *streamOpens) allow(p peer.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.peers[p]
	if b == nil {
		if len(o.peers) >= o.sweep {
			now := time.Now()
			for q, qb := range o.peers {
				if qb.lim.TokensAt(now) >= streamOpenBurst {
					delete(o.peers, q)
				}
			}
			o.sweep = max(256, 2*len(o.peers))
		}
		b = &openBucket{lim: rate.NewLimiter(streamOpenRate, streamOpenBurst)}
		o.peers[p] = b
	}
	if b.lim.Allow() {
		b.logged = false
		return true
	}
	o.refused++
	return false
}

// firstRefusal reports whether this is p's first refusal since it was last allowed (to log
// once per flood, not once per stream).
func (o *streamOpens) firstRefusal(p peer.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.peers[p]
	if b == nil || b.logged {
		return false
	}
	b.logged = true
	return true
}
