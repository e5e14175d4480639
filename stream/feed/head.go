package feed

import (
	"errors"
	"fmt"
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
// holding it. The head verifies against the feed's key and holds at least every append that
// returned before the call. A log record being written at that moment is left out (the head
// before it is returned); a read that meets a checkpoint (the files disagree, or the header is
// newer afterwards than the state read) is tried again.
func ReadHead(dir string) (Head, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // a torn tail is the writer's, not news
	var err error
	for try := 0; try < headReadTries; try++ {
		if try > 0 {
			time.Sleep(time.Duration(try) * 5 * time.Millisecond)
		}
		var f *Feed
		f, err = Open(dir, Options{ReadOnly: true, Logger: quiet})
		if errors.Is(err, os.ErrNotExist) {
			break // no feed there: reading again will not make one
		}
		if err != nil {
			continue
		}
		// The header read, then the log: a checkpoint between the two leaves the old header
		// and the emptied log, a signed but old head. Were the header newer now, read again.
		h := f.Head()
		cp, herr := f.fs.readHeader()
		seq := f.seq
		f.Close()
		if herr != nil {
			err = fmt.Errorf("feed: read header: %w", herr)
			continue
		}
		if cp != nil && cp.seq > seq {
			err = fmt.Errorf("feed: %s was checkpointed while its head was read", dir)
			continue
		}
		return h, nil
	}
	return Head{}, err
}
