# Static shared memory and V4V for Xen, in Rust.
#
#   make        the main job: build the patched Xen
#   make test   every test that fits in CI
#
# Both install what they need first (make deps, as root). Each part of the
# project adds its own targets in mk/*.mk: to MAIN_TARGETS (what `make`
# builds) and TEST_TARGETS (what `make test` runs after the Rust tests).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

MAIN_TARGETS :=
TEST_TARGETS :=

.PHONY: all deps build test test-rust lint clean

all: main

-include $(sort $(wildcard mk/*.mk))

.PHONY: main
main: deps $(MAIN_TARGETS)

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build --workspace --all-targets

test: deps lint test-rust $(TEST_TARGETS)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust: deps
	$(CARGO) test --workspace

clean:
	$(CARGO) clean
	rm -rf out build
