// Command testreport reads `go test -json` output on stdin, prints the output of
// failed and skipped tests, and ends with one summary line:
//
//	N passed, N failed, N skipped
//
// It exits non-zero when a test or package failed, when no test ran, or, with
// -noskip, when any test skipped (on a machine where every test can run, a
// skip means a real node, a network namespace or a display was missing).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type key struct{ pkg, test string }

func main() {
	noskip := flag.Bool("noskip", false, "fail when any test skipped")
	verbose := flag.Bool("v", false, "echo every output line")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *noskip, *verbose))
}

func run(in io.Reader, out io.Writer, noskip, verbose bool) int {
	outputs := map[key]*strings.Builder{}
	var passed, failed, skipped []key
	var pkgFailed []string
	pkgTime := map[string]float64{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors and other non-JSON lines go straight through.
			fmt.Fprintln(out, string(line))
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			b := outputs[k]
			if b == nil {
				b = &strings.Builder{}
				outputs[k] = b
			}
			if b.Len() < 1<<20 {
				b.WriteString(e.Output)
			}
			if verbose {
				fmt.Fprint(out, e.Output)
			}
		case "pass":
			if e.Test != "" {
				passed = append(passed, k)
				delete(outputs, k)
			} else {
				pkgTime[e.Package] = e.Elapsed
			}
		case "fail":
			if e.Test != "" {
				failed = append(failed, k)
			} else {
				pkgTime[e.Package] = e.Elapsed
				pkgFailed = append(pkgFailed, e.Package)
			}
		case "skip":
			if e.Test != "" {
				skipped = append(skipped, k)
			}
		}
	}
	for _, k := range failed {
		fmt.Fprintf(out, "\n=== FAIL %s %s\n%s", k.pkg, k.test, outputs[k])
	}
	for _, p := range pkgFailed {
		if b := outputs[key{p, ""}]; b != nil {
			fmt.Fprintf(out, "\n=== package %s failed\n%s", p, b)
		}
	}
	for _, k := range skipped {
		fmt.Fprintf(out, "\n=== SKIP %s %s\n%s", k.pkg, k.test, outputs[k])
	}
	var pkgs []string
	for p := range pkgTime {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	fmt.Fprintln(out, "\npackage times:")
	for _, p := range pkgs {
		fmt.Fprintf(out, "  %7.1fs %s\n", pkgTime[p], p)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", len(passed), len(failed), len(skipped))
	switch {
	case len(failed) > 0 || len(pkgFailed) > 0:
		return 1
	case len(passed) == 0:
		fmt.Fprintln(out, "testreport: no test ran")
		return 1
	case noskip && len(skipped) > 0:
		fmt.Fprintln(out, "testreport: tests skipped on a machine where all of them must run (see above)")
		return 1
	}
	return 0
}
