#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Generates "public: add the sshm and V4V headers" from hypercall-abi's C
# headers, the single source of truth for the ABI.
set -euo pipefail
TREE=$1 ROOT=$2
. "$(dirname "$0")/commit.sh"
for h in sshm.h v4v.h; do
    cp "$ROOT/hypercall-abi/include/public/$h" "$TREE/xen/include/public/$h"
    git -C "$TREE" add "xen/include/public/$h"
done
# sshm.h is for the toolstack only (a domctl argument, with
# uint64_aligned_t) and, like the %ctl.h headers, stays out of the ANSI
# check; v4v.h is for guests and is checked.
M=$TREE/xen/include/Makefile
grep -q '^public-ansi-headers-filter := %ctl.h xsm/%' "$M" \
    || { echo "public-headers: unexpected xen/include/Makefile" >&2; exit 1; }
sed -i 's,^public-ansi-headers-filter := %ctl.h xsm/%,public-ansi-headers-filter := %ctl.h sshm.h xsm/%,' "$M"
git -C "$TREE" add xen/include/Makefile
gen_commit "$TREE" <<'MSG'
public: add the static shared memory and V4V headers

sshm.h describes XEN_DOMCTL_static_shm: owner-less shared memory regions,
created and mapped by the toolstack, whose pages belong to a new
pseudo-domain DOMID_SSHM.  v4v.h describes the v4v_op hypercall:
hypervisor-mediated messaging into rings registered by the receiver.

Both are the C mirror of the Rust crate hypercall-abi, which pins the layout
on its side; the headers pin it with _Static_assert.  They only use
fixed-size, explicitly padded types, so 32-bit guests see the same layout
(checked in xlat.lst later in the series).

v4v.h is for guests: it uses plain uint64_t, every 64-bit field at a
multiple of 8 bytes, and passes the ANSI header check.  sshm.h is for the
toolstack only (a domctl argument, with uint64_aligned_t) and is left out
of that check like the %ctl.h headers.

Nothing includes them yet.

Signed-off-by: rust-hv developers <rust-hv@localhost>
MSG
