package wakeup

import "testing"

func TestNotifyWakesEveryWaiterOnce(t *testing.T) {
	var s Signal
	s.Notify() // before any waiter: wakes nobody later
	a, b := s.C(), s.C()
	for _, c := range []<-chan struct{}{a, b} {
		select {
		case <-c:
			t.Fatal("woken before a Notify")
		default:
		}
	}
	s.Notify()
	for i, c := range []<-chan struct{}{a, b} {
		select {
		case <-c:
		default:
			t.Fatalf("waiter %d not woken", i)
		}
	}
	select {
	case <-s.C():
		t.Fatal("the channel after a Notify is already closed")
	default:
	}
}
