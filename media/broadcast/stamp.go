package broadcast

import (
	"image"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/wave"
)

// Audio timestamps. A sound card's clock and the capture clock drift apart (tens of ppm
// to a few percent on cheap devices), and a device may lose samples. The stamper keeps a
// linear map from sample count to capture time. A chunk is handed over when it has been
// captured or later (never earlier), so the earliest arrival seen in each half-second
// window is the best measure of the map's error: at the end of every window the map moves
// by that minimum, and its slope (the device's rate against the capture clock) by half of
// it (rateGain), so a steady drift is tracked with no standing error. Scheduling delays (late
// arrivals) are ignored; drift and lost samples are followed within a window or two, so
// audio stays on the capture clock (which also stamps the pictures) however the device's
// clock runs.
//
// A step (the window's smallest error beyond ±50 ms) moves the map only when the next
// window confirms it (within 20 ms): lost samples leave a constant offset, while a stalled
// process that then catches up on buffered sound shows offsets that shrink window by
// window, and is no loss.
const stampWindow = 500 * time.Millisecond

const (
	rateGain    = 0.5
	stepMin     = 50 * time.Millisecond
	stepConfirm = 20 * time.Millisecond
)

type audioStamper struct {
	r     audio.Reader
	clock func() time.Duration
	rate  int
	log   *slog.Logger

	mu           sync.Mutex
	samples      int64 // samples read so far
	anchorSample int64
	anchorPTS    time.Duration
	started      bool
	scale        float64       // capture-clock seconds per device second
	winStart     int64         // first sample of the current window
	winMin       time.Duration // smallest error in the current window
	step         time.Duration // unconfirmed step seen in the previous window, or 0
	rated        bool          // a window after the first has been measured
	measured     bool          // the first window has been measured
}

func newAudioStamper(r audio.Reader, clock func() time.Duration, rate int, log *slog.Logger) *audioStamper {
	if log == nil {
		log = slog.Default()
	}
	return &audioStamper{r: r, clock: clock, rate: rate, log: log, scale: 1}
}

func (s *audioStamper) dur(samples int64) time.Duration {
	return time.Duration(samples * int64(time.Second) / int64(s.rate))
}

// at maps sample i to the capture clock; s.mu must be held.
func (s *audioStamper) at(i int64) time.Duration {
	return s.anchorPTS + time.Duration(float64(s.dur(i-s.anchorSample))*s.scale)
}

// Read implements audio.Reader.
func (s *audioStamper) Read() (wave.Audio, func(), error) {
	chunk, release, err := s.r.Read()
	if err != nil {
		return chunk, release, err
	}
	now := s.clock()
	n := int64(chunk.ChunkInfo().Len)
	s.mu.Lock()
	defer s.mu.Unlock()
	// The chunk's last sample was captured at the latest just now; its first, n samples
	// earlier.
	measured := now - s.dur(n)
	if !s.started {
		s.anchorSample, s.anchorPTS, s.started = s.samples, measured, true
		s.winStart, s.winMin = s.samples, 0
	} else {
		e := measured - s.at(s.samples)
		s.winMin = min(s.winMin, e)
		if w := s.dur(s.samples - s.winStart); w >= stampWindow {
			move := s.winMin
			if s.winMin > stepMin || s.winMin < -stepMin {
				if s.step != 0 && (s.winMin-s.step).Abs() <= stepConfirm {
					s.log.Debug("audio clock moved", "by", s.winMin)
					s.step = 0
				} else {
					s.step, move = s.winMin, 0 // wait for the next window to confirm
				}
			} else {
				// Only small errors adjust the rate, clamped to ±5 %, and gently: one
				// window's scheduling delay (a few ms on a busy machine) must not bend the
				// pitch of the resampled sound audibly (audioin.go smooths it further).
				// The first window measures how late the first chunk (the anchor) came, a
				// busy machine's start-up delay, not the device's rate: it moves the map only.
				s.step = 0
				if s.rated {
					s.scale = min(1.05, max(0.95, s.scale+rateGain*float64(s.winMin)/float64(w)))
				}
				s.rated = true
			}
			s.anchorPTS, s.anchorSample = s.at(s.samples)+move, s.samples
			s.measured = true
			s.winStart, s.winMin = s.samples, time.Duration(1<<62)
		}
	}
	s.samples += n
	return chunk, release, nil
}

// Scale is the device's rate against the capture clock: capture-clock seconds per
// device second.
func (s *audioStamper) Scale() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scale
}

// Measured says whether the first window has been measured: from then on the map no
// longer carries the start-up delay of the first chunk.
func (s *audioStamper) Measured() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.measured
}

// PTS is the capture time of sample number i.
func (s *audioStamper) PTS(i int64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at(i)
}

// decimator drops pictures to hold a frame rate below the device's (a 30 fps camera at
// the 15 fps preset).
type decimator struct {
	r        video.Reader
	clock    func() time.Duration
	interval time.Duration
	next     time.Duration
	started  bool
}

func newDecimator(r video.Reader, clock func() time.Duration, interval time.Duration) *decimator {
	return &decimator{r: r, clock: clock, interval: interval}
}

func (d *decimator) Read() (image.Image, func(), error) {
	for {
		img, release, err := d.r.Read()
		if err != nil {
			return img, release, err
		}
		now := d.clock()
		// A quarter-interval of tolerance keeps a source at exactly the wanted rate whole.
		if !d.started || now >= d.next-d.interval/4 {
			if !d.started || now-d.next > d.interval {
				d.next = now
			}
			d.started = true
			d.next += d.interval
			return img, release, nil
		}
		release()
	}
}
