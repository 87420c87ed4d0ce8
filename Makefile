# LatentDB: `make run` starts the server, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
PORT ?= 7379
DATA_DIR ?= ./data
SWIFT_TEST_FLAGS ?=
PYTHON ?= python3

.PHONY: run test demo deps build release unit-tests integration-tests bench clean-data

# System packages: RocksDB (with LZ4) to build against, redis-tools for the integration tests.
deps:
	@missing=""; \
	pkg-config --exists rocksdb 2>/dev/null && [ -f /usr/include/rocksdb/c.h ] || missing="$$missing librocksdb-dev"; \
	[ -f /usr/include/lz4.h ] || missing="$$missing liblz4-dev"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || missing="$$missing redis-tools"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "LatentDB needs:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
	@$(PYTHON) -c "import pytest, redis, numpy, pyspark" 2>/dev/null || $(PYTHON) -m pip install -q pytest redis numpy pyspark

build: deps
	swift build

release: deps
	swift build -c release

run: release
	.build/release/latentd --port $(PORT) --data-dir $(DATA_DIR)

demo: release
	tools/demo.sh

unit-tests: build
	swift test --disable-swift-testing $(SWIFT_TEST_FLAGS)

integration-tests: build
	LATENTD_BIN=$(CURDIR)/.build/debug/latentd LATENTCTL_BIN=$(CURDIR)/.build/debug/latentctl $(PYTHON) -m pytest -q tests/integration

test: unit-tests integration-tests

clean-data:
	rm -rf $(DATA_DIR)
