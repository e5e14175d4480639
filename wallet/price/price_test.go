package price

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseAndString(t *testing.T) {
	cases := []struct {
		in   string
		want Price
		str  string
	}{
		{"free", Free, "free"},
		{"1000 sats per hour", Price{1000, 1, Hour}, "1000 sats per hour"},
		{"10 sats per 30 seconds", Price{10, 30, Second}, "10 sats per 30 seconds"},
		{"1000 sat/h", Price{1000, 1, Hour}, "1000 sats per hour"},
		{" 5 SATS PER 2 minutes ", Price{5, 2, Minute}, "5 sats per 2 minutes"},
		{"1000sats/hour", Price{1000, 1, Hour}, "1000 sats per hour"},
		{"1,000 sats per hour", Price{1000, 1, Hour}, "1000 sats per hour"},
		{"1,000,000 sats per 10 hours", Price{1_000_000, 10, Hour}, "1000000 sats per 10 hours"},
		{"1000 sats/30s", Price{1000, 30, Second}, "1000 sats per 30 seconds"},
		{"1000 satoshis per hour", Price{1000, 1, Hour}, "1000 sats per hour"},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if got != c.want || got.String() != c.str {
			t.Errorf("Parse(%q) = %+v %q, want %+v %q", c.in, got, got.String(), c.want, c.str)
		}
		back, err := Parse(got.String())
		if err != nil || back != got {
			t.Errorf("round trip %q: %+v %v", got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "sats per hour", "-1 sats per hour", "1.5 sats per hour", "10 sats per fortnight",
		"10 sats per 0 hours", "0 sats per hour", "99999999999999999999 sats per hour", "10 euros per hour",
		"1,00 sats per hour", "1,0000 sats per hour", "10 sats per 1,5 hours"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// An interval too large for a price is called that, not "not a whole number".
func TestParseIntervalTooLarge(t *testing.T) {
	_, err := Parse("1000 sats per 4294967297 hours")
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("error %v", err)
	}
}

func TestConversions(t *testing.T) {
	hour := Price{1000, 1, Hour}
	cases := []struct {
		p        Price
		d        time.Duration
		wantSats uint64
	}{
		{hour, time.Hour, 1000},
		{hour, time.Minute, 17},     // 16.67 rounded up
		{hour, time.Millisecond, 1}, // never free by rounding
		{Price{1, 1, Hour}, time.Second, 1},
		{Price{60, 1, Minute}, 90 * time.Second, 90},
		{Free, time.Hour, 0},
	}
	for _, c := range cases {
		got, err := c.p.CostSats(c.d)
		if err != nil || got != c.wantSats {
			t.Errorf("%v.CostSats(%v) = %d, %v; want %d", c.p, c.d, got, err, c.wantSats)
		}
	}
	if got := hour.DurationFor(1000); got != time.Hour {
		t.Errorf("1000 sats buy %v, want 1h", got)
	}
	if got := hour.DurationFor(1); got != 3600*time.Millisecond {
		t.Errorf("1 sat buys %v, want 3.6s", got)
	}
	if got := hour.MillisFor(1); got != 3 {
		t.Errorf("1 msat buys %d ms, want 3 (3.6 rounded down)", got)
	}
	// Cost of what an amount buys never exceeds the amount.
	for _, msat := range []uint64{1, 999, 1000, 123_456_789, 2_100_000_000_000_000} {
		ms := hour.MillisFor(msat)
		c, err := hour.CostMsat(ms)
		if err != nil || c > msat {
			t.Errorf("msat %d -> %d ms -> %d msat (%v)", msat, ms, c, err)
		}
	}
	// Within 999 of the top of uint64, rounding up to whole sats must not wrap to 0.
	big := Price{963329968293721, 47, Second}
	if msat, err := big.CostMsat(15 * 60 * 1000); err != nil || msat < math.MaxUint64-999 {
		t.Errorf("the case is not near the top any more: %d %v", msat, err)
	} else if got, err := big.CostSats(15 * time.Minute); err != nil || got != msat/1000+1 {
		t.Errorf("%v.CostSats(15m) = %d, %v; want %d", big, got, err, msat/1000+1)
	}
	if _, err := (Price{MaxSats, 1, Second}).CostMsat(math.MaxUint64); err != ErrOverflow {
		t.Errorf("overflow not reported: %v", err)
	}
}

func TestPresets(t *testing.T) {
	ps := Price{1000, 1, Hour}.Presets(DefaultPresetDurations)
	want := []uint64{84, 250, 500, 1000, 2000}
	if len(ps) != len(want) {
		t.Fatalf("got %d presets", len(ps))
	}
	for i, p := range ps {
		if p.Sats != want[i] {
			t.Errorf("preset %v costs %d, want %d", p.Duration, p.Sats, want[i])
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"free", "1000 sats per hour", "1 sat/30 s", "7 sats per 2 minutes"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned invalid %+v: %v", s, p, err)
		}
		back, err := Parse(p.String())
		if err != nil || back != p {
			t.Fatalf("round trip of %q: %+v %v", p.String(), back, err)
		}
	})
}
