package session

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"syscall"

	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/playback"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/wallet/ledger"
)

// plainError is what a person is shown when a session cannot start for a reason they can act
// on: one sentence, without the chain of internal causes (package names, file paths of the
// data directory's inner files); the cause stays reachable for errors.Is and goes to the log.
type plainError struct {
	text  string
	cause error
}

func (e *plainError) Error() string { return e.text }
func (e *plainError) Unwrap() error { return e.cause }

// plain says err in words when its cause is one a person can act on (the stream or the wallet
// open elsewhere, a full disk, a data directory that may not be written); what names what was
// being done ("cannot keep a copy of this stream"). Other causes are wrapped as "what: err".
func plain(log *slog.Logger, what string, err error) error {
	var text string
	switch {
	case errors.Is(err, feed.ErrLocked):
		text = what + ": this stream is open in another window or program that uses the same data directory; close it there first"
	case errors.Is(err, ledger.ErrInUse):
		text = "another paid stream of this data directory is live: one data directory sells one paid stream at a time; " +
			"stop the other one, or give this one a data directory of its own"
	case errors.Is(err, syscall.ENOSPC) || diskFullWindows(err):
		text = what + ": the disk is full"
	case errors.Is(err, fs.ErrPermission):
		text = what + ": Dazaar Vision may not write to its data directory (check its owner and permissions)"
	case errors.Is(err, feed.ErrStorage):
		text = what + ": the disk failed to read or write the stream's files; check the disk and try again"
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
	// The caller shows the sentence; the log keeps the cause (at Info: a warning would print
	// the same failure twice on the command line, the second time with internal paths).
	log.Info(text, "err", err)
	return &plainError{text: text, cause: err}
}

// stopped says why a live broadcast ended in one sentence a person can act on, when the cause
// is one they can (a full disk, a source that stopped, a disk that failed); what names the
// session's part that returned err ("capture"). The cause stays reachable and goes to the log.
func stopped(log *slog.Logger, what string, err error) error {
	const kept = "everything recorded so far is kept"
	var text string
	switch {
	case errors.Is(err, syscall.ENOSPC) || diskFullWindows(err):
		text = "the disk is full: recording stopped, and " + kept + ". Free some space, then resume the stream"
	case errors.Is(err, broadcast.ErrVideoStopped):
		text = "the camera (or screen) stopped giving pictures: it may have been unplugged or taken by another program; " + kept + ", and resuming the stream goes on from there"
	case errors.Is(err, broadcast.ErrAudioStopped):
		text = "the microphone stopped giving sound: it may have been unplugged or taken by another program; " + kept + ", and resuming the stream goes on from there"
	case errors.Is(err, feed.ErrStorage):
		text = "writing the stream to the disk failed: recording stopped, and " + kept + ". Check the disk, then resume the stream"
	default:
		return fmt.Errorf("%s stopped: %w", what, err)
	}
	log.Warn("the broadcast stopped", "part", what, "err", err)
	return &plainError{text: text, cause: err}
}

// playStopped says why the player stopped, in words where the cause is one a person can
// understand without the internal chain; the cause goes to the log.
func playStopped(log *slog.Logger, err error) string {
	var why string
	switch {
	case errors.Is(err, playback.ErrUnsupported):
		why = "this stream is in a format this version of Dazaar Vision cannot play (a newer version may)"
	case errors.Is(err, playback.ErrBadHeader):
		why = "the stream's first block, which says what it holds, is damaged"
	case errors.Is(err, syscall.ENOSPC) || diskFullWindows(err):
		why = "the disk is full"
	case errors.Is(err, feed.ErrStorage):
		why = "reading the stream's copy from the disk failed (check the disk)"
	default:
		return fmt.Sprintf("playback stopped: %v", err)
	}
	log.Warn("playback stopped", "err", err)
	return "playback stopped: " + why
}

// Windows' "disk full" errors (ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL), which syscall.ENOSPC
// does not match there; the same numbers mean other things elsewhere.
const (
	winErrorHandleDiskFull = 39
	winErrorDiskFull       = 112
)

func diskFullWindows(err error) bool {
	var errno syscall.Errno
	return runtime.GOOS == "windows" && errors.As(err, &errno) && (errno == winErrorHandleDiskFull || errno == winErrorDiskFull)
}
