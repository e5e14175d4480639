package swarm

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dazaarvision/dazaar-vision/internal/wakeup"
	"github.com/dazaarvision/dazaar-vision/stream/swarm/swarmwire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// HaveProtocol carries Have messages both ways between two peers of a swarm: a viewer opens
// it to its source and its standby sources, so each side knows what the other holds.
const HaveProtocol protocol.ID = "/dazaar-vision/have/1"

// haveMinGap spaces a link's Have messages. Four a second tell a peer's length within 8
// blocks at 30 blocks a second, finer than the 15 blocks (defaultSlowLag) that make a source
// slow; ten a second cost a seller with its 76 inbound links 760 small TCP segments a second
// each way, more than half a copy of a 1 Mbit/s stream in headers and acknowledgements.
const (
	haveMinGap    = 250 * time.Millisecond // at most 4 Have messages a second per link
	haveKeepalive = 2 * time.Second        // a Have at least this often, changed or not
	haveStale     = 3 * haveKeepalive      // a link silent this long is closed
	haveWriteWait = 10 * time.Second
)

// maxFreeClaim caps the free slots a peer's Have is taken to claim: a relay serves
// DefaultMaxViewers unless configured otherwise, and nothing checks a claim, so a peer saying
// 65535 would otherwise come first in every redirect (Server.relaysFor) over honest relays. A
// seller or relay with more room than this ranks as one with this much.
const maxFreeClaim = DefaultMaxViewers

// clampHave bounds the counts of a received Have that rank it (Free) to what an honest peer
// claims.
func clampHave(h Have) Have {
	h.Free = min(h.Free, maxFreeClaim)
	return h
}

// haveEntry is the newest Have from a peer and when it came.
type haveEntry struct {
	Have
	at time.Time
}

type linkKey struct {
	p   peer.ID
	out bool // we opened it
}

type link struct {
	str    network.Stream
	cancel context.CancelFunc
	have   haveEntry
	got    bool
	opened time.Time
}

// haves runs the Have links of one host: one per peer and direction at most, inbound ones
// capped at maxIn (overflow policy: a new inbound link past the cap is reset, and the peer
// learns of us from redirects and data instead; unless it is a viewer we serve, whose link
// takes the place of the oldest inbound link of a peer we do not serve: links cost nothing
// to open, and idle ones from throwaway identities would otherwise shut out the relays a
// redirect should name).
type haves struct {
	h      host.Host
	disc   [32]byte
	state  func() Have
	maxIn  int
	log    *slog.Logger
	served atomic.Pointer[func() map[peer.ID]bool] // the viewers our server serves (nil: none)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	links  map[linkKey]*link
	poked  wakeup.Signal // notified when our state changed
	closed bool
	opened atomic.Uint64 // links this host opened (outbound)
}

func newHaves(h host.Host, disc [32]byte, state func() Have, maxIn int, log *slog.Logger) *haves {
	hv := &haves{h: h, disc: disc, state: state, maxIn: maxIn, log: log, links: map[linkKey]*link{}}
	hv.ctx, hv.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(HaveProtocol, hv.handle)
	hv.wg.Add(1)
	go func() {
		defer hv.wg.Done()
		hv.watch()
	}()
	return hv
}

// watch pokes the links when our state changed (length, depth, free slots), looking every
// haveMinGap: the links send at most that often anyway.
func (hv *haves) watch() {
	t := time.NewTicker(haveMinGap)
	defer t.Stop()
	var last Have
	for {
		select {
		case <-hv.ctx.Done():
			return
		case <-t.C:
		}
		if h := hv.state(); h != last {
			last = h
			hv.poke()
		}
	}
}

// poke tells every link our state may have changed.
func (hv *haves) poke() {
	hv.poked.Notify()
}

func (hv *haves) pokedC() <-chan struct{} { return hv.poked.C() }

// preferServed has served name the viewers our server serves, whose links are kept past the
// cap (see haves).
func (hv *haves) preferServed(served func() map[peer.ID]bool) { hv.served.Store(&served) }

func (hv *haves) handle(str network.Stream) {
	hv.start(linkKey{str.Conn().RemotePeer(), false}, str)
}

// open opens a link to p unless we already have one of ours.
func (hv *haves) open(ctx context.Context, p peer.ID) error {
	hv.mu.Lock()
	l := hv.links[linkKey{p, true}]
	closed := hv.closed
	hv.mu.Unlock()
	if l != nil || closed {
		return nil
	}
	str, err := hv.h.NewStream(network.WithAllowLimitedConn(ctx, "have"), p, HaveProtocol)
	if err != nil {
		return fmt.Errorf("open a have link to %s: %w", p, err)
	}
	hv.start(linkKey{p, true}, str)
	return nil
}

// linked reports whether we opened a link to p that is up.
func (hv *haves) linked(p peer.ID) bool {
	hv.mu.Lock()
	defer hv.mu.Unlock()
	return hv.links[linkKey{p, true}] != nil
}

// drop closes our link to p.
func (hv *haves) drop(p peer.ID) {
	hv.mu.Lock()
	l := hv.links[linkKey{p, true}]
	hv.mu.Unlock()
	if l != nil {
		l.cancel()
	}
}

// get returns the newest Have p sent on any link.
func (hv *haves) get(p peer.ID) (haveEntry, bool) {
	hv.mu.Lock()
	defer hv.mu.Unlock()
	var best haveEntry
	ok := false
	for _, out := range []bool{true, false} {
		if l := hv.links[linkKey{p, out}]; l != nil && l.got && (!ok || l.have.at.After(best.at)) {
			best, ok = l.have, true
		}
	}
	return best, ok
}

// all returns the newest Have of every linked peer.
func (hv *haves) all() map[peer.ID]haveEntry {
	hv.mu.Lock()
	defer hv.mu.Unlock()
	out := make(map[peer.ID]haveEntry, len(hv.links))
	for k, l := range hv.links {
		if !l.got {
			continue
		}
		if e, ok := out[k.p]; !ok || l.have.at.After(e.at) {
			out[k.p] = l.have
		}
	}
	return out
}

// outbound lists the peers we opened links to, with when each link opened.
func (hv *haves) outbound() map[peer.ID]time.Time {
	hv.mu.Lock()
	defer hv.mu.Unlock()
	out := map[peer.ID]time.Time{}
	for k, l := range hv.links {
		if k.out {
			out[k.p] = l.opened
		}
	}
	return out
}

func (hv *haves) close() {
	hv.mu.Lock()
	if hv.closed {
		hv.mu.Unlock()
		return
	}
	hv.closed = true
	hv.mu.Unlock()
	hv.h.RemoveStreamHandler(HaveProtocol)
	hv.cancel()
	hv.wg.Wait()
}

// start runs a link: a reader and a writer goroutine, both ended with the link.
func (hv *haves) start(k linkKey, str network.Stream) {
	ctx, cancel := context.WithCancel(hv.ctx)
	l := &link{str: str, cancel: cancel, opened: time.Now()}
	var served map[peer.ID]bool // asked before our lock: the server's seller has its own
	if f := hv.served.Load(); f != nil && !k.out {
		served = (*f)()
	}
	hv.mu.Lock()
	full := false
	if !k.out && hv.links[k] == nil { // the cap, checked under the same lock as the insert
		in := 0
		var victim linkKey
		var oldest *link
		for q, ql := range hv.links {
			if q.out {
				continue
			}
			in++
			if !served[q.p] && (oldest == nil || ql.opened.Before(oldest.opened)) {
				victim, oldest = q, ql
			}
		}
		full = in >= hv.maxIn
		if full && served[k.p] && oldest != nil {
			oldest.cancel() // its goroutines end; the entry goes now, so the cap holds
			delete(hv.links, victim)
			full = false
		}
	}
	if hv.closed || full {
		hv.mu.Unlock()
		cancel()
		_ = str.Reset()
		return
	}
	if old := hv.links[k]; old != nil {
		old.cancel()
	}
	hv.links[k] = l
	if k.out {
		hv.opened.Add(1)
	}
	hv.wg.Add(3)
	hv.mu.Unlock()
	go func() {
		defer hv.wg.Done()
		<-ctx.Done()
		_ = str.Reset()
		hv.mu.Lock()
		if hv.links[k] == l {
			delete(hv.links, k)
		}
		hv.mu.Unlock()
	}()
	go func() {
		defer hv.wg.Done()
		defer cancel()
		if err := hv.read(k.p, l, str); ctx.Err() == nil && !errors.Is(err, io.EOF) {
			hv.log.Debug("have link ended", "peer", k.p, "err", err)
		}
	}()
	go func() {
		defer hv.wg.Done()
		defer cancel()
		if err := hv.write(ctx, str); err != nil && ctx.Err() == nil {
			hv.log.Debug("have link ended", "peer", k.p, "err", err)
		}
	}()
}

// read takes the peer's Have messages until the link fails (it never returns nil).
func (hv *haves) read(p peer.ID, l *link, str network.Stream) error {
	r := bufio.NewReaderSize(str, 256)
	buf := make([]byte, MaxHave)
	for {
		_ = str.SetReadDeadline(time.Now().Add(haveStale))
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return err
		}
		if n > MaxHave {
			return fmt.Errorf("%w: have frame of %d bytes", errMalformed, n)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		h, err := swarmwire.DecodeHave(buf[:n])
		if err != nil {
			return err
		}
		if h.Discovery != hv.disc {
			return fmt.Errorf("%w: the peer's have is for another feed", errMalformed)
		}
		hv.mu.Lock()
		l.have, l.got = haveEntry{Have: clampHave(h), at: time.Now()}, true
		hv.mu.Unlock()
	}
}

func (hv *haves) write(ctx context.Context, str network.Stream) error {
	var last Have
	var lastAt time.Time
	buf := make([]byte, 0, 2*MaxHave)
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		poked := hv.pokedC()
		h := hv.state()
		h.Discovery = hv.disc
		if h != last || time.Since(lastAt) >= haveKeepalive {
			body, _ := h.AppendBinary(buf[:0:0])
			frame := binary.AppendUvarint(buf[:0], uint64(len(body)))
			frame = append(frame, body...)
			_ = str.SetWriteDeadline(time.Now().Add(haveWriteWait))
			if _, err := str.Write(frame); err != nil {
				return err
			}
			last, lastAt = h, time.Now()
			gap.Reset(haveMinGap)
			select {
			case <-ctx.Done():
				return nil
			case <-gap.C:
			}
		}
		keep := time.NewTimer(haveKeepalive - time.Since(lastAt))
		select {
		case <-ctx.Done():
			keep.Stop()
			return nil
		case <-poked:
		case <-keep.C:
		}
		keep.Stop()
	}
}
