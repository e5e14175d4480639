// Package wakeup is a signal that wakes every waiter at once: a channel closed and replaced on
// each Notify. A waiter takes C before it looks at the state it waits on, so a change made
// after that look closes the channel it holds and is never missed. Unlike a coalescing token
// (a channel of capacity one), every goroutine holding C wakes, not one of them.
package wakeup

import "sync"

// Signal is ready to use as its zero value; it must not be copied after first use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns the channel the next Notify closes.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes every goroutine waiting on a channel C returned before it.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
	}
	s.ch = make(chan struct{})
}
