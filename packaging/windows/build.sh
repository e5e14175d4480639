#!/usr/bin/env bash
# Builds the Windows installer into OUT (default: dist/ at the repository's root):
#   DazaarVision-<version>-windows-amd64-setup.exe and beside it a .sha256 (sha256sum -c reads it).
# The installer holds two builds of the same program: DazaarVision.exe (the window, Windows'
# GUI subsystem: no console opens behind it; the Start-menu entry) and dazaar-vision.exe (a
# console program for the command line: --version, selftest, live, watch; Ctrl+C stops it).
# Both are cross-compiled for mingw-w64 (C with clang, C++ and the link with mingw-w64's g++)
# and linked statically: libvpx (VP8 only) built from Debian's source package by libvpx.sh,
# libopus from mediadevices, the C and C++ runtimes and winpthreads; they import system DLLs
# only. Both exes, the uninstaller and the installer are
# signed with osslsigncode: with DV_SIGN_PFX (a PKCS#12 file) and DV_SIGN_PASS in a release
# (DV_SIGN_TSA names a timestamp server), otherwise with a test certificate made here once and
# kept in $DV_TOOLS_CACHE/windows-test-signing (never in the repository).
# Needs (make package-windows installs them): go, clang, gcc-mingw-w64-x86-64,
# g++-mingw-w64-x86-64, nasm, nsis, osslsigncode, openssl, librsvg2-bin.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$top/dist}" && cd "${1:-$top/dist}" && pwd)
umask 022
export LC_ALL=C.UTF-8 TZ=UTC
: "${DV_TOOLS_CACHE:?DV_TOOLS_CACHE is not set (the Makefile sets it)}"

fail() { echo "package-windows: $*" >&2; exit 1; }
for tool in go clang x86_64-w64-mingw32-gcc x86_64-w64-mingw32-g++ x86_64-w64-mingw32-windres x86_64-w64-mingw32-objdump \
  nasm makensis osslsigncode openssl rsvg-convert sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is missing (make package-windows installs it)"
done

version=$(sed -n '/^\[Details\]/,/^\[/s/^Version *= *"\(.*\)".*/\1/p' "$top/FyneApp.toml")
build=$(sed -n '/^\[Details\]/,/^\[/s/^Build *= *\([0-9][0-9]*\).*/\1/p' "$top/FyneApp.toml")
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] ||
  fail "FyneApp.toml's Version \"$version\" is not three numbers (Windows' version resources need numbers)"
v1=${BASH_REMATCH[1]} v2=${BASH_REMATCH[2]} v3=${BASH_REMATCH[3]}
build=${build:-0}
version4=$version.$build
name=DazaarVision-$version-windows-amd64-setup.exe

vpx=$(bash "$here/libvpx.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pkg"

# --- icon, manifest and version resources
icons=()
for size in 16 20 24 32 40 48 64 128 256; do
  rsvg-convert -w "$size" -h "$size" -o "$work/icon-$size.png" "$top/assets/icon.svg"
  icons+=("$work/icon-$size.png")
done
(cd "$top" && go run ./packaging/windows/mkico -o "$work/pkg/icon.ico" "${icons[@]}")
cp "$work/pkg/icon.ico" "$work/icon.ico"
sed "s/@VERSION4@/$version4/" "$here/dazaar-vision.manifest.in" > "$work/dazaar-vision.manifest"
resources() { # exe description
  sed -e "s/@V1@/$v1/g" -e "s/@V2@/$v2/g" -e "s/@V3@/$v3/g" -e "s/@BUILD@/$build/g" \
      -e "s/@VERSION@/$version/g" -e "s/@EXE@/$1/g" -e "s/@DESCRIPTION@/$2/g" \
      "$here/resource.rc.in" > "$work/$1.rc"
  (cd "$work" && x86_64-w64-mingw32-windres -O coff -i "$1.rc" -o "$1.rsrc.o")
}
resources DazaarVision.exe "Dazaar Vision"
resources dazaar-vision.exe "Dazaar Vision (command line)"

# --- the two programs
echo "package-windows: building Dazaar Vision $version for windows/amd64 (libvpx from $vpx)"
# C: clang for mingw-w64's target, with mingw-w64's headers and libraries (go-gl/gl's cgo step
# takes 20 s with it, 2.5 minutes with gcc: see the Makefile's CC). C++ (mediadevices' camera)
# and the link: mingw-w64's g++, whose C++ headers clang does not find.
export CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC="clang --target=x86_64-w64-mingw32" CXX=x86_64-w64-mingw32-g++ \
  PKG_CONFIG_LIBDIR="$vpx/lib/pkgconfig" PKG_CONFIG_PATH=
ldflags="-s -w -X github.com/dazaarvision/dazaar-vision/app/version.Version=$version"
(cd "$top" &&
  go build -trimpath -ldflags "$ldflags -H=windowsgui -extldflags '-static $work/DazaarVision.exe.rsrc.o'" \
    -o "$work/pkg/DazaarVision.exe" . &&
  go build -trimpath -ldflags "$ldflags -extldflags '-static $work/dazaar-vision.exe.rsrc.o'" \
    -o "$work/pkg/dazaar-vision.exe" .)
unset CGO_ENABLED GOOS GOARCH CC CXX PKG_CONFIG_LIBDIR PKG_CONFIG_PATH
for exe in DazaarVision.exe dazaar-vision.exe; do
  # Only DLLs every Windows has: no mingw runtime, libvpx or libopus DLL to ship.
  dlls=$(x86_64-w64-mingw32-objdump -p "$work/pkg/$exe" | sed -n 's/^\s*DLL Name: //p' | tr 'a-z' 'A-Z' | sort -u | tr '\n' ' ')
  for dll in $dlls; do
    case $dll in
      ADVAPI32.DLL|BCRYPT.DLL|CRYPT32.DLL|DNSAPI.DLL|GDI32.DLL|IPHLPAPI.DLL|KERNEL32.DLL|MSVCRT.DLL|NTDLL.DLL|\
      OLE32.DLL|OLEAUT32.DLL|OPENGL32.DLL|POWRPROF.DLL|QUARTZ.DLL|SECUR32.DLL|SETUPAPI.DLL|SHELL32.DLL|\
      USER32.DLL|USERENV.DLL|WINMM.DLL|WINMMBASE.DLL|WS2_32.DLL|DWMAPI.DLL|IMM32.DLL|MFPLAT.DLL|MF.DLL|\
      MFREADWRITE.DLL|MFUUID.DLL|STRMIIDS.DLL|VERSION.DLL|COMCTL32.DLL|COMDLG32.DLL|SHLWAPI.DLL|UXTHEME.DLL|\
      WINTRUST.DLL|NCRYPT.DLL|DXGI.DLL|D3D11.DLL|HID.DLL|CFGMGR32.DLL|AVRT.DLL|KSUSER.DLL|MMDEVAPI.DLL) ;;
      *) fail "$exe needs $dll, which Windows does not have: link it statically" ;;
    esac
  done
  echo "package-windows: $exe imports $dlls"
done

# --- signing
sign=$work/sign
if [ -n "${DV_SIGN_PFX:-}" ]; then
  [ -f "$DV_SIGN_PFX" ] || fail "DV_SIGN_PFX=$DV_SIGN_PFX: no such file"
  : "${DV_SIGN_PASS:?DV_SIGN_PFX is set but DV_SIGN_PASS is not}"
  printf '%s' "$DV_SIGN_PASS" > "$work/pass" # read by osslsigncode, never on a command line
  keyargs=(-pkcs12 "$DV_SIGN_PFX" -readpass "$work/pass")
  verifyargs=()
  echo "package-windows: signing with $DV_SIGN_PFX"
else
  certdir=$DV_TOOLS_CACHE/windows-test-signing
  if ! openssl x509 -checkend 86400 -noout -in "$certdir/cert.pem" >/dev/null 2>&1 || [ ! -f "$certdir/key.pem" ]; then
    mkdir -p "$certdir"
    openssl req -x509 -newkey rsa:3072 -sha256 -days 365 -nodes -keyout "$certdir/key.pem" -out "$certdir/cert.pem" \
      -subj "/CN=Dazaar Vision test code signing (not for release)" \
      -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=codeSigning" 2>/dev/null
    chmod 600 "$certdir/key.pem"
  fi
  keyargs=(-certs "$certdir/cert.pem" -key "$certdir/key.pem")
  verifyargs=(-CAfile "$certdir/cert.pem")
  echo "package-windows: signing with the TEST certificate $certdir/cert.pem (set DV_SIGN_PFX and DV_SIGN_PASS for a release)"
fi
tsargs=()
[ -n "${DV_SIGN_TSA:-}" ] && tsargs=(-ts "$DV_SIGN_TSA")
{
  echo '#!/usr/bin/env bash'
  echo 'set -euo pipefail'
  printf 'osslsigncode sign -h sha256 -n %q -i %q' "Dazaar Vision" "https://github.com/dazaarvision/dazaar-vision"
  printf ' %q' "${keyargs[@]}" "${tsargs[@]}"
  printf ' -in "$1" -out "$1.signed" >/dev/null\n'
  echo 'mv -f "$1.signed" "$1"'
  printf 'osslsigncode verify'
  [ ${#verifyargs[@]} -eq 0 ] || printf ' %q' "${verifyargs[@]}"
  printf ' -in "$1" >/dev/null\n'
} > "$sign"
chmod 700 "$sign"
"$sign" "$work/pkg/DazaarVision.exe"
"$sign" "$work/pkg/dazaar-vision.exe"

# --- the installer
makensis -V2 -DVERSION="$version" -DVERSION4="$version4" -DSRC="$work/pkg" -DOUTFILE="$work/$name" \
  -DSIGN="$sign" "$here/installer.nsi"
"$sign" "$work/$name"
mv -f "$work/$name" "$out/$name"
(cd "$out" && sha256sum "$name" > "$name.sha256")
for f in DazaarVision.exe dazaar-vision.exe; do
  echo "package-windows: $f $(stat -c %s "$work/pkg/$f") bytes"
done
echo "package-windows: $out/$name $(stat -c %s "$out/$name") bytes"
