# tspod — `make` installs what is missing and builds; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := all

# Debian packages, in two sets: what the build and the main job need (`make`),
# and what only the tests, the demo and the benchmarks need (`make test`, `make
# demo`, `make bench`). There is no stamp file: every run asks dpkg which are
# missing (a fraction of a second), so a fresh clone installs what its machine
# lacks. Installed only as root; docker-registry's own service is kept from
# starting (policy-rc.d), the tests start their own on 127.0.0.1.
BUILD_PACKAGES := musl-tools libseccomp-dev zstd xz-utils bzip2 util-linux containernetworking-plugins iptables
TEST_PACKAGES := docker-registry skopeo umoci busybox-static iproute2 systemd podman runc \
                 apache2-utils openssl strace time
TS_SOURCES := $(shell find cmd stage0 stage1 store native test -path test/data -prune -o -name '*.ts' -print 2>/dev/null)

.PHONY: all deps deps-build deps-test build test unit unit-nobody bench demo clean typecheck stage1 check lint check-c format-check

all: deps build

deps: deps-build node_modules/.installed

# apt_install PACKAGES: installs those that dpkg does not list as installed.
define apt_install
@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:" $$missing "(run make as root, or apt-get install them)" >&2; exit 1; fi; \
  echo "installing Debian packages:" $$missing; \
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
fi
endef

deps-build:
	$(call apt_install,$(BUILD_PACKAGES))

deps-test:
	$(call apt_install,$(TEST_PACKAGES))

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: bin/tspod build/.tsc bin/stage1.aci bin/tspod-helper

# The CLI: bundled ES modules split per command set (each command loads only what
# it needs: run-prepared starts without the argument library), koffi from
# node_modules, and bin/tspod, a sh launcher (cmd/tspod.sh). unpack-worker.js is the
# entry of the importer's layer-unpacking worker threads (store/layers/unpack-thread.ts).
bin/tspod: node_modules/.installed $(TS_SOURCES) cmd/tspod.sh
	@mkdir -p bin
	rm -rf bin/tspod-js bin/tspod.mjs
	node_modules/.bin/esbuild cmd/main.ts store/layers/unpack-worker.ts --bundle --splitting --platform=node --target=node20 --format=esm \
	  --external:koffi --outdir=bin/tspod-js --entry-names=[name] --chunk-names=chunks/[name]-[hash] --log-level=warning \
	  --banner:js="import { createRequire as __tspodCreateRequire } from 'node:module'; const require = __tspodCreateRequire(import.meta.url);"
	install -m 0755 cmd/tspod.sh bin/tspod

# ---- The stage1 image: bin/stage1.aci (see stage1/build/assemble.ts) ----
# stage1/main.ts → one CJS bundle → a Node SEA (a stripped copy of this node with
# the blob injected by postject); the static launcher native/launcher/launcher.c
# becomes /init, /enter and /gc; the rootfs also gets bin/tspod-helper, koffi.node,
# and the glibc loader and libraries the SEA needs.
STAGE1_DIR := build/stage1-image
STAGE1_TS := $(shell find stage1 native -name '*.ts' -not -path 'stage1/build/*' 2>/dev/null)
STAGE1_NODE := $(realpath $(shell command -v node))
STAGE1_KOFFI := node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node
STAGE1_FUSE := NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2
LAUNCHER_CC := $(if $(shell command -v musl-gcc),musl-gcc,gcc)

stage1: bin/stage1.aci

# The bundle is replaced only when its content changes, so that editing a
# module the bundle does not include does not rebuild the SEA.
$(STAGE1_DIR)/main.cjs: $(STAGE1_DIR)/.bundle ;
$(STAGE1_DIR)/.bundle: $(STAGE1_TS) | node_modules/.installed
	@mkdir -p $(STAGE1_DIR)
	node_modules/.bin/esbuild stage1/main.ts --bundle --platform=node --target=node20 --format=cjs \
	  --external:koffi --define:import.meta.url=__tspodImportMetaUrl \
	  --banner:js='var __tspodImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' \
	  --outfile=$(STAGE1_DIR)/main.cjs.new --log-level=warning
	@if cmp -s $(STAGE1_DIR)/main.cjs.new $(STAGE1_DIR)/main.cjs; then rm $(STAGE1_DIR)/main.cjs.new; \
	  else mv $(STAGE1_DIR)/main.cjs.new $(STAGE1_DIR)/main.cjs; fi
	@touch $@

$(STAGE1_DIR)/tspod-stage1: $(STAGE1_DIR)/main.cjs stage1/build/sea-config.json $(STAGE1_NODE) | node_modules/.installed
	$(STAGE1_NODE) --experimental-sea-config stage1/build/sea-config.json
	cp $(STAGE1_NODE) $@.tmp && chmod 755 $@.tmp && strip $@.tmp
	@set -o pipefail; node_modules/.bin/postject $@.tmp NODE_SEA_BLOB $(STAGE1_DIR)/sea-prep.blob \
	  --sentinel-fuse $(STAGE1_FUSE) 2>&1 | { grep -v -e "Can't find string offset" -e 'Start injection' -e 'Injection done' || true; }
	mv $@.tmp $@

$(STAGE1_DIR)/launcher: native/launcher/launcher.c
	@mkdir -p $(STAGE1_DIR)
	$(LAUNCHER_CC) -static -Os -Wall -Wextra -Werror -o $@.tmp $< && strip $@.tmp && mv $@.tmp $@

# The static native helper (native/helper/PLAN.md): musl-gcc -static -Os, else gcc -static.
bin/tspod-helper: native/helper/Makefile $(wildcard native/helper/*.c native/helper/*.h) | deps-build
	$(MAKE) --no-print-directory -C native/helper OUT=$(CURDIR)/bin/tspod-helper OBJDIR=$(CURDIR)/build/helper

bin/stage1.aci: $(STAGE1_DIR)/tspod-stage1 $(STAGE1_DIR)/launcher bin/tspod-helper $(STAGE1_KOFFI) \
                stage1/build/assemble.ts stage1/contract/appc.ts stage1/contract/pod.ts package.json
	node_modules/.bin/esbuild stage1/build/assemble.ts --bundle --platform=node --target=node20 --format=esm \
	  --outfile=$(STAGE1_DIR)/assemble.mjs --log-level=warning
	node $(STAGE1_DIR)/assemble.mjs --sea=$(STAGE1_DIR)/tspod-stage1 --launcher=$(STAGE1_DIR)/launcher \
	  --helper=bin/tspod-helper --koffi=$(STAGE1_KOFFI) --work=$(STAGE1_DIR) --out=$@ \
	  --version=$$(node -p 'require("./package.json").version')

# Type-checked JS of every module, for the tests.
build/.tsc: node_modules/.installed $(TS_SOURCES) tsconfig.json
	node_modules/.bin/tsc -p tsconfig.json
	@touch $@

typecheck: node_modules/.installed
	node_modules/.bin/tsc -p tsconfig.json --noEmit

# ---- make check: what CI runs right after `make` (about a minute) ----
# The type check of every module, ESLint (eslint.config.mjs: the recommended rules
# of ESLint and typescript-eslint, without type information), every C file compiled
# with -Wall -Wextra -Werror (the helper and the launcher are built that way, so
# building them is their check; the test's attack program is compiled here), and
# the formatting rules of format-check.
check: typecheck lint check-c format-check

lint: node_modules/.installed
	node_modules/.bin/eslint --max-warnings=0 .

check-c: bin/tspod-helper $(STAGE1_DIR)/launcher
	gcc -std=gnu11 -Wall -Wextra -Werror -fsyntax-only test/attack/attack.c
	gcc -std=gnu11 -Wall -Wextra -Werror -fsyntax-only test/udp/udp-answer.c

# Formatting, checked rather than rewritten (a formatter run over the tree would
# touch nearly every file): in every tracked text file no trailing whitespace and
# no CR, and a final newline; no tabs except in C sources and Makefiles; no
# citation of design notes that are not in the repository (docs/ has ours).
# The OCI spec's test vectors are kept as published.
FORMAT_EXEMPT := fixtures/oci-image-spec-vectors.json
format-check:
	@files=$$(git ls-files -- . ':!:$(FORMAT_EXEMPT)') || { echo "format-check: needs a git checkout" >&2; exit 1; }; \
	bad=$$(grep -nIE '[[:space:]]+$$' $$files; \
	  grep -nP '\t' $$(printf '%s\n' $$files | grep -vE '(\.[ch]|Makefile)$$'); \
	  for f in $$files; do [ -s "$$f" ] && [ -n "$$(tail -c1 "$$f")" ] && echo "$$f: no newline at the end"; done; \
	  git grep -nE 'DESIGN[.]md|RKT-REFERENCE|NET-CONTRACT' -- . ':!:Makefile' | sed 's/$$/  (cite docs\/ instead)/'); \
	if [ -n "$$bad" ]; then echo "$$bad" | head -50; echo "format-check: fix the lines above (trailing whitespace, tabs, final newline, citations)" >&2; exit 1; fi

# Test fixtures: images built by umoci/skopeo from busybox-static (fixtures/build.sh).
.PHONY: fixtures
fixtures: deps deps-test
	bash fixtures/build.sh

# Unit tests (test/unit/): no root, no fixtures, no namespaces; seconds. The
# system calls are a recording fake there (native/sys.ts, sys()). They run as
# whoever runs make; TSPOD_UPDATE_GOLDEN=1 rewrites the golden files they compare
# with (test/unit/golden/). `make test` runs them first (as root, then as nobody:
# make unit-nobody), then the root tests.
UNIT_TESTS := $(patsubst %.ts,build/%.js,$(wildcard test/unit/*.test.ts))
unit: build/.tsc bin/tspod-helper
	node --test --test-reporter=spec $(UNIT_TESTS)

# The same tests as the user nobody, from a copy in /tmp (run as root; make test does).
unit-nobody: build/.tsc bin/tspod-helper
	bash test/unit/as-nobody.sh

test: all unit unit-nobody fixtures
	node test/run.mjs

# Benchmarks (issues 2 and 3; not part of `make test`): needs the big fixture.
# Results: stdout, bench/out/results.md and bench/out/results.json.
bench: all fixtures
	bash fixtures/build.sh big
	node build/test/bench/bench.js

demo: all fixtures
	bash fixtures/demo.sh

clean:
	rm -rf bin build test/data fixtures/out
