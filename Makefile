# LatentDB: `make run` starts the server, `make test` runs every test. Both install what they need.
# `make run` needs no Python at all; the tests' Python packages go into a project virtualenv (.venv),
# never into the system interpreter (Debian's is "externally managed", PEP 668).
SHELL := /bin/bash
PORT ?= 7379
DATA_DIR ?= ./data
SWIFT_TEST_FLAGS ?=
# The interpreter the test virtualenv is made from: Debian's when present, else the first python3.
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
# The redis-py release whose own vector-set tests run against latentd (tests/integration/test_redis_py_vsets.py).
REDIS_PY := 8.1.0
PREFIX ?= /usr/local
DESTDIR ?=
# Where `make install-files` takes the binaries from (install builds release first).
BUILD_DIR ?= .build/release
BUILD_INFO := Sources/CLatentSupport/build_info_generated.h

.PHONY: run test demo deps server-deps test-deps build release unit-tests integration-tests clean-data \
        buildinfo install install-files fuzz fuzz-short fuzz-replay tsan

# What the server needs to build and run: RocksDB (with LZ4) and pkg-config. Nothing else.
server-deps:
	@missing=""; \
	pkg-config --exists rocksdb 2>/dev/null && [ -f /usr/include/rocksdb/c.h ] || missing="$$missing librocksdb-dev"; \
	[ -f /usr/include/lz4.h ] || missing="$$missing liblz4-dev"; \
	[ -f /usr/include/zlib.h ] || missing="$$missing zlib1g-dev"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	tools/apt_install.sh $$missing

# What the tests add: redis-tools, python3-venv, qemu-user on x86-64 (runs latentd on an emulated CPU
# without AVX, tests/integration/test_kernel_levels.py), prometheus and promtool (scrape /metrics,
# tests/integration/test_metrics.py), and a virtualenv with the Python packages.
test-deps: server-deps
	@missing=""; \
	command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || missing="$$missing redis-tools"; \
	[ "$$(uname -m)" != x86_64 ] || command -v qemu-x86_64 >/dev/null || missing="$$missing qemu-user"; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	[ -x "$(VENV_PYTHON)" ] || $(PYTHON) -c "import venv, ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	tools/apt_install.sh $$missing
	@[ -x "$(VENV_PYTHON)" ] || $(PYTHON) -m venv $(VENV)
	@$(VENV_PYTHON) -c "import pytest, redis, numpy, pyspark; assert redis.__version__ == '$(REDIS_PY)'" 2>/dev/null || \
	  $(VENV_PYTHON) -m pip install -q --disable-pip-version-check pytest redis==$(REDIS_PY) numpy pyspark

deps: test-deps

# Build facts for --version and INFO; rewritten only when they change, so builds stay incremental.
buildinfo:
	@commit=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	git diff --quiet HEAD 2>/dev/null || commit="$$commit-dirty"; \
	rocks=$$(pkg-config --modversion rocksdb 2>/dev/null || echo unknown); \
	text="#define LATENT_GIT_COMMIT \"$$commit\""$$'\n'"#define LATENT_BUILD_DATE \"$$(date -u +%Y-%m-%d)\""$$'\n'"#define LATENT_ROCKSDB_VERSION \"$$rocks\""; \
	[ "$$(cat $(BUILD_INFO) 2>/dev/null)" = "$$text" ] || { echo "$$text" > $(BUILD_INFO); touch Sources/CLatentSupport/latent_build_info.c; }

build: server-deps buildinfo
	swift build

release: server-deps buildinfo
	swift build -c release

run: release
	.build/release/latentd --port $(PORT) --data-dir $(DATA_DIR)

demo: release
	@command -v redis-cli >/dev/null || tools/apt_install.sh redis-tools
	tools/demo.sh

# The kernel, flat-scan and HNSW-recall tests run a second time with the portable kernels pinned (what
# a CPU without AVX2, or arm64, runs).
KERNEL_TESTS := KernelLevelTests|DistanceKernelTests|FlatIndexTests|ANNIndexTests.testHNSWRecallForEveryMetric

unit-tests: build
	swift test --disable-swift-testing $(SWIFT_TEST_FLAGS)
	LATENT_KERNELS=portable swift test --disable-swift-testing --skip-build --filter '$(KERNEL_TESTS)'

integration-tests: build test-deps
	LATENTD_BIN=$(CURDIR)/.build/debug/latentd LATENTCTL_BIN=$(CURDIR)/.build/debug/latentctl \
	  $(VENV_PYTHON) -m pytest -q tests/integration

# The request path under libFuzzer + AddressSanitizer (.build-fuzz): 60 s in `make test`, 20 min here.
# The seed corpus is also replayed through the plain debug build (no sanitizer) by fuzz-replay.
FUZZ_SECONDS ?= 1200
fuzz: server-deps
	tools/fuzz.sh $(FUZZ_SECONDS)

fuzz-short: server-deps
	tools/fuzz.sh 60

fuzz-replay: build
	.build/debug/latent-fuzz tests/fuzz/corpus

# The concurrency tests under ThreadSanitizer (.build-tsan): any data race fails the run.
TSAN_TESTS ?= CatalogTests|IndexMaintenanceTests|CachedSearchTests|ANNIndexTests|ReplicationTests
tsan: build
	TSAN_OPTIONS=halt_on_error=1 swift test --disable-swift-testing --sanitize=thread --build-path .build-tsan \
	  --filter "$(TSAN_TESTS)"

test: test-deps unit-tests integration-tests fuzz-replay fuzz-short tsan

# Installs the binaries, the example configuration and the systemd unit (with PREFIX in its paths).
install: release install-files

install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/latentdb
	install -m 755 $(BUILD_DIR)/latentd $(BUILD_DIR)/latentctl $(DESTDIR)$(PREFIX)/bin/
	install -m 644 tools/latentd.conf $(DESTDIR)$(PREFIX)/share/latentdb/latentd.conf
	sed 's|@PREFIX@|$(PREFIX)|g' tools/latentd.service > $(DESTDIR)$(PREFIX)/share/latentdb/latentd.service
	@echo "installed latentd and latentctl in $(DESTDIR)$(PREFIX)/bin; config and unit in $(DESTDIR)$(PREFIX)/share/latentdb"

clean-data:
	rm -rf $(DATA_DIR)
