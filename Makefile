# chainstore Makefile. Only Go and make are needed; every other tool is
# installed into .tools/ by the targets that use it, pinned by version.
SHELL := /usr/bin/env bash -o pipefail -o errexit -o nounset
.DEFAULT_GOAL := build

GO        ?= go
TOOLS     := $(CURDIR)/.tools/bin
BIN       := $(CURDIR)/bin
PKGS      := ./...
TEST_TIMEOUT ?= 12m

BUF_VERSION             := v1.57.0
PROTOC_GEN_GO_VERSION   := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.5.1

.PHONY: build test test-short vet fmt-check tidy-check proto verify-proto cluster bench chaos fuzz clean

build: ## build stored, storectl, storeagent and tools into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tidy-check:
	@cp go.mod /tmp/chainstore.go.mod.bak; cp go.sum /tmp/chainstore.go.sum.bak
	@$(GO) mod tidy
	@if ! git diff --quiet -- go.mod go.sum; then \
	  echo "go.mod/go.sum are not tidy:"; git --no-pager diff -- go.mod go.sum; \
	  cp /tmp/chainstore.go.mod.bak go.mod; cp /tmp/chainstore.go.sum.bak go.sum; exit 1; fi

test: fmt-check vet build ## the CI gate: race-enabled unit, integration and end-to-end tests
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)

proto: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## regenerate rpc/configpb from rpc/proto
	cd rpc/proto && PATH=$(TOOLS):$$PATH buf generate

verify-proto: proto
	@git diff --exit-code -- rpc/configpb || (echo "generated protobuf code is stale: run make proto"; exit 1)

cluster: build ## run a local three-node cluster in the foreground until Ctrl-C
	./scripts/cluster.sh run

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

CHAOS_TIMEOUT ?= 90m
CHAOS_RUN     ?= .
chaos: build ## long tier of the fault suite (CHAOS_LONG=1: more histories, longer traffic, leader-kill failover timing)
	CHAOS_LONG=1 $(GO) test -count=1 -timeout $(CHAOS_TIMEOUT) -v -run '$(CHAOS_RUN)' ./scripts/chaos/

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

clean:
	rm -rf $(BIN) .cluster
