#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME each (default 3s).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-3s}
n=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null || continue
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >/tmp/dv-fuzz.log 2>&1 || { cat /tmp/dv-fuzz.log; exit 1; }
    n=$((n+1))
  done
done
echo "$n fuzz targets ran for $t each"
