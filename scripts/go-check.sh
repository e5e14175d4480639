#!/usr/bin/env bash
# Checks that a Go command able to build this module is on the PATH. Go 1.21 and newer fetch the
# toolchain go.mod asks for (its `go` line) from the module proxy by themselves; older ones
# (Debian 12's golang-go is 1.19) cannot read that line and fail with a puzzling message.
set -euo pipefail
want=$(sed -n 's/^go //p' "$(dirname "$0")/../go.mod")
help="install Go 1.21 or newer (https://go.dev/doc/install, or Debian's bookworm-backports golang), then run make again: it fetches Go $want itself"
command -v "${GO:-go}" >/dev/null || { echo "no Go command found: $help" >&2; exit 1; }
have=$(GOTOOLCHAIN=local "${GO:-go}" version 2>/dev/null | grep -o 'go[0-9][0-9.]*' | head -1 || true)
have=${have#go}
major=$(echo "$have" | cut -d. -f1)
minor=$(echo "$have" | cut -d. -f2)
if ! [ "${major:-0}" -ge 1 ] 2>/dev/null || { [ "$major" -eq 1 ] && [ "${minor:-0}" -lt 21 ]; }; then
  echo "Go $have is too old to build Dazaar Vision: $help" >&2
  exit 1
fi
