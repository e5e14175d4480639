package mediatime

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "1m30s", want: 90 * time.Second},
		{in: "1:30", want: 90 * time.Second},
		{in: "90", want: 90 * time.Second},
		{in: "1.5", want: 1500 * time.Millisecond},
		{in: "1:02:03", want: time.Hour + 2*time.Minute + 3*time.Second},
		{in: "0", want: 0},
		{in: "", bad: true},
		{in: "-5s", bad: true},
		{in: "1:75", bad: true},
		{in: "1:2:3:4", bad: true},
		{in: "soon", bad: true},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v (bad %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// FuzzParse: any text gives a time of 0 or more, or an error; never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1m30s", "1:30", "90", "1:02:03", "1.5", "", "-1s", "99999999999:59", "1e308", "NaN", "Inf", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err == nil && d < 0 {
			t.Fatalf("Parse(%q) = %v", s, d)
		}
	})
}
