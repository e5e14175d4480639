package playback

import (
	"image"
	"sync"
	"time"
)

// videoQueue holds decoded frames in stream order until they are due. It is bounded: a
// push onto a full queue drops (and releases) the oldest frame.
type videoQueue struct {
	mu     sync.Mutex
	frames []*Frame
	cap    int
	ch     chan struct{} // closed and replaced on every push
}

func newVideoQueue(n int) *videoQueue { return &videoQueue{cap: n, ch: make(chan struct{})} }

func (q *videoQueue) push(f *Frame) (dropped bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) >= q.cap {
		q.frames[0].Release()
		q.frames[0] = nil
		q.frames = q.frames[1:]
		dropped = true
	}
	q.frames = append(q.frames, f)
	close(q.ch)
	q.ch = make(chan struct{})
	return dropped
}

func (q *videoQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}

// next returns the oldest frame and the one after it (nil if none), or nil and a channel
// the next push closes. They are taken under one lock: a frame pushed between a look at an
// empty queue and taking the channel would otherwise wake nobody, and sit there until the
// push after it. The frames stay queued: the reader may still drop (and release) them, so
// the presenter takes one with remove before it shows or releases it.
func (q *videoQueue) next() (f, second *Frame, pushed <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch len(q.frames) {
	case 0:
		return nil, nil, q.ch
	case 1:
		return q.frames[0], nil, nil
	}
	return q.frames[0], q.frames[1], nil
}

// span is the oldest and the newest frame's PTS; ok is false when the queue is empty.
func (q *videoQueue) span() (oldest, newest time.Duration, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return 0, 0, false
	}
	return q.frames[0].PTS, q.frames[len(q.frames)-1].PTS, true
}

func (q *videoQueue) peek() *Frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return nil
	}
	return q.frames[0]
}

// remove takes f off the queue if it is still the oldest frame, and reports whether it was.
// When it is not, a push onto the full queue or a drain took it and released it: its
// picture may already be reused, and f is nobody's to show or release any more.
func (q *videoQueue) remove(f *Frame) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 || q.frames[0] != f {
		return false
	}
	q.frames[0] = nil
	q.frames = q.frames[1:]
	return true
}

// drain releases every queued frame and reports how many there were.
func (q *videoQueue) drain() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.frames)
	for _, f := range q.frames {
		f.Release()
	}
	q.frames = nil
	return n
}

// framePool recycles RGBA pictures of one size; it keeps at most n spare.
type framePool struct {
	w, h int
	free chan *image.RGBA
}

func newFramePool(w, h, n int) *framePool {
	return &framePool{w: w, h: h, free: make(chan *image.RGBA, n)}
}

func (p *framePool) get() *image.RGBA {
	if p == nil {
		return nil
	}
	select {
	case img := <-p.free:
		return img
	default:
		return image.NewRGBA(image.Rect(0, 0, p.w, p.h))
	}
}

func (p *framePool) put(img *image.RGBA) {
	if p == nil || img == nil || img.Rect.Dx() != p.w || img.Rect.Dy() != p.h {
		return
	}
	select {
	case p.free <- img:
	default:
	}
}
