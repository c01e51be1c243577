# The two commands a person needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(PATH)
CARGO ?= cargo
NPM ?= npm
BIND ?= 127.0.0.1:8080
DATA_DIR ?= $(CURDIR)/data

.PHONY: help run test test-deps web-deps web-build lint test-rust test-contract test-web test-browser test-helm \
        cluster-up cluster-down crds render bench bench-http clean e2e

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

run: web-build ## Build the web app and serve it with the API on :8080 (embedded store)
	$(CARGO) run --profile local -p api-server --no-default-features -- --bind $(BIND) --data-dir $(DATA_DIR) --web-dir $(CURDIR)/web/dist

test: test-deps lint test-rust test-contract test-web test-browser ## Install what the tests need, then run every test
	@echo "make test: all suites passed"

test-deps: ## Install Debian packages and build the Go-module tools (cached, idempotent)
	@bash scripts/test-deps.sh
	@$(MAKE) --no-print-directory web-deps

web-deps:
	@if [ -f web/package.json ]; then \
	  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
	    echo "[test-deps] npm ci (web)"; cd web && $(NPM) ci --no-audit --no-fund --loglevel=error; \
	  fi; \
	fi

web-build: web-deps
	@if [ -f web/package.json ]; then cd web && $(NPM) run build; fi

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust: ## Unit, conformance and control-plane tests of every crate
	@# anyhow errors without their backtrace: a failing test's message stays on screen (panics keep theirs)
	RUST_LIB_BACKTRACE=0 $(CARGO) test --workspace --no-fail-fast

test-contract: ## Schemathesis fuzzes a running API server against its OpenAPI document (bounded, ~2 min)
	bash scripts/contract-test.sh

test-web: web-deps ## Vitest unit and component tests of the web app
	@if [ -f web/package.json ]; then cd web && $(NPM) test; fi

test-browser: web-build ## Real Chromium drives the built app against a real API server
	@if [ -f web/e2e/run.mjs ]; then \
	  $(CARGO) build -p api-server && cd web && node e2e/run.mjs; fi

e2e: test-deps web-deps ## Only the end-to-end test: images, helm install, a platform on the real node, Chromium votes
	$(CARGO) test -p beer-meetup-tests --test e2e -- --nocapture

test-helm: ## Only the chart tests (they also run in test-rust)
	@if [ -d charts/beer-meetup-operator ]; then $(CARGO) test -p beer-meetup-tests --test helm -- --nocapture; fi

cluster-up: test-deps ## Start the local control plane and a real node; kubeconfig in .tools/cluster/kubeconfig
	@bash scripts/images.sh pause
	$(CARGO) run -q -p test-fixtures --bin local-cluster -- up --real-node --dir $(CURDIR)/.tools/cluster

cluster-down: ## Stop the local control plane started by cluster-up
	$(CARGO) run -q -p test-fixtures --bin local-cluster -- down --dir $(CURDIR)/.tools/cluster

.PHONY: images
IMAGE_PROFILE ?= release
images: ## Build every container image with buildah (no daemon) into .tools/images (IMAGE_PROFILE=debug, CONTAINERD_ADDRESS=<sock> imports)
	@bash scripts/images.sh --profile $(IMAGE_PROFILE)

crds: ## Regenerate crds/, the chart's copy and docs/configuration.md from the operator's types
	$(CARGO) run -q -p beer-meetup-operator -- crd > crds/beermeetupplatforms.yaml
	cp crds/beermeetupplatforms.yaml charts/beer-meetup-operator/crds/beermeetupplatforms.yaml
	UPDATE_DOCS=1 $(CARGO) test -q -p beer-meetup-tests --test docs

bench: ## Benchmarks (not tests); results go to docs/benchmarks.md
	$(CARGO) bench --workspace

bench-http: ## API speed: release server + embedded store vs a bare axum handler, driven by wrk; the writes again on tmpfs (CPU ceiling)
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(CARGO) bench -p api-server --bench http_speed

clean:
	rm -rf target .tools web/dist web/node_modules
