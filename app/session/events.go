package session

import (
	"sync/atomic"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	EventFigures EventKind = iota + 1 // new figures (about once a second): Snapshot holds them too
	EventViewer                       // a viewer connected or left (broadcaster)
	EventPayment                      // a payment was credited (broadcaster) or time was granted (viewer)
	EventInvoice                      // an invoice is ready to pay (viewer)
	EventAccess                       // the seller's access decision changed (viewer): allowed, free, or refused and why
	EventPlaying                      // the first picture was decoded (viewer)
	EventError                        // something went wrong; Text says what to do
	EventStopped                      // the session ended; Text holds the reason when it failed
	// EventConnection: the link to the broadcaster is back after the viewer was told it was
	// lost or could not be made (those are EventError) (viewer).
	EventConnection
)

// Event is one thing a session reports to its UI.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Viewer string // the peer concerned, where there is one
	Text   string // plain words for people
}

// EventBuffer is the depth of a session's event channel.
const EventBuffer = 64

// events is a bounded event channel. Overflow policy: when the UI has not taken the last
// EventBuffer events, a new one is dropped and counted (capture and replication never wait for
// a UI); figures are always current in Snapshot, so a dropped EventFigures loses nothing.
type events struct {
	ch      chan Event
	dropped atomic.Int64
}

func newEvents() *events { return &events{ch: make(chan Event, EventBuffer)} }

func (e *events) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	select {
	case e.ch <- ev:
	default:
		e.dropped.Add(1)
	}
}
