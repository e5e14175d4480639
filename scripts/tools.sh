#!/usr/bin/env bash
# Builds the test tools that are not Debian packages into $DV_TOOLS_CACHE, keyed by version.
# Each tools.d/*.sh script builds one tool and is skipped when its versioned output exists.
set -euo pipefail
cd "$(dirname "$0")"
export DV_TOOLS_CACHE=${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}
mkdir -p "$DV_TOOLS_CACHE"
for s in tools.d/*.sh; do
  [ -e "$s" ] || continue
  bash "$s"
done
