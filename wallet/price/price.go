// Package price is a stream's price: an amount of sats per interval of media time, or free.
// All arithmetic is in integer millisatoshis and milliseconds, with 128-bit intermediates, so
// conversions never round through floats and never overflow silently.
package price

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Unit is the unit of a price's interval.
type Unit uint8

// Units a price can be quoted in.
const (
	Second Unit = iota + 1
	Minute
	Hour
)

func (u Unit) millis() uint64 {
	switch u {
	case Second:
		return 1000
	case Minute:
		return 60_000
	case Hour:
		return 3_600_000
	}
	return 0
}

func (u Unit) String() string {
	switch u {
	case Second:
		return "seconds"
	case Minute:
		return "minutes"
	case Hour:
		return "hours"
	}
	return fmt.Sprintf("unit(%d)", uint8(u))
}

// ParseUnit accepts "second(s)", "minute(s)", "hour(s)" and their short forms s, min, h.
func ParseUnit(s string) (Unit, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "s", "sec", "secs", "second", "seconds":
		return Second, nil
	case "m", "min", "mins", "minute", "minutes":
		return Minute, nil
	case "h", "hr", "hrs", "hour", "hours":
		return Hour, nil
	}
	return 0, fmt.Errorf("price: unknown time unit %q (use seconds, minutes or hours)", s)
}

// MaxSats bounds a price's amount: 21 million BTC in sats.
const MaxSats = 21_000_000 * 100_000_000

// MaxInterval bounds a price's interval count.
const MaxInterval = 1_000_000

// Price is Sats per Interval Units of delivered media time. The zero Price is free.
type Price struct {
	Sats     uint64
	Interval uint32
	Unit     Unit
}

// Free is the price of a free stream.
var Free = Price{}

// New returns a validated price of sats per interval units.
func New(sats uint64, interval uint32, unit Unit) (Price, error) {
	p := Price{Sats: sats, Interval: interval, Unit: unit}
	return p, p.Validate()
}

// IsFree reports whether the stream costs nothing.
func (p Price) IsFree() bool { return p.Sats == 0 }

// Validate reports whether p is a usable price.
func (p Price) Validate() error {
	if p.IsFree() {
		if p.Interval != 0 || p.Unit != 0 {
			return errors.New("price: a free price has no interval")
		}
		return nil
	}
	if p.Sats > MaxSats {
		return fmt.Errorf("price: %d sats is more than all bitcoin", p.Sats)
	}
	if p.Interval == 0 || p.Interval > MaxInterval {
		return fmt.Errorf("price: interval %d out of range 1..%d", p.Interval, MaxInterval)
	}
	if p.Unit.millis() == 0 {
		return fmt.Errorf("price: unknown unit %d", uint8(p.Unit))
	}
	return nil
}

// PeriodMillis is the length of one priced interval in milliseconds.
func (p Price) PeriodMillis() uint64 { return uint64(p.Interval) * p.Unit.millis() }

// ErrOverflow is returned when a conversion does not fit in 64 bits.
var ErrOverflow = errors.New("price: amount too large")

// mulDiv returns a*b/c rounded down (or up when ceil), failing on overflow.
func mulDiv(a, b, c uint64, ceil bool) (uint64, error) {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 0, ErrOverflow
	}
	q, r := bits.Div64(hi, lo, c)
	if ceil && r != 0 {
		if q == math.MaxUint64 {
			return 0, ErrOverflow
		}
		q++
	}
	return q, nil
}

// CostMsat is what ms milliseconds of media cost, in millisats, rounded up.
func (p Price) CostMsat(ms uint64) (uint64, error) {
	if p.IsFree() {
		return 0, nil
	}
	if err := p.Validate(); err != nil {
		return 0, err
	}
	return mulDiv(p.Sats*1000, ms, p.PeriodMillis(), true)
}

// CostSats is what d of media costs, rounded up to whole sats (on-chain and most wallets
// cannot pay fractions of a sat).
func (p Price) CostSats(d time.Duration) (uint64, error) {
	if d < 0 {
		return 0, errors.New("price: negative duration")
	}
	msat, err := p.CostMsat(uint64(d / time.Millisecond))
	if err != nil {
		return 0, err
	}
	sats := msat / 1000
	if msat%1000 != 0 {
		sats++ // (msat+999)/1000 would wrap near the top of uint64
	}
	return sats, nil
}

// MillisFor is how many milliseconds of media msat millisats buy, rounded down.
// A free price has no meaningful answer and returns 0.
func (p Price) MillisFor(msat uint64) uint64 {
	if p.IsFree() || p.Validate() != nil {
		return 0
	}
	ms, err := mulDiv(msat, p.PeriodMillis(), p.Sats*1000, false)
	if err != nil {
		return math.MaxUint64
	}
	return ms
}

// DurationFor is MillisFor as a time.Duration, saturating at the largest Duration.
func (p Price) DurationFor(sats uint64) time.Duration {
	if sats > math.MaxUint64/1000 {
		sats = math.MaxUint64 / 1000
	}
	ms := p.MillisFor(sats * 1000)
	if ms > uint64(math.MaxInt64/int64(time.Millisecond)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// Preset is one "buy N minutes" choice with its cost.
type Preset struct {
	Duration time.Duration
	Sats     uint64
}

// DefaultPresetDurations are the durations offered to viewers by default.
var DefaultPresetDurations = []time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}

// Presets prices each duration; durations whose cost overflows are left out.
func (p Price) Presets(ds []time.Duration) []Preset {
	out := make([]Preset, 0, len(ds))
	for _, d := range ds {
		s, err := p.CostSats(d)
		if err != nil {
			continue
		}
		out = append(out, Preset{Duration: d, Sats: s})
	}
	return out
}

// String renders "1000 sats per hour", "10 sats per 30 seconds" or "free"; Parse reads it back.
func (p Price) String() string {
	if p.IsFree() {
		return "free"
	}
	if p.Interval == 1 {
		return fmt.Sprintf("%d sats per %s", p.Sats, strings.TrimSuffix(p.Unit.String(), "s"))
	}
	return fmt.Sprintf("%d sats per %d %s", p.Sats, p.Interval, p.Unit)
}

// Parse reads a price written as "free", "1000 sats per hour", "10 sats/30 seconds" or "1000 sat/h".
func Parse(s string) (Price, error) {
	if len(s) > 100 {
		return Price{}, errors.New("price: text too long")
	}
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "free" || t == "0" {
		return Free, nil
	}
	t = strings.ReplaceAll(t, "/", " per ")
	f := strings.Fields(spaceNumbers(t))
	// Forms: N sats per [K] unit
	if len(f) >= 2 && (f[1] == "satoshi" || f[1] == "satoshis") {
		f[1] = "sats"
	}
	if len(f) < 4 || (f[1] != "sat" && f[1] != "sats") || f[2] != "per" {
		return Price{}, fmt.Errorf("price: cannot read %q (write e.g. \"1000 sats per hour\" or \"free\")", s)
	}
	sats, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return Price{}, fmt.Errorf("price: amount %q is not a whole number of sats", f[0])
	}
	interval := uint64(1)
	rest := f[3:]
	if len(rest) == 2 {
		interval, err = strconv.ParseUint(rest[0], 10, 32)
		if errors.Is(err, strconv.ErrRange) {
			return Price{}, fmt.Errorf("price: interval %s is too large (at most %d)", rest[0], MaxInterval)
		}
		if err != nil {
			return Price{}, fmt.Errorf("price: interval %q is not a whole number", rest[0])
		}
		rest = rest[1:]
	}
	if len(rest) != 1 {
		return Price{}, fmt.Errorf("price: cannot read %q", s)
	}
	u, err := ParseUnit(rest[0])
	if err != nil {
		return Price{}, err
	}
	if sats == 0 {
		return Price{}, errors.New("price: 0 sats; write \"free\" for a free stream")
	}
	return New(sats, uint32(interval), u)
}

// spaceNumbers writes t with its numbers apart from the words around them ("1000sats" and
// "30s" as "1000 sats" and "30 s") and without thousands separators ("1,000" and "1_000" as
// "1000"), the forms people type a price in.
func spaceNumbers(t string) string {
	var b strings.Builder
	isDigit := func(i int) bool { return i >= 0 && i < len(t) && t[i] >= '0' && t[i] <= '9' }
	var prev byte // the last byte written
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c == ',' || c == '_') && isDigit(i-1) && isDigit(i+1) && isDigit(i+2) && isDigit(i+3) && !isDigit(i+4) {
			continue // a thousands separator: three digits follow, then no fourth
		}
		digit, prevDigit := c >= '0' && c <= '9', prev >= '0' && prev <= '9'
		if prev != 0 && digit != prevDigit && prev != ' ' && c != ' ' {
			b.WriteByte(' ')
		}
		b.WriteByte(c)
		prev = c
	}
	return b.String()
}
