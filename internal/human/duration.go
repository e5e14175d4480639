package human

import (
	"fmt"
	"time"
)

// Duration is d as people say it, to the second: "45 s", "5 min", "5 min 2 s", "1 hour",
// "2 hours", "1 h 30 min", "1 h 30 min 5 s". Not Go's "5m0s".
func Duration(d time.Duration) string {
	if d < 0 {
		return "-" + Duration(-d)
	}
	d = d.Round(time.Second)
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	switch {
	case h == 0 && m == 0:
		return fmt.Sprintf("%d s", s)
	case h == 0 && s == 0:
		return fmt.Sprintf("%d min", m)
	case h == 0:
		return fmt.Sprintf("%d min %d s", m, s)
	case m == 0 && s == 0 && h == 1:
		return "1 hour"
	case m == 0 && s == 0:
		return fmt.Sprintf("%d hours", h)
	case s == 0:
		return fmt.Sprintf("%d h %d min", h, m)
	}
	return fmt.Sprintf("%d h %d min %d s", h, m, s)
}
