// Package faults holds the fault-injection points of the stream packages, for their tests
// only: a test sets a hook, production code runs with none set (one atomic load per point).
// It is internal to stream/, so no other part of the program can reach it.
package faults

import "sync/atomic"

var beforeSync atomic.Pointer[func(dir string)]

// SetBeforeSync makes every feed call hook (with the feed's directory) before it syncs its
// files to disk; a hook that blocks stands for a disk whose sync hangs. It returns a function
// that removes the hook.
func SetBeforeSync(hook func(dir string)) (restore func()) {
	beforeSync.Store(&hook)
	return func() { beforeSync.Store(nil) }
}

// BeforeSync runs the hook SetBeforeSync set, if any.
func BeforeSync(dir string) {
	if h := beforeSync.Load(); h != nil {
		(*h)(dir)
	}
}
