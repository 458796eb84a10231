# Tally: the two commands of the README are `make demo` and `make test`.
# Both need only Go and gcc (cgo, for the server's embedded SQLite).

GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/tallyhq/tally/common/buildinfo.version=$(VERSION)
DEMO    ?= demo
GOBUILDFLAGS ?=
GOFILES  = $(shell find . -name '*.go' -not -path './.git/*' -not -path './demo/*')

.PHONY: all build test check fmt-check tidy-check vet staticcheck cross unit chaos demo screenshots packages clean help bench-replicas

all: build

help:
	@echo "make build   build bin/tally-server, bin/tally-agent and bin/tally-load"
	@echo "make test    gofmt, go.mod tidy, go vet, staticcheck, cross-builds of the agent, and the tests with -race"
	@echo "make chaos   the long fault suite (minutes): 100 server SIGKILLs under load, agent kills, full disks, a clock jump, a damaged page, hostile clients"
	@echo "make screenshots  run the console's browser tests (headless Chromium) and write their screenshots to docs/screenshots/"
	@echo "make packages  .deb, .rpm and .tar.gz of both binaries for linux/amd64 and arm64, the agent's .msi and macOS .pkg payload folder, in $(DIST)/"
	@echo "make demo    run a server on ./$(DEMO) with a demo license, enroll this machine's agent with the inventory plug-in, post once, keep serving until Ctrl-C"

build:
	$(GO) build $(GOBUILDFLAGS) -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tally-server ./server/cmd/tally-server
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tally-agent ./agent/cmd/tally-agent
	$(GO) build $(GOBUILDFLAGS) -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tally-load ./loadtest/cmd/tally-load

test: check unit

check: fmt-check tidy-check vet staticcheck cross

fmt-check:
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# go.mod and go.sum must be what `go mod tidy` writes, so that a requirement's
# direct or indirect mark tells the truth; -diff prints what it would change.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }

vet:
	$(GO) vet ./...
	GOOS=windows CGO_ENABLED=0 $(GO) vet ./agent/... ./common/... ./protocol/...
	GOOS=darwin CGO_ENABLED=0 $(GO) vet ./agent/... ./common/... ./protocol/...

staticcheck:
	$(GO) tool staticcheck ./...

# The agent must build for every OS it runs on, without a C cross-compiler.
cross:
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./agent/cmd/tally-agent
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o /dev/null ./agent/cmd/tally-agent
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o /dev/null ./agent/cmd/tally-agent

# The store's own tests that open it with OpenForTest (software sets,
# recognition, purchases, users and housekeeping) run a second time on
# PostgreSQL; the conformance suite runs on both in the first pass.
PG_STORE_TESTS = TestRecognitionFollowsSoftwareSets|TestPurchaseBadInputChangesNothing|TestDeltaRecognitionEqualsRecount|TestSequenceWindowWithGaps|TestSoftware(FullCountsDuplicatesOnce|DeltaApplies|DeltaMismatch|Order|Purged)|TestUser[A-Za-z]*|TestExpiredTokenFreesSeatAtExpiry|TestUsersBadInput|TestHousekeepingDryRunMatchesRun|TestSyncDeletedUserFreesSeat|TestExpiredUserLicenseSeats|TestRemoveUserLicense|TestDevice[A-Za-z]*|TestAgentUsersMerge|TestInactiveDeviceException|TestDirectoryAdoptsAgentUser

unit:
	$(GO) test -race -timeout 14m ./...
	$(GO) test -race -timeout 10m -run '^($(PG_STORE_TESTS))$$' ./server/store/sqlstore -args -store=postgres

# The fault suite's long mode (server/integration TestChaos; make test runs
# its short mode). Full disks need root to mount a tmpfs; without it those
# faults are skipped and say so. CHAOS_FLAGS adds flags, e.g.
# CHAOS_FLAGS='-chaos.kills 20 -chaos.seed 7'.
chaos:
	$(GO) test -count=1 -timeout 60m -run '^TestChaos$$' -v ./server/integration -chaos.long $(CHAOS_FLAGS)

# The figures of docs/PERFORMANCE.md "PostgreSQL and replicas" (about 20
# minutes): tally-load steady and race on SQLite, PostgreSQL with one replica
# and with three, alternated; settings in loadtest/bench-replicas.sh.
bench-replicas: build
	loadtest/bench-replicas.sh

# The demo (.ci/demo): a real server on its embedded SQLite store in
# ./$(DEMO)/server, this machine's agent in ./$(DEMO)/agent with the inventory
# plug-in, a demo license, one real post over QUIC. Run again, it reuses the
# ports, license and enrollment of the last run. DEMO_ONCE=1 stops after the
# post. The build prints each package it compiles, so a first build (minutes:
# SQLite is C) shows its progress.
demo:
	@echo "== Building bin/ (the first time takes a few minutes; each package compiled is listed)"
	@$(MAKE) --no-print-directory build GOBUILDFLAGS=-v
	@DEMO='$(DEMO)' BIN='$(BIN)' DEMO_ONCE='$(DEMO_ONCE)' .ci/demo

# The console's browser tests drive headless Chromium against a real server
# and real agents; each saves screenshots, here also to docs/screenshots/.
screenshots:
	mkdir -p docs/screenshots
	TALLY_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestBrowser' ./server/console/

# Packages (README "Packages"): the binaries for each platform in
# $(DIST)/bin/GOOS-GOARCH, then installer/cmd/mkpkg packages them. The
# arm64 server needs cgo (SQLite), so a C cross-compiler: without
# aarch64-linux-gnu-gcc it is skipped, and said.
DIST        ?= dist
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null); \
	if [ -n "$$v" ]; then echo "$$v" | sed -e 's/^v//' -e 's/-/+/' -e 's/-/./'; \
	else echo "0.0.0+git$$(git rev-list --count HEAD 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo none)"; fi)
PKG_MTIME   ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
ARM64_CC    ?= aarch64-linux-gnu-gcc
PKG_LDFLAGS := -s -w -X github.com/tallyhq/tally/common/buildinfo.version=$(PKG_VERSION)

packages:
	rm -rf $(DIST)
	for p in linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64; do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(PKG_LDFLAGS)' -o $(DIST)/bin/$$os-$$arch/tally-agent$$ext ./agent/cmd/tally-agent || exit 1; \
	done
	GOOS=linux GOARCH=amd64 CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(PKG_LDFLAGS)' -o $(DIST)/bin/linux-amd64/tally-server ./server/cmd/tally-server
	if command -v $(ARM64_CC) >/dev/null 2>&1; then \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=1 CC=$(ARM64_CC) $(GO) build -trimpath -ldflags '$(PKG_LDFLAGS)' -o $(DIST)/bin/linux-arm64/tally-server ./server/cmd/tally-server || exit 1; \
	else echo "no $(ARM64_CC) (Debian package gcc-aarch64-linux-gnu): the arm64 tally-server packages are skipped"; fi
	$(GO) run ./installer/cmd/mkpkg --version '$(PKG_VERSION)' --mtime '$(PKG_MTIME)' --bin $(DIST)/bin --out $(DIST)

clean:
	rm -rf $(BIN) $(DIST)
