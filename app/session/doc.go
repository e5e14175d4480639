// Package session joins the parts into the product's two sessions: a
// Broadcaster (capture → encoder → signed feed → replication to viewers the
// ledger lets in, with the invoice desk answering on the app channel) and a
// Viewer (card → seller → invoice → verified blocks → playback). The command
// line and the desktop UI are two faces on these objects: everything they show
// comes from a session's Snapshot, its Events and its methods, so tests drive
// the whole product without a display.
//
// Every session owns its goroutines: Start launches them under one context,
// Stop cancels it and waits for all of them. Sessions report through a bounded
// event channel; when it is full the event is dropped (a slow UI never blocks
// capture or replication) and the UI catches up from Snapshot, which always
// holds the newest figures.
package session
