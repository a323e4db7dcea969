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
#  6. make series applies with git am on a clean tree.
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

# Options off: the hypervisor is unpatched behaviour (no Rust linked). Built
# in a separate output directory of the clean tree.
(cd "$CLEAN/xen" && make -s defconfig >/dev/null && make -s -j"$(nproc)" >/dev/null 2>&1) || fail "build with options off"
if nm "$CLEAN/xen/xen-syms" | grep rust_hv_ >/dev/null; then fail "Rust linked with the options off"; fi
rm -rf "$CLEAN"
ok "builds with the options off, nothing of Rust linked"
