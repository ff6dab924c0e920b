# rowsync — make targets. `make demo` runs the main job end to end; `make test`
# runs every test (CI runs exactly `make test` through .ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# The default run includes short versions of the soak/chaos tests; LONG=1 runs the
# long ones (each package's -long flag defaults to ROWSYNC_LONG=1).
TESTFLAGS ?=
export ROWSYNC_LONG := $(LONG)

.PHONY: build test services demo bench fuzz vet clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/rowsync ./cmd/rowsync

services:
	bash scripts/services.sh

vet:
	$(GO) vet ./...

test: services
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m $(TESTFLAGS) ./...

demo: build services
	bash scripts/demo.sh

bench: build services
	bash scripts/bench.sh

fuzz:
	bash scripts/fuzz.sh

clean:
	rm -rf bin
