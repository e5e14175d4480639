package replicate

import (
	"time"

	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ReasonFull is the default reason a viewer turned away by SellerConfig.MaxViewers is given.
const ReasonFull = "The broadcaster is serving as many viewers as its connection carries; try again later."

// turnAwayTimeout bounds how long a turned-away viewer's stream is held to take the refusal.
const turnAwayTimeout = 5 * time.Second

// servingLocked reports whether peer p has a session (s.mu held).
func (s *Seller) servingLocked(p peer.ID) bool { return len(s.byPeer[p]) > 0 }

// viewersLocked counts the distinct peers with a session that is not ending (s.mu held).
func (s *Seller) viewersLocked() int {
	n := 0
	for _, sessions := range s.byPeer {
		for ss := range sessions {
			if ss.ctx.Err() == nil {
				n++
				break
			}
		}
	}
	return n
}

// IdleEvict is how long a viewer of a full server may go without a block delivered, while
// there is one for it to take, before a newcomer takes its place. Every viewer that follows a
// live stream gets blocks several times a second; one that opens a session and takes nothing
// (asks for no range, follows nothing, or never reads) would otherwise hold one of the few
// slots for as long as it likes. A viewer that holds all there is (idleLocked) is not idle,
// however long ago its last block was: when the broadcaster pauses, nobody gets a block, and
// counting that as idleness let every newcomer evict a caught-up viewer, which came back as a
// newcomer and evicted the next, round all of them.
const IdleEvict = 5 * time.Second

// idleLocked reports whether session ss counts as idle at now (unix ns, the seller's clock):
// it took no block for IdleEvict and it is behind the feed's head, so there was something to
// deliver that it did not take (s.mu held).
//
// The seller does not track each viewer's length here, so "behind" is read from what the
// session shows: a viewer that follows the live edge and may have blocks is caught up once its
// send loop has taken the newest head (its coalescing new-head flag is clear: the loop pushes
// everything up to that head, or skips ahead to it, when it takes the flag); a stalled or
// unread follower holds the flag from the next append on. Any other viewer is caught up only
// when its last status said it holds the head's length (a paused viewer says so when it
// pauses); one that said nothing, asked for nothing or is refused blocks is behind.
func (s *Seller) idleLocked(ss *sellerSession, now int64) bool {
	if ss.ctx.Err() != nil || now-ss.took.Load() < int64(IdleEvict) {
		return false
	}
	if !ss.allowed() {
		return true // refused blocks: it holds a place it cannot use (it may pay and come back)
	}
	head := s.currentHead().Length
	ss.mu.Lock()
	follow, hinted, vlen := ss.follow, ss.hinted, ss.vlenHint
	ss.mu.Unlock()
	if follow && ss.allowed() {
		return len(ss.live) > 0
	}
	return !hinted || vlen < head
}

// makeRoomLocked ends the session of the idle viewer (idleLocked) that took no block for the
// longest and says whether it did (s.mu held). The ended session leaves on its own goroutine;
// viewersLocked no longer counts it.
func (s *Seller) makeRoomLocked() bool {
	now := s.cfg.Clock.Now().UnixNano()
	var idlest *sellerSession
	for ss := range s.sessions {
		if (idlest == nil || ss.took.Load() < idlest.took.Load()) && s.idleLocked(ss, now) {
			idlest = ss
		}
	}
	if idlest == nil {
		return false
	}
	s.log.Info("a viewer behind the stream took no block for a while; its place goes to a new one", "viewer", idlest.peer, "limit", s.cfg.MaxViewers)
	for ss := range s.byPeer[idlest.peer] {
		ss.stop()
	}
	return true
}

// turnAway tells a viewer past MaxViewers where else to go (Full's app message) and that it
// is refused, then closes its stream. No block or proof is sent.
func (s *Seller) turnAway(str network.Stream, p peer.ID) {
	var app []byte
	reason := ReasonFull
	if s.cfg.Full != nil {
		var r string
		app, r = s.cfg.Full(p)
		if r != "" {
			reason = r
		}
		if len(app) > wire.MaxApp {
			app = nil
		}
	}
	_ = str.SetDeadline(time.Now().Add(turnAwayTimeout))
	w := wire.NewWriter(str)
	h := s.currentHead()
	st := wire.Status{Fork: h.Fork, Length: h.Length}
	err := w.Frame(wire.TStatus, st.AppendBinary)
	if err == nil && app != nil {
		err = w.Frame(wire.TApp, func(b []byte) ([]byte, error) { return append(b, app...), nil })
	}
	if err == nil {
		err = w.Frame(wire.TAccess, wire.Access{State: wire.Refused, Reason: reason}.AppendBinary)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = str.Reset()
		return
	}
	_ = str.CloseWrite()
	// Wait (bounded by the deadline, ended by Close) for the viewer to close its side so the
	// refusal is read, not reset.
	done, exited := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-exited }()
	go func() {
		defer close(exited)
		select {
		case <-s.ctx.Done():
			_ = str.Reset()
		case <-done:
		}
	}()
	var buf [512]byte
	for {
		if _, err := str.Read(buf[:]); err != nil {
			break
		}
	}
	_ = str.Close()
	s.log.Debug("viewer turned away: at the viewer limit", "viewer", p, "limit", s.cfg.MaxViewers)
}
