// Package memfeed is an in-memory, growing list of blocks with sync flags: the shape of the
// feed the app wires media to, for media's own tests and benchmarks. It satisfies
// broadcast.BlockSink, playback.BlockSource and export.BlockSource.
package memfeed

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Feed is safe for concurrent use.
type Feed struct {
	mu      sync.Mutex
	blocks  [][]byte
	sync    []bool
	added   []time.Time
	changed chan struct{} // closed and replaced on every append
	closed  bool
}

// New returns an empty feed.
func New() *Feed { return &Feed{changed: make(chan struct{})} }

// Append stores a copy of b.
func (f *Feed) Append(ctx context.Context, b []byte, sync bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("memfeed: closed")
	}
	f.blocks = append(f.blocks, append([]byte(nil), b...))
	f.sync = append(f.sync, sync)
	f.added = append(f.added, time.Now())
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

// Close ends the feed: readers waiting past its end get an error wrapping io.EOF.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	close(f.changed)
	f.changed = make(chan struct{})
}

// Len is the number of blocks.
func (f *Feed) Len() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.blocks))
}

// Block returns block i, waiting for it until ctx ends.
func (f *Feed) Block(ctx context.Context, i uint64) ([]byte, error) {
	for {
		f.mu.Lock()
		if i < uint64(len(f.blocks)) {
			b := f.blocks[i]
			f.mu.Unlock()
			return b, nil
		}
		if f.closed {
			f.mu.Unlock()
			return nil, fmt.Errorf("memfeed: block %d is past the end of a closed feed: %w", i, io.EOF)
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// LatestSync returns the index of the newest block flagged as a sync point.
func (f *Feed) LatestSync() (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.sync) - 1; i >= 0; i-- {
		if f.sync[i] {
			return uint64(i), true
		}
	}
	return 0, false
}

// IsSync reports block i's flag.
func (f *Feed) IsSync(i uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return i < uint64(len(f.sync)) && f.sync[i]
}

// Added is when block i was appended.
func (f *Feed) Added(i uint64) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.added[i]
}

// Set replaces block i (tests use it to damage blocks).
func (f *Feed) Set(i uint64, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocks[i] = b
}
