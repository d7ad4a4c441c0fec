# Parley — see README.md. Two commands matter: `make run` and `make test`.
SHELL   := /bin/bash
GO      ?= go
export CGO_ENABLED := 1

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/parley
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# protoc-gen-go-grpc stays at v1.3.0: newer generators need grpc >= 1.62 (go.mod has 1.61).
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.3.0

.PHONY: all build run test lint deps jsdeps gen bench bench-sip bench-webrtc fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/parley

## run: start the server with its embedded defaults (data in ./parley-data, HTTP on 127.0.0.1:8080)
run: build
	./$(BIN) serve

## test: install what the suite needs (as root), lint, then every test with the race detector
## (but one: attaching chromedp v0.14.2 to the portal's out-of-process iframe races inside chromedp,
## whose attach walks the frame's node map while its event loop writes it, cf. chromedp/chromedp#739;
## that test runs in a second pass without -race, and the portal's server code stays race-tested
## by server/partners_test.go: portal sessions over REST and the live presence WebSocket)
BROWSER_IFRAME_TESTS = ^TestPortalInBrowser$$
## and the media hot paths' allocation tests once more without -race, whose sync.Pool drops
## buffers at random (a -race build may skip them)
ALLOC_TESTS = ^TestNoAllocation
test: deps jsdeps lint
	PARLEY_REQUIRE_PEERS=1 $(GO) test -race -count=1 -timeout 14m -skip '$(BROWSER_IFRAME_TESTS)' ./...
	PARLEY_REQUIRE_PEERS=1 $(GO) test -count=1 -timeout 5m -run '$(BROWSER_IFRAME_TESTS)' ./server/
	$(GO) test -count=1 -timeout 5m -run '$(ALLOC_TESTS)' ./signaling/media/...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## deps: Debian packages (as root) and the pinned protobuf generators
deps:
	@scripts/deps.sh
	@$(GO) install $(PROTOC_GEN_GO)
	@$(GO) install $(PROTOC_GEN_GO_GRPC)

## jsdeps: JsSIP and SIP.js (and esbuild to bundle them) from npm for the SIP-over-WebSocket browser test
JSSIP_FIXTURE := signaling/webrtc/testdata/jssip
jsdeps:
	@if [ -d $(JSSIP_FIXTURE)/node_modules/jssip ] && [ -d $(JSSIP_FIXTURE)/node_modules/sip.js ] && [ -x $(JSSIP_FIXTURE)/node_modules/.bin/esbuild ]; then \
	  echo "jsdeps: present"; else npm ci --prefix $(JSSIP_FIXTURE) --no-audit --no-fund; fi

## gen: regenerate plugins/proto/*/v1 Go code from the .proto files
gen:
	scripts/gen-proto.sh

## bench: print the performance figures README records (bench-sip: registrar and call setup vs Kamailio, minutes)
bench:
	$(GO) test -run '^$$' -bench RESTAdmission -benchtime 3s ./server/
	$(GO) test -run '^$$' -bench Admission -benchtime 2s ./admission/
	$(GO) test -run '^$$' -bench Ingest -benchtime 1000000x ./usage/
	$(GO) test -run '^$$' -bench TriggerLatency -benchtime 300x ./usage/
	$(GO) test -run '^$$' -bench ConcurrentBridges -benchtime 1x ./signaling/media/
	$(GO) test -run '^$$' -bench SIPMessage -benchtime 5000x ./server/
	$(GO) test -run '^$$' -bench Verify ./presence/accesstoken/
	$(GO) test -run '^$$' -bench 'SaveBindings|CompactBindingLog' -benchtime 50x ./store/
	$(GO) test -run '^$$' -bench StatelessRegisterBearer -benchtime 100000x ./signaling/sip/udpreg/

## bench-webrtc: registered browser sessions and browser↔SIP bridged calls (pion load), server CPU/RSS
bench-webrtc:
	bench/webrtc/run.sh

bench-sip:
	bench/register/run.sh
	bench/calls/run.sh
	bench/calls/bridges.sh

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

clean:
	rm -rf bin
