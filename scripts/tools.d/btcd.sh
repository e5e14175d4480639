#!/usr/bin/env bash
# Builds the btcd full node used by wallet's simnet tests into $DV_TOOLS_CACHE/btcd-<version>/,
# from the Go module proxy with btcd's own go.mod (not the project's), only when missing.
set -euo pipefail
V=${DV_BTCD_VERSION:-v0.24.2}
CACHE=${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}
out="$CACHE/btcd-$V"
[ -x "$out/btcd" ] && exit 0
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.btcd-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "building btcd $V into $out (about 2 minutes on a cold machine)"
start=$(date +%s)
# Outside any module, so `go install pkg@version` resolves with btcd's own go.mod.
if ! (cd "$tmp" && GOWORK=off GOFLAGS= GOBIN="$tmp/bin" go install -trimpath -ldflags='-s -w' \
  "github.com/btcsuite/btcd@$V") >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log" >&2
  exit 1
fi
mkdir -p "$tmp/out" && mv "$tmp/bin/btcd" "$tmp/out/btcd"
rm -rf "$out" && mv "$tmp/out" "$out"
echo "btcd $V built in $(( $(date +%s) - start )) s"
