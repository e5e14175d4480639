package broadcast

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// The rate-control test in media/vp8 measures the presets' bit rates on its own copy of them
// (this package imports vp8, so vp8's tests cannot import this one). This test reads that copy
// from vp8's source and keeps it equal to Presets().
func TestPresetsMatchRateTest(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../vp8/rate_test.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "ratePresets" || len(vs.Values) != 1 {
			return true
		}
		for _, e := range vs.Values[0].(*ast.CompositeLit).Elts {
			var row []string
			for _, v := range e.(*ast.CompositeLit).Elts {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("ratePresets holds a %T, want literals", v)
				}
				row = append(row, lit.Value)
			}
			rows = append(rows, row)
		}
		return false
	})
	ps := Presets()
	if len(rows) != len(ps) {
		t.Fatalf("vp8's rate test has %d presets, broadcast %d", len(rows), len(ps))
	}
	for i, p := range ps {
		want := []string{strconv.Quote(p.Name), strconv.Itoa(p.Width), strconv.Itoa(p.Height), strconv.Itoa(p.FrameRate), strconv.Itoa(p.VideoBitRate)}
		if len(rows[i]) != len(want) {
			t.Fatalf("vp8's rate preset %d is %v, want %v", i, rows[i], want)
		}
		for j := range want {
			got := rows[i][j]
			if n, err := strconv.ParseInt(got, 0, 64); err == nil { // 300_000 → 300000
				got = strconv.FormatInt(n, 10)
			}
			if got != want[j] {
				t.Errorf("vp8's rate preset %d is %v, broadcast's %v: update media/vp8/rate_test.go", i, rows[i], want)
				break
			}
		}
	}
}
