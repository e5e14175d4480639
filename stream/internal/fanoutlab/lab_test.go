package fanoutlab

import (
	"testing"

	"github.com/dazaarvision/dazaar-vision/stream/internal/anchor"
)

func TestSummarize(t *testing.T) {
	lat := func(n int, ms float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = ms
		}
		return v
	}
	for _, tc := range []struct {
		name                    string
		viewers                 []Viewer
		reached, complete, dpth int
		delivered               float64
	}{
		{"all in time", []Viewer{{Received: 100, Lat: lat(100, 10)}, {Received: 100, Lat: lat(100, 20), Depth: 3}}, 2, 2, 3, 1},
		{"one late", []Viewer{{Received: 100, Lat: lat(100, 10)}, {Received: 100, Lat: lat(100, 1500)}}, 1, 2, 0, 1},
		{"one short", []Viewer{{Received: 100, Lat: lat(100, 10)}, {Received: 94, Lat: lat(94, 10)}}, 1, 1, 0, 0.97},
		{"one got nothing", []Viewer{{Received: 100, Lat: lat(100, 10)}, {}}, 1, 1, 0, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Result{Blocks: 100}
			summarize(&r, tc.viewers)
			if r.Reached != tc.reached || r.Complete != tc.complete || r.MaxDepth != tc.dpth || r.Delivered != tc.delivered {
				t.Fatalf("reached %d complete %d depth %d delivered %v, want %d %d %d %v",
					r.Reached, r.Complete, r.MaxDepth, r.Delivered, tc.reached, tc.complete, tc.dpth, tc.delivered)
			}
		})
	}
}

func TestPct(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct{ p, want float64 }{{50, 3}, {99, 5}, {0, 1}, {100, 5}, {20, 1}, {21, 2}} {
		if got := Pct(v, tc.p); got != tc.want {
			t.Errorf("Pct(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

// The machine's busy time only grows, and this process's own work shows in it.
func TestBusyCores(t *testing.T) {
	b0 := busyCores()
	if b0 <= 0 {
		t.Fatal("cannot read /proc/stat")
	}
	c0 := anchor.CPUSeconds()
	x := 0
	for anchor.CPUSeconds()-c0 < 0.2 {
		x++
	}
	if b1 := busyCores(); b1-b0 < 0.15 {
		t.Fatalf("busy time went from %.2f to %.2f s while this test spun 0.2 s", b0, b1)
	}
}
