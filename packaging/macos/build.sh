#!/usr/bin/env bash
# Builds "Dazaar Vision.app" and a .dmg for this Mac's architecture into OUT (default dist/):
#   dazaar-vision-<version>-macos-<arm64|amd64>.dmg (and .sha256 beside it)
# Runs on macOS only (the GitHub workflow .github/workflows/macos.yml calls it); no machine of
# the project's own runs macOS, so this script has only run there.
#
# Steps:
#  1. libvpx, built static from its source (pinned tag) into a cached prefix, so the app carries
#     no Homebrew dylib (no install_name_tool or dylibbundler after linking: any edit after
#     signing would break the signature). opus comes static inside mediadevices.
#  2. go build with the version from FyneApp.toml, -mmacosx-version-min as LSMinimumSystemVersion.
#  3. fyne package --target darwin wraps it: Info.plist (with NSMicrophoneUsageDescription from
#     FyneApp.toml's [Capabilities]) and icon.icns. Then PlistBuddy adds NSCameraUsageDescription
#     and sets LSMinimumSystemVersion: without the usage strings macOS ends the process the
#     first time it opens the camera or the microphone.
#  4. codesign with the hardened runtime and packaging/macos/entitlements.plist (camera, audio
#     input, network). With MACOS_SIGNING_IDENTITY set (a "Developer ID Application: ..." identity
#     in the keychain) it is a real signature with a secure timestamp; without it, ad hoc ("-"),
#     which runs on the machine that built it but which Gatekeeper refuses elsewhere.
#  5. hdiutil makes the .dmg (the app and a link to /Applications), signed like the app.
#  6. With NOTARY_KEY_FILE, NOTARY_KEY_ID and NOTARY_ISSUER set (an App Store Connect API key),
#     xcrun notarytool submits the .dmg and waits, and xcrun stapler staples the ticket to it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$top/dist}" && cd "${1:-$top/dist}" && pwd)
fail() { echo "package-macos: $*" >&2; exit 1; }
[ "$(uname -s)" = Darwin ] || fail "this builds the macOS app and runs on macOS only"

app_id=vision.dazaar.app
pkg=dazaar-vision
name="Dazaar Vision"
min_macos=12.0 # Go 1.25 and later run on macOS 12 Monterey and newer
version=$(sed -n '/^\[Details\]/,/^\[/s/^Version *= *"\(.*\)".*/\1/p' "$top/FyneApp.toml")
[ -n "$version" ] || fail "FyneApp.toml has no [Details] Version"
case "$(uname -m)" in arm64) arch=arm64 ;; x86_64) arch=amd64 ;; *) fail "unknown machine $(uname -m)" ;; esac
cache=${DV_TOOLS_CACHE:-$HOME/.cache/dazaar-vision/tools}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MACOSX_DEPLOYMENT_TARGET=$min_macos

# 1. libvpx, static.
vpx_version=v1.15.2
vpx=$cache/libvpx-$vpx_version-macos-$arch
if [ ! -f "$vpx/lib/pkgconfig/vpx.pc" ]; then
  echo "package-macos: building libvpx $vpx_version (once, into $vpx)"
  git clone --quiet --depth 1 --branch "$vpx_version" https://chromium.googlesource.com/webm/libvpx "$work/libvpx"
  case $arch in arm64) target=arm64-darwin21-gcc ;; amd64) target=x86_64-darwin21-gcc ;; esac
  (cd "$work/libvpx" && ./configure --target="$target" --prefix="$vpx.part" \
    --disable-examples --disable-tools --disable-docs --disable-unit-tests \
    --enable-static --disable-shared --enable-pic --extra-cflags="-mmacosx-version-min=$min_macos" &&
    make -j"$(sysctl -n hw.ncpu)" >/dev/null && make install >/dev/null)
  rm -rf "$vpx" && mv "$vpx.part" "$vpx"
  sed -i '' "s|$vpx.part|$vpx|g" "$vpx/lib/pkgconfig/vpx.pc"
fi
export PKG_CONFIG_PATH=$vpx/lib/pkgconfig

# 2. The binary.
(cd "$top" && CGO_ENABLED=1 CGO_CFLAGS="-mmacosx-version-min=$min_macos" CGO_LDFLAGS="-mmacosx-version-min=$min_macos" \
  go build -trimpath -ldflags "-s -w -X github.com/dazaarvision/dazaar-vision/app/version.Version=$version" -o "$work/$pkg" .)
got=$("$work/$pkg" --version)
[ "$got" = "$pkg $version" ] || fail "the binary says \"$got\", not \"$pkg $version\""
if otool -L "$work/$pkg" | grep -E '/opt/homebrew|/usr/local/(lib|opt|Cellar)'; then
  fail "the binary links a Homebrew library (above): the .app would not run elsewhere"
fi

# 3. The .app (fyne package writes the next Build number back into FyneApp.toml, so it runs on
# a copy of it).
fyne_version=v1.7.4
fyne=$cache/fyne-$fyne_version/fyne
[ -x "$fyne" ] || GOBIN=$(dirname "$fyne") GOFLAGS= go install "fyne.io/tools/cmd/fyne@$fyne_version"
src=$work/src
mkdir -p "$src/assets" "$work/app"
cp "$top/FyneApp.toml" "$src/"
cp "$top/assets/icon.png" "$src/assets/"
printf 'package main\n\nfunc main() {}\n' >"$src/main.go"
(cd "$work/app" && "$fyne" package --target darwin --executable "$work/$pkg" --src "$src" \
  --app-id "$app_id" --app-version "$version" --release)
app="$work/app/$name.app"
[ -d "$app" ] || fail "fyne package made no \"$name.app\""
plist=$app/Contents/Info.plist
pb() { /usr/libexec/PlistBuddy -c "$1" "$plist"; }
pb "Delete :NSCameraUsageDescription" 2>/dev/null || true
pb "Add :NSCameraUsageDescription string '$name uses the camera when you go live, to film what you broadcast.'"
# fyne package leaves the category empty ("public.app-category."): only fyne release sets one.
pb "Delete :LSApplicationCategoryType" 2>/dev/null || true
pb "Add :LSApplicationCategoryType string public.app-category.video"
pb "Print :NSMicrophoneUsageDescription" >/dev/null || fail "FyneApp.toml's [Capabilities] gave no microphone usage string"
pb "Set :LSMinimumSystemVersion $min_macos"
plutil -lint "$plist"

# 4. Signing (hardened runtime, entitlements).
identity=${MACOS_SIGNING_IDENTITY:--}
ts=--timestamp
[ "$identity" = - ] && ts=--timestamp=none
codesign --force --options runtime $ts --entitlements "$here/entitlements.plist" --sign "$identity" "$app"
codesign --verify --strict --verbose=2 "$app"
codesign --display --entitlements - "$app" | grep -q com.apple.security.device.camera ||
  fail "the signed app lacks the camera entitlement"

# 5. The .dmg.
dmg=$pkg-$version-macos-$arch.dmg
mkdir -p "$work/dmg"
cp -R "$app" "$work/dmg/"
ln -s /Applications "$work/dmg/Applications"
rm -f "$out/$dmg"
hdiutil create -quiet -volname "$name" -srcfolder "$work/dmg" -fs HFS+ -format UDZO "$out/$dmg"
codesign --force $ts --sign "$identity" "$out/$dmg"

# 6. Notarisation, when the API key is there.
if [ -n "${NOTARY_KEY_FILE:-}" ]; then
  [ "$identity" != - ] || fail "notarisation needs a Developer ID signature (MACOS_SIGNING_IDENTITY)"
  xcrun notarytool submit "$out/$dmg" --key "$NOTARY_KEY_FILE" --key-id "$NOTARY_KEY_ID" \
    --issuer "$NOTARY_ISSUER" --wait
  xcrun stapler staple "$out/$dmg"
  spctl --assess --type open --context context:primary-signature --verbose=2 "$out/$dmg"
fi

(cd "$out" && shasum -a 256 "$dmg" >"$dmg.sha256")
echo "package-macos: made $out/$dmg ($(stat -f %z "$out/$dmg") bytes)"
