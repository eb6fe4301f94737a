# smsnmpd: `make demo` to try it, `make test` for everything CI runs.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Unit tests run with the race detector; end-to-end tests (./test/...) build
# smsnmpd without it, as operators run it, and start real processes.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/test/')
E2E_PKGS  = $(shell $(GO) list ./test/... 2>/dev/null | grep -v '/test/bench')

.PHONY: all build demo deps check test test-unit test-e2e bench fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/smsnmpd ./cmd/smsnmpd

# The demo needs nothing installed; the standard MIB texts (fetched by the
# deps script) let its printed snmpget resolve SERVICE-MANAGER-MIB names.
demo: build
	-@sh test/deps/install.sh
	./bin/smsnmpd demo

# Installs net-snmp, smitools, nftables and the standard MIB texts when run
# as root; otherwise says exactly what is missing.
deps:
	sh test/deps/install.sh
	$(GO) mod download

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-unit:
	$(GO) test -race -count=1 -timeout 10m $(UNIT_PKGS)

test-e2e: build
	@if [ -n "$(E2E_PKGS)" ]; then $(GO) test -count=1 -timeout 10m $(E2E_PKGS); fi

test: deps check test-unit test-e2e

# Every BenchmarkXxx; the cross-process ones (test/bench) start their own
# snmpd. Figures are ratios against a baseline measured in the same run.
bench: build
	$(GO) test -run '^$$' -bench . -timeout 30m ./...

# Runs each fuzz target for FUZZTIME (the seed corpora also run in `make test`).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

clean:
	rm -rf bin
