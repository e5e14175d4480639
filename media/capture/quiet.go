package capture

import (
	"log/slog"

	"github.com/dazaarvision/dazaar-vision/media/internal/audioquiet"
)

// The sound libraries' probe messages (ALSA, JACK) go to the debug log, not stderr
// (media/internal/audioquiet). Those printed while the drivers started, before any logger
// was set up, are logged when the devices are first listed or opened.
func init() {
	audioquiet.SetSink(func(msg string) { slog.Debug("sound system", "msg", msg) })
}

func logAudioMessages() {
	msgs, more := audioquiet.Drain()
	for _, m := range msgs {
		slog.Debug("sound system (start-up)", "msg", m)
	}
	if more > 0 {
		slog.Debug("sound system (start-up): more messages not kept", "count", more)
	}
}
