#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make test-xen: build checks of the patched hypervisor.
#  1. it builds with the options on (make xen) and without them (the
#     unpatched behaviour: no Rust linked);
#  2. xen-syms contains the Rust entry points;
#  3. no .got section;
#  4. no xmm/ymm register in the Rust object;
#  5. tools/check-endbr.sh passes with IBT on;
#  6. make series applies with git am on a clean tree;
#  7. public/v4v.h passes the ANSI header check and every one of its
#     structures is checked for 32-bit guests (listed in xlat.lst, its
#     CHECK_v4v_* in compat/xlat.h and used in v4v.c);
#  8. with XSM and FLASK on, the XSM hooks, FLASK hooks and policy of the
#     series compile (the build of 1. has XSM off).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=$ROOT/out/xen
TREE=$ROOT/build/xen/src
fail() { echo "test-xen: FAIL: $*" >&2; exit 1; }
ok() { echo "test-xen: ok: $*"; }

bash xen-patches/build-xen.sh "$OUT"
grep -q '^CONFIG_SSHM=y' "$OUT/config" && grep -q '^CONFIG_V4V=y' "$OUT/config" || fail "options not on"
ok "builds with CONFIG_SSHM and CONFIG_V4V"

nm "$OUT/xen-syms" > "$ROOT/build/xen/xen-syms.nm"
for s in rust_hv_init rust_hv_sshm_domctl rust_hv_v4v_op rust_hv_domain_destroy do_v4v_op compat_v4v_op; do
    grep -q " T $s\$" "$ROOT/build/xen/xen-syms.nm" || fail "$s missing from xen-syms"
done
ok "entry points in xen-syms"

if [ -n "$(objdump -h "$OUT/xen-syms" | awk '$2 == ".got" && $3 !~ /^0+$/')" ]; then
    fail ".got is not empty"
fi
ok "no .got"

RO=$TREE/xen/common/rust-hv/rust-hv.o
n=$(objdump -d "$RO" | grep -cE '%[xy]mm[0-9]' || true)
[ "$n" = 0 ] || fail "$n instructions use xmm/ymm in $RO"
ok "no xmm/ymm in the Rust object"

grep -qx 'include/public/v4v.h' "$TREE/xen/include/headers.chk" || fail "v4v.h not in the ANSI header check"
# Every structure of public/v4v.h is listed in xlat.lst, so compat/xlat.h
# has its CHECK_ macro, and v4v.c uses it (it built above).
V4V_STRUCTS="addr batch_ent fw_rule info iov msg_hdr register_ring ring ring_data ring_data_ent ring_id ring_info send_addr unregister_ring"
for s in $V4V_STRUCTS; do
    grep -qP "^\\?\\tv4v_$s\\t+v4v\\.h\$" "$TREE/xen/include/xlat.lst" || fail "v4v_$s not checked in xlat.lst"
    grep -q "^#define CHECK_v4v_$s \\\\\$" "$TREE/xen/include/compat/xlat.h" || fail "no CHECK_v4v_$s in compat/xlat.h"
    grep -q "^CHECK_v4v_$s;\$" "$TREE/xen/common/rust-hv/v4v.c" || fail "v4v.c does not use CHECK_v4v_$s"
done
n=$(grep -c '^struct xen_v4v_' "$TREE/xen/include/public/v4v.h")
[ "$n" = "$(echo $V4V_STRUCTS | wc -w)" ] || fail "public/v4v.h has $n structures, $(echo $V4V_STRUCTS | wc -w) checked"
ok "v4v.h in the ANSI header check, all $n V4V structures checked for compat guests (CHECK_v4v_*)"

grep -q '^CONFIG_XEN_IBT=y' "$OUT/config" || fail "IBT is off"
(cd "$TREE/xen" && bash tools/check-endbr.sh "$OUT/xen-syms") || fail "check-endbr.sh"
ok "check-endbr.sh with IBT"

bash xen-patches/export-series.sh "$ROOT/out/series"
CLEAN=$ROOT/build/xen/clean
rm -rf "$CLEAN"
bash xen-patches/fetch-xen.sh "$CLEAN" >/dev/null
n=$(ls "$ROOT"/out/series/ | grep -vc '^0000-' || true)
git -C "$CLEAN" -c user.name=t -c user.email=t@localhost am -q \
    $(ls "$ROOT"/out/series/0*.patch | grep -v '/0000-') || fail "git am"
applied=$(git -C "$CLEAN" rev-list --count pristine..HEAD)
[ "$applied" = "$n" ] || fail "git am applied $applied of $n patches"
[ "$(git -C "$TREE" rev-parse 'HEAD^{tree}')" = "$(git -C "$CLEAN" rev-parse 'HEAD^{tree}')" ] \
    || fail "the applied series differs from the built tree"
ok "series ($n patches) applies with git am on a clean tree, same tree as built"

# XSM and FLASK on, with the options: every C object of the series builds.
# The Rust object is the same as above and is not rebuilt here: cargo is
# replaced by true, so only rust-hv.o and the final link fail, and make -k
# goes on with everything else.
(cd "$CLEAN/xen" && make -s defconfig >/dev/null && cat "$ROOT/xen-patches/config" >> .config \
    && printf 'CONFIG_XSM=y\nCONFIG_XSM_FLASK=y\n' >> .config && make -s olddefconfig >/dev/null 2>&1) \
    || fail "configure with XSM_FLASK"
grep -q '^CONFIG_XSM_FLASK=y' "$CLEAN/xen/.config" || fail "XSM_FLASK not on"
(cd "$CLEAN/xen" && make -s -k -j"$(nproc)" CARGO=true >/dev/null 2>&1) || true
for o in xsm/dummy.o xsm/flask/hooks.o common/rust-hv/shim.o common/rust-hv/v4v.o common/domctl.o; do
    [ -f "$CLEAN/xen/$o" ] || fail "$o does not build with XSM_FLASK"
done
grep -q 'V4V__SEND' "$CLEAN/xen/xsm/flask/include/av_permissions.h" || fail "no FLASK v4v class"
(cd "$CLEAN/xen" && make -s distclean >/dev/null 2>&1) || true
ok "XSM and FLASK hooks of V4V and static_shm build"

# Options off: the hypervisor is unpatched behaviour (no Rust linked). Built
# in a separate output directory of the clean tree.
(cd "$CLEAN/xen" && make -s defconfig >/dev/null && make -s -j"$(nproc)" >/dev/null 2>&1) || fail "build with options off"
if nm "$CLEAN/xen/xen-syms" | grep rust_hv_ >/dev/null; then fail "Rust linked with the options off"; fi
rm -rf "$CLEAN"
ok "builds with the options off, nothing of Rust linked"
