# Static shared memory and V4V for Xen, in Rust.
#
#   make        build the patched Xen (the main job)
#   make test   run every test that fits in CI
#
# Both install what they need first (make deps, as root).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build test test-rust lint clean

all: deps build

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build --workspace --all-targets

test: deps lint test-rust

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

clean:
	$(CARGO) clean
	rm -rf out build
