# s3mounts — see README.md. The two commands that matter: `make demo`, `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/s3mounts/s3mounts/agent.Version=$(VERSION) -X github.com/s3mounts/s3mounts/agent/cli.Version=$(VERSION)
GOTEST_FLAGS ?= -p 2 -timeout 25m

.PHONY: all build setup test test-go test-ext lint fuzz fuzz-short demo bench clean deb

all: build

build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./agent/cmd/s3mountd ./agent/cmd/s3mountctl

setup:
	scripts/setup.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^jupyter-ext/')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

# Every test: Go unit + end-to-end (real MinIO, real FUSE, real s3fs, real
# daemon), a short fuzz run of the config parser, and the JupyterLab
# extension's Python, TypeScript and browser tests.
test: setup build lint
	@$(MAKE) --no-print-directory test-go fuzz-short test-ext

test-go:
	set -o pipefail; S3MOUNTS_OLD_BIN=$$(GO=$(GO) scripts/old-daemon.sh) S3MOUNTS_TEST_STRICT=1 S3MOUNTS_BIN=$(CURDIR)/bin $(GO) test $(GOTEST_FLAGS) -json ./... 2>&1 | python3 scripts/gotest.py

# Fuzz budgets are counts, not durations: a count has no wall-clock deadline
# for Go 1.26's fuzz coordinator to race on a loaded machine (go.dev/issue/75804).
# FUZZ_SHORT (60000 inputs per target) took 9-14 s per config target at load
# average ~15 on 2 cores, 11-41 s with 4 more CPU burners: slower, never failed.
# `make fuzz` (FUZZ_LONG, 5 min per target) is for a quiet machine.
FUZZ_SHORT ?= 60000x
FUZZ_LONG ?= 5m

fuzz-short:
	@GO=$(GO) scripts/fuzz.sh $(FUZZ_SHORT) 200x

fuzz:
	@GO=$(GO) scripts/fuzz.sh $(FUZZ_LONG)

test-ext:
	@if [ -x jupyter-ext/test.sh ]; then jupyter-ext/test.sh; else echo "jupyter-ext: no tests yet"; fi

# demo.sh builds after taking the demo lock: a second `make demo` beside a
# running one must not rebuild the binaries under it.
demo:
	@scripts/demo.sh

# make bench BENCH_ARGS='-latency 20ms' (the real-endpoint profile);
# quick: BENCH_ARGS='-objects 20000 -size 256MiB -small 2000'. docs/BENCHMARKS.md.
bench: build
	scripts/bench.sh $(BENCH_ARGS)

# The Debian package: dist/s3mounts_<version>_amd64.deb (DEB_VERSION=... to set it).
deb:
	scripts/build-deb.sh

clean:
	rm -rf --one-file-system bin .demo .bench .demo.lock
