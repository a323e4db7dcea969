#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the guest side (linux/README.md) against Debian bookworm's headers
# for the exact kernel the e2e host boots, without installing anything:
#   OUT/*.ko            every module linux/Kbuild lists (W=1, no warnings
#                       allowed; sparse too when it is installed)
#   OUT/tools/NAME      every linux/tools/NAME.c, a static binary
#
#   build.sh OUT
#
# linux-headers-ABI, its -common package and linux-kbuild come with
# `apt-get download` into build/e2e/debs (shared with tests/e2e/images.sh)
# and are unpacked into one private root, build/linux/root-ABI.
set -euo pipefail
die() { echo "linux-build: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
B=$ROOT/build/linux
DEBS=$ROOT/build/e2e/debs
mkdir -p "$B"

# shellcheck source=../scripts/debian-kernel.sh
. "$ROOT/scripts/debian-kernel.sh"
abi=$(debian_kernel_abi)

# --- headers: linux-headers-ABI and what it depends on, unpacked once --------
H=$B/root-$abi
KDIR=$H/usr/src/linux-headers-$abi
if [ ! -f "$KDIR/.config" ]; then
    hdeb=$(debian_fetch "linux-headers-$abi")
    debs=$hdeb
    # linux-headers-ABI-common (= version), linux-kbuild-X.Y (>= version).
    for p in $(dpkg-deb -f "$hdeb" Depends | tr ',' '\n' | awk '$1 ~ /^linux-(headers|kbuild)-/ { print $1 }'); do
        debs="$debs $(debian_fetch "$p")"
    done
    rm -rf "$H.tmp" && mkdir -p "$H.tmp"
    for d in $debs; do dpkg-deb -x "$d" "$H.tmp"; done
    # The top Makefile includes the -common tree by its absolute path.
    sed -i "s|^include /usr/src/|include $H/usr/src/|" "$H.tmp/usr/src/linux-headers-$abi/Makefile"
    rm -rf "$H" && mv "$H.tmp" "$H"
fi
grep -q "^include $H/" "$KDIR/Makefile" || die "$KDIR/Makefile does not include the private -common tree"
echo "linux-build: kernel $abi, headers in $KDIR"

# --- modules -------------------------------------------------------------------
# Built in a copy, so that kbuild's output stays out of the source tree.
M=$B/modules
rm -rf "$M" && mkdir -p "$M"
(cd "$HERE" && find . -path ./tools -prune -o -type f \( -name Kbuild -o -name '*.[ch]' \) -print |
    while read -r f; do mkdir -p "$M/$(dirname "$f")" && cp "$f" "$M/$f"; done)
# The V4V ABI is written once, in hypercall-abi; xen-public/xen.h maps its
# include of Xen's xen.h to Linux's.
cp "$ROOT/hypercall-abi/include/public/v4v.h" "$M/xen-public/v4v.h"
sparse=()
command -v sparse >/dev/null 2>&1 && sparse=(C=2 CHECK=sparse)
log=$B/modules.log
make -C "$KDIR" M="$M" W=1 "${sparse[@]}" -j"$(nproc)" modules >"$log" 2>&1 || {
    cat "$log" >&2
    die "kbuild failed (log in $log)"
}
if grep -E 'warning|error' "$log" >&2; then
    die "the modules do not build cleanly with W=1${sparse:+ and sparse} (log in $log)"
fi
rm -f "$OUT"/*.ko
n=0
for ko in $(find "$M" -name '*.ko'); do cp "$ko" "$OUT/" && n=$((n + 1)); done
[ $n -gt 0 ] || die "kbuild made no module"
echo "linux-build: $n module(s), W=1${sparse:+, sparse}: $(cd "$OUT" && ls ./*.ko | xargs -n 1 basename | tr '\n' ' ')"

# --- tools ----------------------------------------------------------------------
mkdir -p "$OUT/tools"
for c in "$HERE"/tools/*.c; do
    [ -f "$c" ] || continue
    n=$(basename "$c" .c)
    gcc -static -O2 -Wall -Wextra -Werror -o "$OUT/tools/$n" "$c" || die "building $c failed"
done
echo "linux-build: tools: $(ls "$OUT/tools" | tr '\n' ' ')"
