// Package mediatime reads the times into a stream that the command line takes (watch -from,
// the seek command): a Go duration or a clock reading. It is apart from app/cli so that its
// fuzz target builds without the whole app.
package mediatime

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse reads a time into the stream: a Go duration (1m30s, 90s) or a clock
// reading (1:30, 1:02:03, 90).
func Parse(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	parts := strings.Split(s, ":")
	if s == "" || len(parts) > 3 {
		return 0, fmt.Errorf("seek takes a time into the stream such as 1m30s or 1:30, not %q", s)
	}
	var d time.Duration
	for i, p := range parts {
		unit := time.Second
		if i == len(parts)-1 {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || !(f >= 0) || f >= 60 && len(parts) > 1 || f > 1e9 {
				return 0, fmt.Errorf("seek takes a time into the stream such as 1m30s or 1:30, not %q", s)
			}
			d = d*60 + time.Duration(f*float64(unit))
			continue
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || i > 0 && n >= 60 || n > 1e6 {
			return 0, fmt.Errorf("seek takes a time into the stream such as 1m30s or 1:30, not %q", s)
		}
		d = d*60 + time.Duration(n)*time.Second
	}
	return d, nil
}
