#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Generates "xen/rust-hv: import the rust-hv and hypercall-abi crates": the
# crates as they are in this repository, with a workspace of their own so
# that the Xen tree builds without the rest of the repository.
set -euo pipefail
TREE=$1 ROOT=$2
. "$(dirname "$0")/commit.sh"
D=$TREE/xen/common/rust-hv
mkdir -p "$D"
for c in hypercall-abi rust-hv; do
    rm -rf "${D:?}/$c"
    mkdir -p "$D/$c"
    # Only what the hypervisor build needs: no tests folders, no C test
    # headers.
    (cd "$ROOT/$c" && tar --exclude=tests --exclude=proptest-regressions --exclude=target -cf - \
        Cargo.toml build.rs src README.md 2>/dev/null || true) | tar -C "$D/$c" -xf -
done
# The workspace: the repository's, reduced to the two crates.
awk '
    /^members *=/ { print "members = [\"hypercall-abi\", \"rust-hv\"]"; next }
    /^(simulator|rust-hv|proptest|cc|bitflags) *=/ { next }
    { print }
' "$ROOT/Cargo.toml" > "$D/Cargo.toml"
# The lock file: this repository's, trimmed by cargo to what the two crates
# use (it keeps every version it finds locked), so a Xen build resolves
# nothing itself; Xen's Makefile builds with --locked.
cp "$ROOT/Cargo.lock" "$D/Cargo.lock"
(cd "$D" && "${CARGO:-cargo}" metadata --format-version 1 >/dev/null &&
    "${CARGO:-cargo}" metadata --locked --format-version 1 >/dev/null) ||
    { echo "rust-crates: cannot trim Cargo.lock for the Xen workspace" >&2; exit 1; }
printf '/target/\n' > "$D/.gitignore"
git -C "$TREE" add -f xen/common/rust-hv
gen_commit "$TREE" <<'MSG'
xen/rust-hv: import the rust-hv and hypercall-abi crates

The logic of static shared memory and V4V is written in Rust, once, and
runs both here and in a user-space simulator where property tests drive it.
hypercall-abi is the public ABI (the C headers added earlier mirror it);
rust-hv is the logic, generic over a Platform trait, and its xen module
implements that trait over a C shim (added next) and exports the entry
points Xen calls.  Only the xen module contains unsafe code.

The crates are imported verbatim from the rust-hv project, with a
Cargo.lock that pins every dependency (the build uses --locked); nothing
builds them yet.

Signed-off-by: rust-hv developers <rust-hv@localhost>
MSG
