package leakcheck

import (
	"testing"
	"time"
)

func TestFindsLeftGoroutines(t *testing.T) {
	before := snapshot()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	if left := leftSince(before, 100*time.Millisecond); len(left) != 1 {
		t.Fatalf("%d goroutines reported, want the blocked one: %v", len(left), left)
	}
	close(stop)
	<-done
	if left := leftSince(before, time.Second); len(left) != 0 {
		t.Fatalf("finished goroutine still reported: %v", left)
	}
}
