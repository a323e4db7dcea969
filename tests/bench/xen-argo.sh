#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The Xen of `make bench-xen`: the series plus Argo (CONFIG_ARGO=y), built in
# its own tree so the `make xen` tree (build/xen) is left alone. The pinned
# source comes from the same download cache (build/xen/dl) through
# xen-patches/fetch-xen.sh; the series is applied by xen-patches/apply.sh.
#
#   xen-argo.sh OUT        -> OUT/xen.gz, OUT/xen-syms, OUT/config
#   XEN_SRC=DIR            start from an existing pristine tree (as make xen)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "${1:?usage: xen-argo.sh OUT}" && cd "$1" && pwd)
B=$ROOT/build/xen-argo
TREE=$B/src
mkdir -p "$B"

# The series' fragment plus Argo (UNSUPPORTED, which the fragment sets).
FRAG=$B/config.fragment
{ cat "$ROOT/xen-patches/config"; echo "CONFIG_ARGO=y"; } > "$FRAG.new"
mv -f "$FRAG.new" "$FRAG"

[ -d "$TREE/.git" ] || XEN_DL_DIR=$ROOT/build/xen/dl "$ROOT/xen-patches/fetch-xen.sh" "$TREE"
"$ROOT/xen-patches/apply.sh" "$TREE"

cd "$TREE/xen"
if ! cmp -s "$FRAG" "$B/config.applied" || [ ! -f .config ]; then
    make -s defconfig >/dev/null
    cat "$FRAG" >> .config
    make -s olddefconfig >/dev/null 2>&1
    cp "$FRAG" "$B/config.applied"
fi
grep -q '^CONFIG_ARGO=y' .config || { echo "xen-argo: CONFIG_ARGO did not stick" >&2; exit 1; }
start=$(date +%s)
make -s -j"$(nproc)" 2>&1 | { grep -v -e 'Assembler messages' -e 'Warning: value 0x.* truncated' -e '^ Xen [0-9]' || true; }
[ "${PIPESTATUS[0]}" = 0 ] || { echo "xen-argo: make failed" >&2; exit 1; }
echo "xen-argo: hypervisor built in $(( $(date +%s) - start ))s"
mkdir -p "$OUT"
cp xen.gz xen-syms "$OUT/"
cp .config "$OUT/config"
echo "xen-argo: $OUT/xen.gz"
