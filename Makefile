# chainstore Makefile. Only Go and make are needed; every other tool is
# installed into .tools/ by the targets that use it, pinned by version.
SHELL := /usr/bin/env bash -o pipefail -o errexit -o nounset
.DEFAULT_GOAL := build

GO        ?= go
TOOLS     := $(CURDIR)/.tools/bin
BIN       := $(CURDIR)/bin
PKGS      := ./...
TEST_TIMEOUT ?= 12m

# Pinned tool versions. Each tool is installed into $(TOOLS) by its rule below
# (`go install`, which needs only the Go module proxy). A rule runs when the
# binary is missing, so after bumping a version here delete the old binary
# from .tools/bin (or the whole directory). GOIMPORTS_VERSION is the
# golang.org/x/tools version.
BUF_VERSION             := v1.57.0
PROTOC_GEN_GO_VERSION   := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.5.1
GOLANGCI_LINT_VERSION   := v2.15.0
GOIMPORTS_VERSION       := v0.52.0

# Import grouping enforced by goimports (here and in .golangci.yml).
LOCAL_PREFIX := github.com/chainstore/chainstore

.PHONY: build test test-short verify vet fmt-check tidy-check lint proto verify-proto cluster bench bench-compare chaos fuzz demo clean ui-screenshots release ops-check

build: ## build stored, storectl, storeagent and tools into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet $(PKGS)

# gofmt and goimports on every Go file git knows about or would add
# (tracked plus untracked-but-not-ignored), except generated *.pb.go.
fmt-check: $(TOOLS)/goimports
	@files=$$(git ls-files --cached --others --exclude-standard -- '*.go' | grep -v '\.pb\.go$$' | \
	    while read -r f; do if [ -f "$$f" ]; then echo "$$f"; fi; done); \
	  out=$$(gofmt -l $$files); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi; \
	  out=$$($(TOOLS)/goimports -local $(LOCAL_PREFIX) -l $$files); \
	  if [ -n "$$out" ]; then echo "goimports -local $(LOCAL_PREFIX) needed:"; echo "$$out"; exit 1; fi

lint: $(TOOLS)/golangci-lint ## golangci-lint with .golangci.yml
	$(TOOLS)/golangci-lint run ./...

tidy-check:
	@cp go.mod /tmp/chainstore.go.mod.bak; cp go.sum /tmp/chainstore.go.sum.bak
	@$(GO) mod tidy
	@if ! git diff --quiet -- go.mod go.sum; then \
	  echo "go.mod/go.sum are not tidy:"; git --no-pager diff -- go.mod go.sum; \
	  cp /tmp/chainstore.go.mod.bak go.mod; cp /tmp/chainstore.go.sum.bak go.sum; exit 1; fi

verify: fmt-check vet tidy-check verify-proto lint ## every static check CI runs before the tests

test: verify build ## the CI gate (.ci/run): verify, then race-enabled unit, integration and end-to-end tests
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)
$(TOOLS)/golangci-lint:
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
$(TOOLS)/goimports:
	GOBIN=$(TOOLS) $(GO) install golang.org/x/tools/cmd/goimports@$(GOIMPORTS_VERSION)

proto: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## regenerate proto/chainstore/v1/*.pb.go from the .proto files
	cd proto && PATH=$(TOOLS):$$PATH buf generate

# proto/v1-baseline.binpb is a buf image of the v1 protos: it freezes the v1
# wire API, and `buf breaking` fails on any change that would break a v1
# client or server. Regenerate it (cd proto && ../.tools/bin/buf build -o
# v1-baseline.binpb) only for an intentional break, which v1 should never
# need: a breaking change goes into a new package (chainstore.v2).
verify-proto: proto ## generated code is current and committed, protos lint clean, no breaking change to v1
	@git diff --exit-code -- proto || \
	  (echo "generated protobuf code is stale: run make proto and commit the result"; exit 1)
	@untracked=$$(git status --porcelain --untracked-files=all -- proto | grep '^??' || true); \
	  if [ -n "$$untracked" ]; then \
	    echo "untracked files under proto/ (generated code or protos not added to git):"; echo "$$untracked"; exit 1; fi
	cd proto && $(TOOLS)/buf lint
	cd proto && $(TOOLS)/buf breaking --against v1-baseline.binpb

SECURE ?= 0
cluster: build ## run a local three-node cluster in the foreground until Ctrl-C (SECURE=1: TLS, gossip encryption; docs/security.md)
	SECURE=$(SECURE) ./scripts/cluster.sh run

BENCH_BASE_PORT ?= 18500
BENCH_JSON      ?= $(BIN)/bench-results.json
BENCH_FLAGS     ?=
bench: build ## start a local cluster (temp dir), run the standard benchmark set, print the table, stop the cluster
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/chainstore-bench.XXXXXX"); \
	  stop() { CLUSTER_DIR=$$dir BASE_PORT=$(BENCH_BASE_PORT) ./scripts/cluster.sh down >/dev/null 2>&1 || true; rm -rf "$$dir"; }; \
	  trap stop EXIT; \
	  CLUSTER_DIR=$$dir BASE_PORT=$(BENCH_BASE_PORT) LOG_LEVEL=warn ./scripts/cluster.sh up; \
	  p=$(BENCH_BASE_PORT); addrs=127.0.0.1:$$((p+2)),127.0.0.1:$$((p+12)),127.0.0.1:$$((p+22)); \
	  $(BIN)/storebench suite --addr $$addrs --json $(BENCH_JSON) $(BENCH_FLAGS)

BENCH_OLD ?= ac7d277
bench-compare: ## old against new in the same run: stored built from BENCH_OLD (default: before issue 12) vs this tree, alternating rounds (ROUNDS=2), medians, ratios and aims
	ROUNDS=$${ROUNDS:-2} ./scripts/bench-compare.sh $(BENCH_OLD)

demo: build ## a cluster, four gRPC backends and an xDS client in a temp dir: watch traffic follow splits, a header route and failover (DEMO_STEP_SECONDS, default 6)
	./scripts/demo.sh

CHAOS_TIMEOUT ?= 90m
CHAOS_RUN     ?= .
chaos: build ## long tier of the fault suite (CHAOS_LONG=1: more histories, longer traffic, leader-kill failover timing)
	CHAOS_LONG=1 $(GO) test -count=1 -timeout $(CHAOS_TIMEOUT) -v -run '$(CHAOS_RUN)' ./test/chaos/

FUZZTIME ?= 20s
fuzz: ## run every native fuzz target in the repo for FUZZTIME each (seeds and crashers in testdata/fuzz also run in make test)
	@summary=""; \
	  for file in $$(grep -rl --include='*_test.go' --exclude-dir=.tools --exclude-dir=.git --exclude-dir=bin '^func Fuzz' .); do \
	    pkg=./$$(dirname "$${file#./}"); \
	    for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
	      echo "== $$pkg $$target ($(FUZZTIME))"; \
	      out=$$($(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) "$$pkg" 2>&1) || { echo "$$out"; echo "FAIL: $$pkg $$target"; exit 1; }; \
	      last=$$(echo "$$out" | grep -o 'execs: [0-9]*' | tail -1 || true); \
	      echo "   $$last"; summary="$$summary$$pkg $$target: $$last"$$'\n'; \
	    done; \
	  done; \
	  echo; echo "fuzz summary ($(FUZZTIME) per target):"; printf '%s' "$$summary"

# The web UI's browser tests (test/ui) run in `make test` and need Debian's
# chromium (.ci/run installs it; without it they skip). This target redraws
# the README's screenshots of the chain page at three sizes.
ui-screenshots: ## docs/ui-chain-{1280x800,768x1024,390x844}.png from a real server in headless chromium
	$(GO) test -count=1 -run '^TestScreenshots$$' ./test/ui/ -args -screenshots=$(CURDIR)/docs

# Release: static binaries (no cgo) for each platform under
# dist/<os>_<arch>/, with VERSION stamped into package version (stored
# --version, storectl version), and SHA-256 sums. VERSION defaults to
# `git describe`.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLATFORMS ?= linux/amd64 linux/arm64
DIST      := $(CURDIR)/dist
release: ## static binaries for linux/amd64 and linux/arm64 into dist/, version-stamped (VERSION=...)
	@rm -rf $(DIST); mkdir -p $(DIST)
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=$(DIST)/$${os}_$${arch}; \
	  echo "== $$os/$$arch -> $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
	    -ldflags "-s -w -X github.com/chainstore/chainstore/version.Version=$(VERSION)" \
	    -o $$out/ ./cmd/stored ./cmd/storectl ./cmd/storeagent; \
	done
	@cd $(DIST) && sha256sum */* > SHA256SUMS && cat SHA256SUMS

ops-check: build ## run docs/operations.md's procedures against a local cluster (scripts/ops-check.sh)
	./scripts/ops-check.sh

clean:
	rm -rf $(BIN) .cluster $(DIST)
