// Package human writes quantities as people read them, the same way in the window and on the
// command line.
package human

import "fmt"

// Bytes is n in binary units: "512 B", "1.5 KiB", "12.3 MiB", "2.05 GiB".
func Bytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
