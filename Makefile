# smsnmpd: `make demo` to try it, `make test` for everything CI runs.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Unit tests run with the race detector; end-to-end tests (./test/...) build
# smsnmpd without it, as operators run it, and start real processes.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/test/')
E2E_PKGS  = $(shell $(GO) list ./test/... 2>/dev/null | grep -v '/test/bench')

.PHONY: all build demo deps check test test-unit test-e2e bench fuzz deb clean

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

# The Debian package: bin/smsnmpd_<version>_<arch>.deb (DEB_OUT=dir to put
# it elsewhere). nfpm runs with `go run` at a pinned version, so nothing
# needs installing by hand; the standard MIB texts the package ships come
# from test/deps/install.sh mibs (no root needed when apt's lists exist).
NFPM_VERSION   ?= v2.45.2
NFPM           ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
DEB_VERSION    ?= $(shell sh etc/packaging/version.sh)
DEB_GOARCH     ?= $(shell $(GO) env GOARCH)
DEB_ARCH       ?= $(shell $(GO) env GOARCH | sed 's/^386$$/i386/; s/^arm$$/armhf/')
DEB_MAINTAINER ?= smsnmpd maintainers <smsnmpd@users.noreply.github.com>
DEB_OUT        ?= bin
DEB_STAGE       = bin/deb
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
STD_MIBS       ?= $(or $(SMSNMPD_STD_MIBS),.cache/std-mibs)
DEB_FILE        = $(DEB_OUT)/smsnmpd_$(DEB_VERSION)_$(DEB_ARCH).deb

deb:
	sh test/deps/install.sh mibs
	rm -rf $(DEB_STAGE) && mkdir -p $(DEB_STAGE)/mibs $(DEB_OUT)
	CGO_ENABLED=0 $(GO) build -trimpath -buildmode=pie -ldflags "-s -w -X main.version=$(DEB_VERSION) -X main.commit=$(COMMIT)" -o $(DEB_STAGE)/smsnmpd ./cmd/smsnmpd
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(DEB_STAGE)/smsnmpd manpage | gzip -9n > $(DEB_STAGE)/smsnmpd.8.gz
	$(DEB_STAGE)/smsnmpd manpage -completion > $(DEB_STAGE)/smsnmpd.bash
	sh etc/packaging/render-unit.sh > $(DEB_STAGE)/smsnmpd.service
	sh etc/packaging/changelog.sh '$(DEB_VERSION)' '$(DEB_MAINTAINER)' | gzip -9n > $(DEB_STAGE)/changelog.gz
	cp $(STD_MIBS)/SNMPv2-SMI.mib $(STD_MIBS)/SNMPv2-TC.mib $(STD_MIBS)/SNMPv2-CONF.mib \
	   $(STD_MIBS)/SNMPv2-MIB.mib $(STD_MIBS)/INET-ADDRESS-MIB.mib $(DEB_STAGE)/mibs/
	DEB_VERSION='$(DEB_VERSION)' DEB_GOARCH='$(DEB_GOARCH)' DEB_MAINTAINER='$(DEB_MAINTAINER)' \
	  SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(NFPM) package -f etc/packaging/nfpm.yaml -p deb -t $(DEB_FILE)
	@echo "$(DEB_FILE)"

clean:
	rm -rf bin
