#!/usr/bin/env bash
# Builds lnd (the Lightning node used by wallet's tests) into $DV_TOOLS_CACHE/lnd-<version>/, only
# when missing. lnd's go.mod carries a replace directive, so `go install lnd@version` is refused;
# it is built from a throwaway module with lnd's protobuf replace (see shared notes, bitcoin.md §7.1).
# The tests drive lnd over REST only, so lncli is not built. It is built without the compiler's
# optimisations (-N -l): on a cold 2-core machine that takes 180 s instead of 320 s (340 CPU-s
# instead of 590), and the tests' few payments do not notice.
# The cache key names the build, so an optimised lnd from an older cache is built again.
set -euo pipefail
V=${DV_LND_VERSION:-v0.20.0-beta}
CACHE=${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}
out="$CACHE/lnd-$V-noopt"
[ -x "$out/lnd" ] && exit 0
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.lnd-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "building lnd $V into $out (about 3 minutes on a cold 2-core machine)"
start=$(date +%s)
cd "$tmp"
export GOWORK=off GOFLAGS=-mod=mod
go mod init dv-lnd-build >/dev/null 2>&1
go mod edit -replace google.golang.org/protobuf=github.com/lightninglabs/protobuf-go-hex-display@v1.33.0-hex-display
if ! go get "github.com/lightningnetwork/lnd@$V" >"$tmp/get.log" 2>&1; then
  cat "$tmp/get.log" >&2
  exit 1
fi
go build -trimpath -gcflags='all=-N -l' -ldflags='-s -w' -o "$tmp/out/lnd" github.com/lightningnetwork/lnd/cmd/lnd
rm -rf "$out" && mv "$tmp/out" "$out"
echo "lnd $V built in $(( $(date +%s) - start )) s"
