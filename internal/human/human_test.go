package human

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1024.0 KiB"},
		{1 << 20, "1.0 MiB"},
		{12_900_000, "12.3 MiB"},
		{1 << 30, "1.00 GiB"},
		{2_200_000_000, "2.05 GiB"},
		{1<<64 - 1, "17179869184.00 GiB"},
	} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{400 * time.Millisecond, "0 s"},
		{45 * time.Second, "45 s"},
		{5 * time.Minute, "5 min"},
		{302400 * time.Millisecond, "5 min 2 s"},
		{30 * time.Minute, "30 min"},
		{time.Hour, "1 hour"},
		{2 * time.Hour, "2 hours"},
		{90 * time.Minute, "1 h 30 min"},
		{time.Hour + 5*time.Second, "1 h 0 min 5 s"},
		{7 * 24 * time.Hour, "168 hours"},
		{-5 * time.Minute, "-5 min"},
	} {
		if got := Duration(tc.d); got != tc.want {
			t.Errorf("Duration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
