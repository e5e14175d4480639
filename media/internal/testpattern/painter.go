package testpattern

import (
	"image"
	"sync"
	"time"

	"github.com/pion/mediadevices/pkg/io/video"
)

// Painter paints a frame counter into every picture a video.Reader returns, and remembers
// when each was painted and, when Keep is set, a copy of each painted picture.
type Painter struct {
	Keep bool

	mu      sync.Mutex
	n       uint32
	kept    map[uint32]*image.YCbCr
	painted map[uint32]time.Time
}

// Wrap returns r with counters painted in.
func (p *Painter) Wrap(r video.Reader) video.Reader {
	return video.ReaderFunc(func() (image.Image, func(), error) {
		img, release, err := r.Read()
		if err != nil {
			return img, release, err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.painted == nil {
			p.painted, p.kept = map[uint32]time.Time{}, map[uint32]*image.YCbCr{}
		}
		PaintCounter(img, p.n)
		p.painted[p.n&0xffff] = time.Now()
		if y, ok := img.(*image.YCbCr); ok && p.Keep {
			c := *y
			c.Y, c.Cb, c.Cr = append([]byte(nil), y.Y...), append([]byte(nil), y.Cb...), append([]byte(nil), y.Cr...)
			p.kept[p.n&0xffff] = &c
		}
		p.n++
		return img, release, nil
	})
}

// Source returns the kept picture with counter n.
func (p *Painter) Source(n uint32) *image.YCbCr {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kept[n]
}

// Painted returns when the picture with counter n was painted.
func (p *Painter) Painted(n uint32) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.painted[n]
	return t, ok
}
