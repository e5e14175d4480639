package feed

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"
)

// headReadTries bounds ReadHead's attempts: a writer checkpointing while the files are read
// can make them disagree for a moment (a header older than the log it truncated).
const headReadTries = 5

// ReadHead reads the newest signed head of the feed in dir and lets it go, for a look from
// outside (a list of streams): no lock is taken and nothing is written, not even crash
// recovery, so it may run while another process appends to the feed or after one was killed
// holding it. The head verifies against the feed's key. A log record being written at that
// moment is left out (the head before it is returned); a read that meets a checkpoint in
// progress is tried again.
func ReadHead(dir string) (Head, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // a torn tail is the writer's, not news
	var err error
	for try := 0; try < headReadTries; try++ {
		if try > 0 {
			time.Sleep(time.Duration(try) * 5 * time.Millisecond)
		}
		var f *Feed
		f, err = Open(dir, Options{ReadOnly: true, Logger: quiet})
		if err == nil {
			h := f.Head()
			f.Close()
			return h, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			break // no feed there: reading again will not make one
		}
	}
	return Head{}, err
}
