# Dazaar Vision. `make run` and `make test` do all set-up on a fresh Debian machine.
GO       ?= go
BIN      ?= dazaar-vision
ARGS     ?=
# Built test tools (btcd, lnd, ...) live outside the repository, keyed by version.
export DV_TOOLS_CACHE ?= $(HOME)/.cache/dazaar-vision/tools
export HYPERCORE_VECTORS_DIR ?= $(abspath ../shared/testdata/hypercore)
# The one build configuration of `make test`'s builds without the race detector: the release's
# (packaging/linux/build.sh builds the .deb so). vet, staticcheck, the programs the tests build
# (internal/xtest.GoCommand), the benchmarks and the .deb then compile the dependencies once:
# on a cold machine each further configuration costs about 8 CPU-minutes.
export DV_GOFLAGS ?= -trimpath -buildmode=pie

# cgo's C compiler: clang, unless CC is set. With gcc, go-gl/gl's cgo step (one process, and
# everything Fyne draws waits for it) takes 2.5 minutes of one core: cgo makes the compiler
# report an error for each of the package's 5 700 C names, and gcc looks up a spelling
# suggestion for each among all the names and macros it knows. clang caps its suggestions and
# takes 15 s. `make test` builds each cgo package in several configurations (the tests' -race,
# the release's), so a cold machine saves about 5 CPU-minutes. `make CC=gcc ...` builds with gcc.
ifeq ($(origin CC),default)
CC := clang
endif
export CC

# System packages: what the app needs to build and run, and what the tests add.
APT_RUN  := pkg-config clang gcc libvpx-dev libopus-dev libgl1-mesa-dev libx11-dev libxext-dev \
            libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev \
            libasound2 libpulse0
APT_TEST := $(APT_RUN) xvfb xauth x11-apps imagemagick ffmpeg zbar-tools dbus dbus-x11 gnome-keyring \
            libsecret-tools iproute2 iptables

.PHONY: all build run demo test test-go test-fuzz bench fuzz vet fmt deps-run deps-test tools mod-download clean

all: build

deps-run:
	@GO=$(GO) scripts/go-check.sh
	@scripts/apt.sh $(APT_RUN)

deps-test:
	@GO=$(GO) scripts/go-check.sh
	@scripts/apt.sh $(APT_TEST)
	@command -v npm >/dev/null || scripts/apt.sh nodejs npm   # the reference benchmarks and vector generator

build: deps-run
	$(GO) build -ldflags "-X github.com/dazaarvision/dazaar-vision/app/version.Version=$$(sed -n '/^\[Details\]/,/^\[/s/^Version *= *"\(.*\)".*/\1/p' FyneApp.toml)" -o $(BIN) .

run: build
	./$(BIN) $(ARGS)

# The paid flow in two windows with real parts: btcd simnet, two LND nodes, a broadcaster and a
# viewer paying from a demo wallet (tools/demo). Ctrl+C or closing a window stops everything.
demo: deps-run tools
	$(GO) run ./tools/demo $(ARGS)

# Our Go modules, fetched while apt and the LND build run (network, not CPU): on a cold machine
# the first build would otherwise wait for them.
mod-download:
	@$(GO) mod download

# Test tools that are built, not installed from apt (real bitcoin/lightning nodes).
tools:
	@scripts/tools.sh

# staticcheck, pinned (a release that knows this Go); `go run` builds it from the module proxy.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	GOFLAGS="$(DV_GOFLAGS)" $(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	GOFLAGS="$(DV_GOFLAGS)" $(GO) run $(STATICCHECK) ./...

# The Debian packages (apt: network and dpkg, one core at most), the built test tools (the LND
# build: CPU) and our Go modules (network) side by side, each target's output kept together; then
# scripts/test.sh: vet (which
# needs the packages) beside the Windows installer's test, then the other tests.
test:
	@$(MAKE) --no-print-directory -j3 --output-sync=target deps-test tools mod-download
	@MAKE="$(MAKE)" scripts/test.sh

# Every fuzz target for a few minutes each (FUZZTIME=2m by default).
fuzz:
	@FUZZTIME=$${FUZZTIME:-2m} scripts/fuzz.sh

# Our benchmarks and the reference's, in the same run, printed as ratios.
bench: deps-test
	@scripts/bench.sh

clean:
	rm -f $(BIN)

# Installers: each platform's targets live beside its packaging files (packaging/<os>/package.mk).
include $(wildcard packaging/*/package.mk)
