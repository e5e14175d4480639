# Linux installers (included by the Makefile). `make package-linux` writes into dist/:
#   dazaar-vision_<version>-<rev>_<arch>.deb and dazaar-vision-<version>-linux-<arch>.tar.xz,
# each with a .sha256 beside it, then runs lintian on the .deb (errors fail the target).

# What packaging/linux/build.sh needs beyond APT_RUN.
APT_PACKAGE_LINUX := dpkg-dev librsvg2-bin appstream desktop-file-utils xz-utils lintian
# The install test (packaging/linux) builds the .deb and installs it into a clean Debian root
# made by mmdebstrap, launched under Xvfb (xvfb and imagemagick are in APT_TEST already).
APT_TEST += $(APT_PACKAGE_LINUX) mmdebstrap util-linux

.PHONY: package-linux

package-linux: deps-run
	@scripts/apt.sh $(APT_PACKAGE_LINUX)
	packaging/linux/build.sh dist
	@deb=$$(ls -t dist/dazaar-vision_*.deb | head -1); echo "lintian $$deb"; \
	  lintian --fail-on error "$$deb"
