# Tally: the two commands of the README are `make demo` and `make test`.
# Both need only Go and gcc (cgo, for the server's embedded SQLite).

GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/tallyhq/tally/common/buildinfo.version=$(VERSION)
DEMO    ?= demo
GOFILES  = $(shell find . -name '*.go' -not -path './.git/*' -not -path './demo/*')

.PHONY: all build test check fmt-check vet staticcheck cross unit demo clean help

all: build

help:
	@echo "make build   build bin/tally-server, bin/tally-agent and bin/tally-load"
	@echo "make test    gofmt, go vet, staticcheck, cross-builds of the agent, and the tests with -race"
	@echo "make demo    run a server on ./$(DEMO), enroll this machine's agent, post once, keep serving until Ctrl-C"

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tally-server ./server/cmd/tally-server
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tally-agent ./agent/cmd/tally-agent
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tally-load ./server/cmd/tally-load

test: check unit

check: fmt-check vet staticcheck cross

fmt-check:
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

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

unit:
	$(GO) test -race -timeout 14m ./...

# The demo: a real server on its embedded SQLite store in ./$(DEMO)/server,
# this machine's agent in ./$(DEMO)/agent, one real inventory post over QUIC.
demo: build
	@set -e; \
	mkdir -p $(DEMO); \
	echo "== Starting tally-server (data in $(DEMO)/server)"; \
	$(BIN)/tally-server serve --data $(DEMO)/server --listen 127.0.0.1:0 --admin 127.0.0.1:0 2>$(DEMO)/server.log & \
	pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null; wait $$pid 2>/dev/null; echo; echo "Server stopped. Its data stays in $(DEMO)/ (delete it to start over)."; exit 0' INT TERM; \
	for i in $$(seq 1 100); do [ -f $(DEMO)/server/addresses.json ] && break; kill -0 $$pid 2>/dev/null || { echo "tally-server failed to start:"; cat $(DEMO)/server.log; exit 1; }; sleep 0.1; done; \
	echo; echo "== Enrolling this machine's agent (data in $(DEMO)/agent)"; \
	line="$$($(BIN)/tally-server enroll-info --data $(DEMO)/server --command)"; \
	$(BIN)/$$line --data $(DEMO)/agent; \
	echo; echo "== Posting one inventory"; \
	$(BIN)/tally-agent run --once --data $(DEMO)/agent; \
	echo; echo "== tally-server computers list --data $(DEMO)/server"; \
	$(BIN)/tally-server computers list --data $(DEMO)/server; \
	url="$$(sed -n 's/.*"admin_url": "\(.*\)".*/\1/p' $(DEMO)/server/addresses.json)"; \
	echo; echo "== The server keeps running. Press Ctrl-C to stop it."; \
	echo "   Admin console: $$url  (sign in with the token: $$(cat $(DEMO)/server/admin-token))"; \
	echo "   Try:           $(BIN)/tally-server computers show 1 --data $(DEMO)/server"; \
	echo "                  $(BIN)/tally-server events --data $(DEMO)/server"; \
	echo "   Server log:    $(DEMO)/server.log"; \
	wait $$pid

clean:
	rm -rf $(BIN)
