# tspod — `make` installs what is missing and builds; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := all

# Debian packages the build and the tests need. Installed only when missing,
# only as root. docker-registry's own service is kept from starting (policy-rc.d).
DEB_PACKAGES := docker-registry skopeo umoci busybox-static musl-tools zstd xz-utils bzip2 \
                iproute2 util-linux systemd podman runc
TS_SOURCES := $(shell find cmd stage0 stage1 store native test -name '*.ts' 2>/dev/null)

.PHONY: all deps build test unit bench demo clean typecheck

all: deps build

deps: .deps/apt node_modules/.installed

.deps/apt:
	@mkdir -p .deps
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing (run make as root, or apt-get install them)" >&2; exit 1; fi; \
	  echo "installing Debian packages: $$missing"; \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
	  trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: bin/tspod build/.tsc

# The CLI: one bundled ES module (fast start), koffi loaded from node_modules.
bin/tspod: node_modules/.installed $(TS_SOURCES)
	@mkdir -p bin
	node_modules/.bin/esbuild cmd/main.ts --bundle --platform=node --target=node20 --format=esm \
	  --external:koffi --outfile=bin/tspod.mjs --log-level=warning \
	  --banner:js="#!/usr/bin/env node"$$'\n'"import { createRequire as __tspodCreateRequire } from 'node:module'; const require = __tspodCreateRequire(import.meta.url);"
	chmod +x bin/tspod.mjs
	ln -sf tspod.mjs bin/tspod

# Type-checked JS of every module, for the tests.
build/.tsc: node_modules/.installed $(TS_SOURCES) tsconfig.json
	node_modules/.bin/tsc -p tsconfig.json
	@touch $@

typecheck: node_modules/.installed
	node_modules/.bin/tsc -p tsconfig.json --noEmit

test: all
	node test/run.mjs

bench: all
	node build/test/bench/bench.js

demo: all
	bash fixtures/demo.sh

clean:
	rm -rf bin build .deps test/data fixtures/out
