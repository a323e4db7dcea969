#!/usr/bin/env bash
# Makes `cargo +nightly fuzz` available (mk/fuzz.mk): the rustup nightly
# toolchain and cargo-fuzz from crates.io. Idempotent; quick when both are
# there. CI starts from a machine with only rustup stable and nightly.
set -euo pipefail

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz-setup: installing the rustup nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi

if cargo +nightly fuzz --version >/dev/null 2>&1; then
    exit 0
fi
echo "fuzz-setup: installing cargo-fuzz (about a minute)"
cargo install cargo-fuzz --locked
cargo +nightly fuzz --version
