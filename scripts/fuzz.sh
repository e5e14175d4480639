#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME each (default 3s), FUZZJOBS at a time
# (default 2: one a core; each fuzzes with one worker, so two runs fill two cores and the
# go command's build and link of one overlap the other's fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-3s}
jobs=${FUZZJOBS:-2}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# one runs target $2 of package $1, its output in its own log; printed only when it fails.
one() {
  local pkg=$1 f=$2 log
  log="$3/$(echo "$pkg.$f" | tr '/' '_').log"
  echo "fuzz $pkg $f ($t)"
  if ! go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -parallel 1 "$pkg" >"$log" 2>&1; then
    # Go's fuzzer can end a short run with "context deadline exceeded" while it is still
    # minimising a new interesting input (no failing input found): that run is run again once.
    # A real failure writes its input under testdata/fuzz and fails here.
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "  ($f: the fuzzer hit its deadline while minimising, not a failure: once more)"
      go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -parallel 1 "$pkg" >"$log" 2>&1 || { cat "$log"; return 1; }
    else
      cat "$log"
      return 1
    fi
  fi
}
export -f one
export t

targets=()
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null || continue
  for f in $(GOFLAGS="${DV_GOFLAGS:-}" go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    targets+=("$pkg $f")
  done
done
# xargs exits non-zero (123) when any run failed; the failing run printed its log.
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -L 1 bash -c 'one "$0" "$1" "'"$logs"'"' ||
  { echo "a fuzz target failed (its output is above)"; exit 1; }
echo "${#targets[@]} fuzz targets ran for $t each, $jobs at a time"
