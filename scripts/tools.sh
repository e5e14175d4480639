#!/usr/bin/env bash
# Builds the test tools that are not Debian packages into $DV_TOOLS_CACHE, keyed by version.
# Each tools.d/*.sh script builds one tool and is skipped when its versioned output exists.
set -euo pipefail
cd "$(dirname "$0")"
export DV_TOOLS_CACHE=${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}
mkdir -p "$DV_TOOLS_CACHE"
# btcd and lnd are pure Go: built without cgo they need no C compiler. `make test` builds them
# while apt is still installing packages, clang (the Makefile's CC) among them, so on a fresh
# machine a cgo build would find no compiler ("cgo: C compiler "clang" not found").
export CGO_ENABLED=0
# They run side by side: on a cold machine one's module download (network) overlaps another's
# compile.
pids=()
for s in tools.d/*.sh; do
  [ -e "$s" ] || continue
  bash "$s" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
  wait "$p" || rc=1
done
exit "$rc"
