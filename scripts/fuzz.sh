#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME each (default 3s), FUZZJOBS at a time
# (default 2: each fuzzes with one worker, so two runs fill two cores). Each package's test
# binary is built once with the fuzzing instrumentation (go test -c -fuzz) and run for each of
# its targets in the package's directory, with the go command's corpus cache, as `go test
# -fuzz` does; not a build and link a target.
#
# `scripts/fuzz.sh build` only builds the binaries, into $FUZZBIN; a later run given the same
# $FUZZBIN takes the binaries it finds there (make test builds them beside the tests, at the
# lowest priority, from the CPU the tests leave idle).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-3s}
jobs=${FUZZJOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cache=$(go env GOCACHE)/fuzz
bin=${FUZZBIN:-$work/bin}

# build makes package $1's fuzzing test binary, unless it is there already.
build() {
  local out
  out="$bin/$(echo "$1" | tr '/' '_').test"
  [ -x "$out" ] && return 0
  go test -c -fuzz=. -o "$out.tmp" "$1" && mv "$out.tmp" "$out"
}

# one runs target $3 of package $1 (in directory $2), its output in its own log; printed only
# when it fails.
one() {
  local pkg=$1 dir=$2 f=$3 name log
  name=$(echo "$pkg" | tr '/' '_')
  log="$work/log/$name.$f.log"
  run() {
    (cd "$dir" && "$bin/$name.test" -test.run='^$' -test.fuzz="^$f\$" -test.fuzztime="$t" \
      -test.parallel=1 -test.fuzzcachedir="$cache/$pkg") >"$log" 2>&1
  }
  echo "fuzz $pkg $f ($t)"
  # Go's fuzzer can end a short run with "context deadline exceeded" at its own deadline
  # (while minimising a new interesting input, or with a loaded machine's worker late to
  # stop) with no failing input found: such a run is run again, up to three times in all.
  # A real failure writes its input under testdata/fuzz and fails here at once.
  local try
  for try in 1 2 3; do
    run && return 0
    if ! grep -q 'context deadline exceeded' "$log" || grep -q 'Failing input written' "$log"; then
      cat "$log"
      echo "FAIL $pkg $f"
      return 1
    fi
    echo "  ($f: the fuzzer hit its own deadline with no failing input, run $try of 3)"
  done
  cat "$log"
  echo "FAIL $pkg $f: the fuzzer hit its deadline three times"
  return 1
}
export -f build one
export t work cache bin
mkdir -p "$bin" "$work/log"

pkgs=() dirs=()
while read -r pkg dir; do
  grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null && { pkgs+=("$pkg"); dirs+=("$dir"); }
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
printf '%s\n' "${pkgs[@]}" | xargs -P "$jobs" -n 1 bash -c 'build "$0"' ||
  { echo "a fuzzing test binary did not build"; exit 1; }
[ "${1:-}" = build ] && exit 0
targets=()
for i in "${!pkgs[@]}"; do
  for f in $("$bin/$(echo "${pkgs[$i]}" | tr '/' '_').test" -test.list '^Fuzz' | grep '^Fuzz' || true); do
    targets+=("${pkgs[$i]} ${dirs[$i]} $f")
  done
done
# xargs exits non-zero (123) when any run failed; the failing run printed its log.
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -L 1 bash -c 'one "$0" "$1" "$2"' ||
  { echo "a fuzz target failed (its output is above)"; exit 1; }
echo "${#targets[@]} fuzz targets ran for $t each, $jobs at a time"
