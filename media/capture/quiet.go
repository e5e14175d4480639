package capture

import (
	"log/slog"

	"github.com/dazaarvision/dazaar-vision/media/internal/audioquiet"
)

// The sound libraries' probe messages (ALSA, JACK) go to the debug log, not stderr
// (media/internal/audioquiet). Those printed while the microphones are probed (when the
// devices are first listed or opened) are held and logged as start-up messages.
func init() { audioquiet.SetSink(audioSink) }

func audioSink(msg string) { slog.Debug("sound system", "msg", msg) }

func logAudioMessages() {
	msgs, more := audioquiet.Drain()
	for _, m := range msgs {
		slog.Debug("sound system (start-up)", "msg", m)
	}
	if more > 0 {
		slog.Debug("sound system (start-up): more messages not kept", "count", more)
	}
}
