#!/usr/bin/env bash
# Builds the Linux artefacts into OUT (default: dist/ at the repository's root):
#   dazaar-vision_<version>-<rev>_<arch>.deb   (dpkg-deb; Depends computed by dpkg-shlibdeps)
#   dazaar-vision-<version>-linux-<arch>.tar.xz (fyne package: usr/local/... and a Makefile)
# and beside each a <file>.sha256 (sha256sum -c reads it). The version comes from one place,
# FyneApp.toml's [Details] Version; the Debian revision and the release notes from
# packaging/linux/changelog, whose newest entry must be for that version.
# FORMATS=deb (environment) skips the tar.xz: the install test needs only the .deb, and
# compressing the binary once more for the tar.xz costs a CPU-minute on a busy machine.
# Needs (make package-linux installs them): go, a C compiler ($CC, else gcc; the Makefile sets
# clang), dpkg-dev, librsvg2-bin, appstream, desktop-file-utils, xz-utils.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$top/dist}" && cd "${1:-$top/dist}" && pwd)
umask 022
export LC_ALL=C.UTF-8 TZ=UTC

fail() { echo "package-linux: $*" >&2; exit 1; }
formats=" ${FORMATS:-deb tar.xz} "
made=()
cc=${CC:-gcc}
for tool in go "${cc%% *}" dpkg-deb dpkg-shlibdeps rsvg-convert appstreamcli desktop-file-validate xz; do
  command -v "$tool" >/dev/null || fail "$tool is missing (make package-linux installs it)"
done

app_id=vision.dazaar.app
pkg=dazaar-vision
version=$(sed -n '/^\[Details\]/,/^\[/s/^Version *= *"\(.*\)".*/\1/p' "$top/FyneApp.toml")
[ -n "$version" ] || fail "FyneApp.toml has no [Details] Version"
# The changelog's newest entry: "dazaar-vision (0.1.0-1) unstable; urgency=medium".
top_entry=$(head -1 "$here/changelog")
debversion=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$here/changelog")
[ "${debversion%-*}" = "$version" ] || fail "packaging/linux/changelog's newest entry is $debversion, but FyneApp.toml says $version: add an entry for $version"
release_date=$(date -u -d "$(sed -n 's/^ -- .*>  //p' "$here/changelog" | head -1)" +%F)
arch=$(dpkg --print-architecture)
case "$top_entry" in "$pkg ("*) ;; *) fail "packaging/linux/changelog must start with an entry for $pkg" ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "package-linux: building $pkg $version for $arch"
# -trimpath and -s -w: no build paths or symbol tables in a release; PIE for ASLR.
(cd "$top" && CGO_ENABLED=1 go build -trimpath -buildmode=pie \
  -ldflags "-s -w -X github.com/dazaarvision/dazaar-vision/app/version.Version=$version" \
  -o "$work/$pkg" .)
got=$("$work/$pkg" --version)
[ "$got" = "$pkg $version" ] || fail "the binary says \"$got\", not \"$pkg $version\""

# --- the .deb's tree
deb=$work/deb
install -D -m 0755 "$work/$pkg" "$deb/usr/bin/$pkg"
install -D -m 0644 "$here/$app_id.desktop" "$deb/usr/share/applications/$app_id.desktop"
for size in 16 22 24 32 48 64 128 256 512; do
  d=$deb/usr/share/icons/hicolor/${size}x${size}/apps
  mkdir -p "$d"
  rsvg-convert -w "$size" -h "$size" -o "$d/$app_id.png" "$top/assets/icon.svg"
done
install -D -m 0644 "$top/assets/icon.svg" "$deb/usr/share/icons/hicolor/scalable/apps/$app_id.svg"
mkdir -p "$deb/usr/share/metainfo"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$release_date/" "$here/$app_id.metainfo.xml.in" \
  > "$deb/usr/share/metainfo/$app_id.metainfo.xml"
chmod 0644 "$deb/usr/share/metainfo/$app_id.metainfo.xml"
appstreamcli validate --no-net "$deb/usr/share/metainfo/$app_id.metainfo.xml" >"$work/appstream.log" 2>&1 ||
  { cat "$work/appstream.log" >&2; fail "appstreamcli validate refused the AppStream metadata"; }
desktop-file-validate "$deb/usr/share/applications/$app_id.desktop" ||
  fail "desktop-file-validate refused the desktop entry"

doc=$deb/usr/share/doc/$pkg
mkdir -p "$doc"
gzip -9n < "$here/changelog" > "$doc/changelog.Debian.gz"
{
  cat "$here/copyright"
  echo
  echo "Files: usr/bin/$pkg"
  echo "Copyright: 2026 The Dazaar Vision team, and the authors of the Go modules named below"
  echo "License: LicenseRef-proprietary"
  echo "Comment: The program statically links these Go modules (path and version, as the Go"
  echo " toolchain recorded them in the binary), each under the licence in its own source:"
  go version -m "$work/$pkg" | awk '$1 == "dep" { print " " $2 " " $3 }'
} > "$doc/copyright"
chmod 0644 "$doc/changelog.Debian.gz" "$doc/copyright"

# --- Depends: the shared libraries the binary links (dpkg-shlibdeps), plus the ones it opens at
# run time: miniaudio (the microphone and the speaker) dlopens ALSA, and PulseAudio when present.
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" > "$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$deb/usr/bin/$pkg" 2>"$work/shlibdeps.log") ||
  { cat "$work/shlibdeps.log" >&2; fail "dpkg-shlibdeps failed"; }
depends=${shlibs#shlibs:Depends=}
soname_pkg() { # the installed package that ships a library soname
  local path
  # ldconfig is in /sbin, which a normal user's PATH on Debian leaves out.
  path=$({ command -v ldconfig >/dev/null && ldconfig -p || /sbin/ldconfig -p; } | awk -v so="$1" '$1 == so && /x86-64|x32|AArch64|64bit/ { print $NF; exit } $1 == so && !p { p = $NF } END { if (p) print p }' | head -1)
  [ -n "$path" ] || fail "$1 is not installed here, so the package that ships it is unknown"
  dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1 || fail "no package ships $path"
}
for so in libasound.so.2 libpulse.so.0; do
  grep -aq "$so" "$work/$pkg" || fail "the binary no longer names $so: check the run-time libraries in build.sh"
done
depends="$depends, $(soname_pkg libasound.so.2)"
recommends="$(soname_pkg libpulse.so.0), xdg-utils" # xdg-open: "Open in wallet" hands invoices to the wallet

mkdir -p "$deb/DEBIAN"
installed_size=$(du -sk --apparent-size "$deb/usr" | cut -f1)
cat > "$deb/DEBIAN/control" <<CONTROL
Package: $pkg
Version: $debversion
Architecture: $arch
Maintainer: The Dazaar Vision team <packaging@dazaar.vision>
Installed-Size: $installed_size
Depends: $depends
Recommends: $recommends
Section: video
Priority: optional
Homepage: https://github.com/dazaarvision/dazaar-vision
Description: paid peer-to-peer live video
 Dazaar Vision sells live video with no server and no middleman. A
 broadcaster goes live from a camera and microphone and shares one card, a
 line of text naming the stream, the seller and the price. A viewer pastes
 it, pays the invoice made for them alone (on-chain or over Lightning), and
 the video comes straight from the broadcaster's computer while the paid
 time lasts.
 .
 This package has the desktop app (in the menu as Dazaar Vision) and the
 dazaar-vision command line.
CONTROL
(cd "$deb" && find usr -type f -print0 | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$deb/DEBIAN/control" "$deb/DEBIAN/md5sums"
debfile=${pkg}_${debversion}_${arch}.deb
# SOURCE_DATE_EPOCH: the file times inside come from the changelog's date, not the clock.
export SOURCE_DATE_EPOCH=$(date -u -d "$release_date" +%s)
find "$deb" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$deb" "$out/$debfile" >/dev/null
made+=("$debfile")

# --- the tar.xz, made by fyne package from the same binary. fyne package writes the next Build
# number back into FyneApp.toml, so it runs on a copy, not on the repository.
if [[ $formats == *" tar.xz "* ]]; then
  fyne_version=v1.7.4
  fyne_dir=${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}/fyne-$fyne_version
  if [ ! -x "$fyne_dir/fyne" ]; then
    echo "package-linux: building the fyne tool $fyne_version (once, into $fyne_dir)"
    (cd "$work" && GOBIN="$fyne_dir" GOFLAGS= go install "fyne.io/tools/cmd/fyne@$fyne_version")
  fi
  src=$work/fyne-src
  mkdir -p "$src/assets" "$work/fyne-out"
  cp "$top/FyneApp.toml" "$src/"
  cp "$top/assets/icon.png" "$src/assets/"
  printf 'package main\n\nfunc main() {}\n' > "$src/main.go"
  (cd "$work/fyne-out" && "$fyne_dir/fyne" package --target linux --executable "$work/$pkg" \
    --src "$src" --app-version "$version" --release) >"$work/fyne.log" 2>&1 ||
    { cat "$work/fyne.log" >&2; fail "fyne package failed"; }
  tarxz=$pkg-$version-linux-$arch.tar.xz
  mv "$work/fyne-out/"*.tar.xz "$out/$tarxz"
  made+=("$tarxz")
fi

for f in "${made[@]}"; do
  (cd "$out" && sha256sum "$f" > "$f.sha256")
done
echo "package-linux: made"
for f in "${made[@]}"; do
  echo "  $f ($(stat -c %s "$out/$f") bytes)"
  echo "  sha256 $(cut -d' ' -f1 "$out/$f.sha256")"
done
