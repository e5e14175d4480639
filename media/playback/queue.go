package playback

import (
	"image"
	"sync"
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

// next returns the oldest frame, or nil and a channel the next push closes. Both are taken
// under one lock: a frame pushed between a look at an empty queue and taking the channel
// would otherwise wake nobody, and sit there until the push after it.
func (q *videoQueue) next() (*Frame, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return nil, q.ch
	}
	return q.frames[0], nil
}

func (q *videoQueue) peek() *Frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return nil
	}
	return q.frames[0]
}

func (q *videoQueue) second() *Frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) < 2 {
		return nil
	}
	return q.frames[1]
}

func (q *videoQueue) pop() *Frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return nil
	}
	f := q.frames[0]
	q.frames = q.frames[1:]
	return f
}

func (q *videoQueue) drain() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, f := range q.frames {
		f.Release()
	}
	q.frames = nil
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
