# Windows: `make package-windows` cross-compiles, signs and wraps the app in an NSIS installer,
# dist/DazaarVision-<version>-windows-amd64-setup.exe and its .sha256 (packaging/windows/build.sh).
# Signing: a test certificate unless DV_SIGN_PFX and DV_SIGN_PASS are set (DV_SIGN_TSA: a
# timestamp server).
APT_WINDOWS := dpkg-dev clang gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 nasm nsis osslsigncode openssl librsvg2-bin
# What packaging/windows's test adds (it runs the installer and the app under wine).
APT_WINDOWS_TEST := $(APT_WINDOWS) wine wine64 xvfb xauth imagemagick

# make test runs that test, so deps-test installs what it needs.
APT_TEST += $(APT_WINDOWS_TEST)

.PHONY: package-windows deps-windows-test
package-windows:
	@scripts/apt.sh $(APT_WINDOWS)
	@packaging/windows/build.sh

deps-windows-test:
	@scripts/apt.sh $(APT_WINDOWS_TEST)
