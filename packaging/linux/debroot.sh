#!/usr/bin/env bash
# Prints the path of a minimal Debian root (a directory made by mmdebstrap, variant apt, with its
# package lists kept) for the install test, making it first when it is not cached. The test never
# writes into it: it mounts it read-only under an overlay. The cache lives outside the
# repository, under $DV_TOOLS_CACHE/debroot, keyed by suite and architecture, and is remade
# after 14 days (its package lists then name versions the mirror no longer has). The packages come from the
# Debian source apt on this machine already uses (its deb822 file), or deb.debian.org.
# Usage: debroot.sh [SUITE]   (default: this machine's suite)
set -euo pipefail
suite=${1:-$(. /etc/os-release && echo "$VERSION_CODENAME")}
arch=$(dpkg --print-architecture)
cache=${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}/debroot
root=$cache/$suite-$arch
stamp=$root.made
if [ -d "$root" ] && [ -f "$stamp" ] && [ -z "$(find "$stamp" -mtime +14)" ]; then
  echo "$root"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9   # one maker at a time; a second caller waits, then finds it made
if [ -d "$root" ] && [ -f "$stamp" ] && [ -z "$(find "$stamp" -mtime +14)" ]; then echo "$root"; exit 0; fi
rm -rf "$root.part"
command -v mmdebstrap >/dev/null || { echo "debroot.sh: mmdebstrap is missing (make deps-test installs it)" >&2; exit 1; }
mirrors=()
src=/etc/apt/sources.list.d/debian.sources
if [ -r "$src" ] && grep -q "^Suites:.*\b$suite\b" "$src"; then
  # Only the binary entries of this machine's own Debian sources (not deb-src, not third parties).
  tmp=$(mktemp --suffix=.sources)
  trap 'rm -f "$tmp"' EXIT
  awk -v RS= -v ORS='\n\n' '/(^|\n)Types:([^\n]*[ \t])?deb([ \t\n]|$)/' "$src" > "$tmp"
  mirrors=("$tmp")
fi
# Keep the package lists (the test installs from them without apt-get update) and apt's cache.
mmdebstrap --quiet --variant=apt --architectures="$arch" \
  --skip=cleanup/apt/lists --skip=cleanup/apt/cache \
  "$suite" "$root.part" "${mirrors[@]}" >&2
rm -rf "$root" "$stamp"
mv "$root.part" "$root"
date -u +%FT%TZ > "$stamp"
echo "$root"
