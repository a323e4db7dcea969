#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Generates "xen/rust-hv: build the Rust component over a C shim, add
# v4v_op": the C side of the component as it lives in this repository, in
# xen-patches/tree/ (laid out as in Xen's tree: the Rust build's Makefile,
# shim.c and shim.h, the only C Rust calls, and v4v.c, the hypercall entry),
# plus gen/rust-hv-c.diff, which hooks them in existing files (the build,
# the hypercall number and VIRQ, the hypercall table).
# Must come after the patches adding dom_sshm and its p2m helpers, the V4V
# XSM hooks, the compat V4V header and the domctl's number, which these
# files use.
set -euo pipefail
TREE=$1 ROOT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/commit.sh"
SRC=$ROOT/xen-patches/tree
for f in xen/common/rust-hv/Makefile xen/common/rust-hv/shim.c \
         xen/common/rust-hv/shim.h xen/common/rust-hv/v4v.c; do
    cp "$SRC/$f" "$TREE/$f"
    git -C "$TREE" add "$f"
done
git -C "$TREE" apply --index "$HERE/rust-hv-c.diff"
gen_commit "$TREE" <<'MSG'
xen/rust-hv: build the Rust component over a C shim, add v4v_op

rust-hv is built as a no_std staticlib for x86_64-unknown-none with the
Rust library compiled from source (-Zbuild-std), then partially linked from
the entry points Xen calls into one object.  Code generation follows this
.config like the C flags do: position independent code without a GOT
(-Zplt=yes, direct access to other crates' data), no unwind or jump tables,
retpoline and return thunks calling Xen's __x86_indirect_thunk_* and
__x86_return_thunk, and endbr64 landing pads with XEN_IBT.  Rust panics go
to panic() with the message; nothing unwinds.  The crates build with
--locked from the Cargo.lock imported with them.

shim.c holds one-line wrappers over Xen internals and is the only C that
Rust calls; bindgen binds shim.h and nothing else, so the header is
self-contained.  Boot parameters cap static shared memory: sshm_max_mb,
sshm_region_max_mb and sshm_regions_max.

v4v.c is the v4v_op hypercall, number 43, the first free one, with at
most five arguments so that 32-bit guests can use every sub-op.  Native
and compat guests share the entry: the structures of public/v4v.h have one
layout for both, which v4v.c proves field by field with CHECK_v4v_* (as in
argo.c, the structures nested in others are checked first, then their
CHECK_ macros name the native type).  A preempted send returns -ERESTART
from Rust and is continued with the same arguments.  VIRQ_V4V (14) tells a
receiver that a ring has data or space.

XSM: xsm_v4v_enable() is checked in do_v4v_op() on every call,
continuations included, before any argument is read.  The partner of a
ring and the destination of a send are in guest memory, which only the
Rust component reads, once, into Xen: checking them in C beforehand would
be a second read the guest can race.  So the register and send checks are
made from Rust, after its copy, through shim wrappers,
rust_hv_xsm_v4v_register() and rust_hv_xsm_v4v_send(); so is the firewall
check (rust_hv_xsm_v4v_firewall()), which needs no argument but belongs
with the sub-op.

Static shared memory gets one more check in the same place: the domctl's
XSM check is on its envelope domain only, but every sub-op except detach
also touches the regions, which are global and belong to dom_sshm.  The
Rust component asks rust_hv_xsm_sshm_regions() for those, which checks the
caller for XEN_DOMCTL_static_shm on dom_sshm (xsm_domctl; FLASK
domain2:static_shm on dom_sshm's label, the dummy policy the control domain
only), so an attach is checked against its target and the regions, and a
toolstack allowed to manage one guest cannot reach every tenant's regions.

The domctl handler and the domain kill hook, the other entry points,
come next.

Signed-off-by: rust-hv developers <rust-hv@localhost>
MSG
