#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# make xen: fetch (once), apply the series, configure, build the hypervisor
# and copy xen.gz, xen-syms and the .config to OUT.
#
#   build-xen.sh OUT            (XEN_SRC=DIR to start from an existing tree)
#   XEN_CONFIG=FILE             Kconfig fragment (default: xen-patches/config)
#   XEN_BUILD_DIR=DIR           where the tree lives (default: build/xen); the
#                               download cache stays build/xen/dl either way
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${1:?usage: build-xen.sh OUT}
B=${XEN_BUILD_DIR:-$ROOT/build/xen}
# Both may be given relative to the caller's directory; the build cds away.
mkdir -p "$B" "$OUT"
B=$(cd "$B" && pwd)
OUT=$(cd "$OUT" && pwd)
TREE=$B/src
FRAG=${XEN_CONFIG:-$HERE/config}

[ -d "$TREE/.git" ] || "$HERE/fetch-xen.sh" "$TREE"
"$HERE/apply.sh" "$TREE"

cd "$TREE/xen"
# Reconfigure when the fragment changed (or was never applied).
if ! cmp -s "$FRAG" "$B/config.applied" || [ ! -f .config ]; then
    make -s defconfig >/dev/null
    cat "$FRAG" >> .config
    make -s olddefconfig >/dev/null 2>&1
    cp "$FRAG" "$B/config.applied"
fi
start=$(date +%s)
make -s -j"$(nproc)" 2>&1 | { grep -v -e 'Assembler messages' -e 'Warning: value 0x.* truncated' -e '^ Xen [0-9]' || true; }
[ "${PIPESTATUS[0]}" = 0 ] || { echo "build-xen: make failed" >&2; exit 1; }
echo "build-xen: hypervisor built in $(( $(date +%s) - start ))s"
mkdir -p "$OUT"
cp xen.gz xen-syms "$OUT/"
cp .config "$OUT/config"
echo "build-xen: $OUT/xen.gz"
