// Package audioquiet keeps the sound libraries' start-up chatter off stderr. When the
// capture drivers start, miniaudio probes ALSA (and JACK when ALSA fails), and those
// libraries print what they find missing ("ALSA lib pcm.c:...: Unknown PCM cards.pcm.rear",
// "Cannot connect to server socket") straight to stderr, where a user takes it for an
// error. This package installs ALSA's and JACK's message hooks (snd_lib_error_set_handler,
// jack_set_error_function and jack_set_info_function, through dlopen of the same libraries
// miniaudio loads) and sets JACK_NO_START_SERVER, so the messages come here instead: Drain
// hands over those that arrived before a logger was ready, SetSink receives later ones.
// media/capture logs them at debug level.
//
// The hooks must be in place before miniaudio first loads the libraries. Loading them takes
// a few milliseconds, so it is not done in the program's initialisation path: init starts it
// on a goroutine of this package (which ends when the two libraries are loaded), and Install
// waits for it. media/capture calls Install before it probes the microphones; an output
// (media/audioout) opened later than the first few milliseconds of the program finds the
// hooks installed too, but should call Install before opening one to be sure.
package audioquiet

import "sync"

var installOnce sync.Once

func init() { go Install() }

// Install installs the hooks, once; it returns when they are in place.
func Install() { installOnce.Do(install) }

// maxHeld bounds the messages kept until Drain; later ones are counted, not kept.
const maxHeld = 64

var (
	mu      sync.Mutex
	sink    func(string)
	held    []string
	dropped int
)

func message(s string) {
	mu.Lock()
	f := sink
	if f == nil {
		if len(held) < maxHeld {
			held = append(held, s)
		} else {
			dropped++
		}
	}
	mu.Unlock()
	if f != nil {
		f(s)
	}
}

// SetSink sends every later message to f (nil: hold them again).
func SetSink(f func(string)) {
	mu.Lock()
	sink = f
	mu.Unlock()
}

// Drain returns the messages held so far and how many more did not fit, and forgets them.
func Drain() (msgs []string, more int) {
	mu.Lock()
	defer mu.Unlock()
	msgs, more = held, dropped
	held, dropped = nil, 0
	return msgs, more
}
