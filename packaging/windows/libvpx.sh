#!/usr/bin/env bash
# Builds libvpx as a static mingw-w64 library from Debian's own source package (with
# Debian's security patches), once per Debian version, into $DV_TOOLS_CACHE. Prints the
# install prefix (the one line on stdout); everything else goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${DV_TOOLS_CACHE:?DV_TOOLS_CACHE is not set (the Makefile sets it)}"
exec 3>&1 1>&2

# Debian's source stanza: the same URIs, suites and key as the binary one apt already uses
# (root's files: through sudo for a normal user, as scripts/apt.sh installs packages).
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "libvpx.sh: not root and no sudo; add deb-src lines for Debian's source packages by hand" >&2; exit 1; }
  sudo="sudo"
fi
if ! apt-cache showsrc libvpx >/dev/null 2>&1 || [ -z "$(apt-cache showsrc libvpx 2>/dev/null)" ]; then
  if [ -f /etc/apt/sources.list.d/debian.sources ] && [ ! -f /etc/apt/sources.list.d/debian-src.sources ]; then
    echo "libvpx.sh: adding deb-src for Debian's source packages (/etc/apt/sources.list.d/debian-src.sources)"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $sudo tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  elif [ -f /etc/apt/sources.list ] && ! grep -q '^deb-src' /etc/apt/sources.list; then
    echo "libvpx.sh: adding deb-src for Debian's source packages (/etc/apt/sources.list.d/debian-src.list)"
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | $sudo tee /etc/apt/sources.list.d/debian-src.list >/dev/null
  fi
  $sudo apt-get update -qq
fi
version="$(apt-cache showsrc libvpx | sed -n 's/^Version: //p' | sort -V | tail -1)"
[ -n "$version" ] || { echo "libvpx.sh: apt knows no libvpx source package" >&2; exit 1; }
# VP8 only: the app neither encodes nor decodes VP9 (half the build time, a smaller exe).
# The configuration is part of the cache key.
prefix="$cache/libvpx-mingw64-vp8-$version"
# pe_only says whether $1/lib/libvpx.a holds mingw-w64 objects only: a library built for another
# target (a cache from before the fix below) would fail at the app's link, with pages of
# undefined references.
pe_only() {
  [ "$(x86_64-w64-mingw32-objdump -f "$1/lib/libvpx.a" | sed -n 's/.*file format //p' | sort -u)" = "pe-x86-64" ]
}
if [ -f "$prefix/lib/libvpx.a" ] && [ -f "$prefix/.complete" ] && pe_only "$prefix"; then
  echo "$prefix" >&3
  exit 0
fi
work="$(mktemp -d "$cache/libvpx-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "libvpx.sh: building libvpx $version (VP8) for x86_64-w64-mingw32 (about a minute) in $work"
(cd "$work" && apt-get source -qq "libvpx=$version" >/dev/null)
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'libvpx-*' | head -1)"
mkdir -p "$work/build"
rm -rf "$prefix"
# configure takes the tools named in the environment over CROSS's: the Makefile exports
# CC=clang (the host's compiler) for cgo, which would build a Linux library.
unset CC CXX AS AR LD NM STRIP RANLIB CFLAGS CXXFLAGS LDFLAGS
# The compiler's warnings go to a log, shown only if the build fails.
if ! (cd "$work/build" && CROSS=x86_64-w64-mingw32- "$src/configure" --target=x86_64-win64-gcc --prefix="$prefix" \
   --disable-examples --disable-tools --disable-docs --disable-unit-tests --disable-vp9 \
   --enable-static --disable-shared --as=nasm &&
 make -j"$(nproc)" && make install) >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log"
  echo "libvpx.sh: the libvpx build failed (the end of its log is above)"
  exit 1
fi
pe_only "$prefix" || {
  echo "libvpx.sh: $prefix/lib/libvpx.a holds objects for another target than mingw-w64"
  rm -rf "$prefix"
  exit 1
}
# cgo does not pass --static to pkg-config, and vpx.pc names -lpthread only in Libs.private.
sed -i 's/^Libs: \(.*\)$/Libs: \1 -lpthread/' "$prefix/lib/pkgconfig/vpx.pc"
echo "$version" > "$prefix/.complete"
echo "$prefix" >&3
