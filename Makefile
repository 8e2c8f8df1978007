# Flotilla: common tasks. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help build test test-unit lint deny fmt components up down

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

components: ## Build the local Kubernetes components (cached under ~/.cache/flotilla)
	kind/build

build: ## Build all binaries
	$(CARGO) build --workspace --bins

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deny: ## cargo deny: advisories (vendored snapshot, offline), licenses, bans, sources
	scripts/cargo-deny.sh

test-unit: ## Unit and integration tests (no member clusters)
	python3 -m unittest discover -s kind -p 'test_*.py'
	$(CARGO) test --workspace --exclude flotilla-e2e

test: components lint deny build ## The whole suite: lint, cargo deny, unit, integration and e2e with real member clusters
	python3 -m unittest discover -s kind -p 'test_*.py'
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=2

up: ## Start a local hub with two member clusters and their agents
	kind/local up

down: ## Stop and remove everything `make up` started
	kind/local down
