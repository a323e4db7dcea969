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
TREE=$(mkdir -p "$(dirname "$1")" && cd "$(dirname "$1")" && pwd)/$(basename "$1")
DEST=$(mkdir -p "$2" && cd "$2" && pwd)

[ -d "$TREE/.git" ] || bash "$ROOT/xen-patches/fetch-xen.sh" "$TREE"
bash "$ROOT/xen-patches/apply.sh" "$TREE"

cd "$TREE"
# Configure once; again only when the flags change. The configured tree is
# kept, so a rerun with nothing changed rebuilds nothing (apply.sh rewrites
# only the files whose content changed).
FLAGS="--prefix=/usr --disable-stubdom --disable-qemu-traditional \
--disable-rombios --disable-seabios --disable-ipxe --disable-ocamltools \
--disable-docs --disable-golang --with-system-qemu=/usr/bin/qemu-system-i386"
LOG=$TREE.log STAMP=$TREE.configured
: > "$LOG"
if [ ! -f config/Tools.mk ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$FLAGS" ]; then
    echo "tools: configure (log: $LOG)"
    # shellcheck disable=SC2086 # FLAGS is a list of words
    ./configure $FLAGS >> "$LOG" 2>&1 || { tail -30 "$LOG" >&2; die "configure failed"; }
    echo "$FLAGS" > "$STAMP"
fi
# What xl needs (the headers, the libraries, xl itself) and the daemons and
# helpers xencommons starts on a host (xenstored, xenconsoled,
# xen-init-dom0), which the e2e test's dom0 runs, and tools/misc, where
# xen-v4v (V4V firewall rules and statistics) lives. iasl's warnings about the
# DSDT and make's chatter go to the log.
DIRS="tools/include tools/libs tools/xl tools/xenstore tools/console tools/helpers tools/misc"
start=$(date +%s)
for d in $DIRS; do
    make -s -C "$d" -j"$(nproc)" all >> "$LOG" 2>&1 \
        || { grep -B2 -A6 -E 'error:|\*\*\*' "$LOG" | tail -60 >&2; die "make -C $d failed (log: $LOG)"; }
done
for d in $DIRS; do
    make -s -C "$d" install DESTDIR="$DEST" >> "$LOG" 2>&1 || { tail -30 "$LOG" >&2; die "make -C $d install failed"; }
done
echo "tools: built in $(( $(date +%s) - start ))s, installed into $DEST"
