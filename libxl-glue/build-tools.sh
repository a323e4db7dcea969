#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the patched toolstack (libxenctrl, libxlutil, libxl, xl) into
# out/tools, from a Xen tree of its own so that it never races the
# hypervisor build.
#
#   build-tools.sh TREE DESTDIR
#
# TREE is made with xen-patches/fetch-xen.sh and patched with
# xen-patches/apply.sh, whose series must contain @tools-sshm.
set -euo pipefail
die() { echo "tools: error: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 TREE DESTDIR"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TREE=$1
DEST=$(mkdir -p "$2" && cd "$2" && pwd)

[ -f "$ROOT/xen-patches/series" ] || die "xen-patches/series missing (the Xen build part is not there yet)"
grep -q '^@tools-sshm' "$ROOT/xen-patches/series" || die "xen-patches/series lacks @tools-sshm"

[ -d "$TREE/.git" ] || bash "$ROOT/xen-patches/fetch-xen.sh" "$TREE"
bash "$ROOT/xen-patches/apply.sh" "$TREE"

cd "$TREE"
if [ ! -f config/Tools.mk ] || [ configure -nt config/Tools.mk ]; then
    ./configure --prefix=/usr --disable-stubdom --disable-qemu-traditional \
        --disable-rombios --disable-seabios --disable-ipxe --disable-ocamltools \
        --disable-docs --disable-golang --with-system-qemu=/usr/bin/qemu-system-i386
fi
# Only what xl needs: the headers, the libraries and xl itself.
for d in tools/include tools/libs tools/xl; do
    make -s -C "$d" -j"$(nproc)" all
    make -s -C "$d" install DESTDIR="$DEST"
done
echo "tools: installed into $DEST"
