package replicate

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket: rate tokens a second, at most burst saved. A nil limiter
// allows everything.
type limiter struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// take takes a token and returns how long to wait before using it.
func (l *limiter) take() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// allow takes a token if one is there now.
func (l *limiter) allow() bool {
	if l == nil {
		return true
	}
	if l.take() > 0 {
		l.mu.Lock()
		l.tokens++ // not used: give it back
		l.mu.Unlock()
		return false
	}
	return true
}

// wait takes a token, waiting for it unless ctx ends first.
func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	d := l.take()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
