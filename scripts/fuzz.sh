#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME each (default 3s).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-3s}
n=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null || continue
  for f in $(GOFLAGS="${DV_GOFLAGS:-}" go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    if ! go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >/tmp/dv-fuzz.log 2>&1; then
      # Go's fuzzer can end a short run with "context deadline exceeded" while it is still
      # minimising a new interesting input (no failing input found): that run is run again once.
      # A real failure writes its input under testdata/fuzz and fails here.
      if grep -q 'context deadline exceeded' /tmp/dv-fuzz.log && ! grep -q 'Failing input written' /tmp/dv-fuzz.log; then
        echo "  (the fuzzer hit its deadline while minimising, not a failure: once more)"
        go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >/tmp/dv-fuzz.log 2>&1 || { cat /tmp/dv-fuzz.log; exit 1; }
      else
        cat /tmp/dv-fuzz.log; exit 1
      fi
    fi
    n=$((n+1))
  done
done
echo "$n fuzz targets ran for $t each"
