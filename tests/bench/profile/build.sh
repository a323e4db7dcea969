#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the insn-prof QEMU plugin (insn-prof.c) for `make bench-xen-profile`.
#
#   build.sh OUT-DIR        -> OUT-DIR/insn-prof.so
#
# The plugin API header (include/qemu/qemu-plugin.h) is not in any Debian
# binary package, so it comes from Debian's source package of QEMU: the
# upstream tarball is fetched once by scripts/apt-source.sh (a private
# deb-src list; the system's configuration is not touched), checked against
# a pinned sha256, and only that header is extracted. Nothing is installed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:?usage: build.sh OUT-DIR}" && cd "$1" && pwd)
DL=$OUT/dl
# QEMU 7.2 (Debian bookworm's qemu-system-x86): plugin API version 1. Every
# Debian revision of 7.2 ships the same upstream tarball.
ORIG=qemu_7.2+dfsg.orig.tar.xz
ORIG_SHA256=91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f
HEADER=qemu-7.2.0/include/qemu/qemu-plugin.h

die() { echo "insn-prof build: error: $*" >&2; exit 1; }

have_orig() { [ -f "$DL/$ORIG" ] && echo "$ORIG_SHA256  $DL/$ORIG" | sha256sum -c --quiet - >/dev/null 2>&1; }

mkdir -p "$DL"
if ! have_orig; then
    "$HERE/../../../scripts/apt-source.sh" "$DL" qemu \
        || die "apt-get source qemu failed"
    have_orig || die "$DL/$ORIG missing or not the pinned QEMU 7.2 tarball (sha256 $ORIG_SHA256)"
fi
INC=$OUT/include
if [ ! -f "$INC/qemu-plugin.h" ]; then
    mkdir -p "$INC"
    tar -xJf "$DL/$ORIG" -O "$HEADER" > "$INC/qemu-plugin.h.new"
    mv "$INC/qemu-plugin.h.new" "$INC/qemu-plugin.h"
fi
# shellcheck disable=SC2046 # pkg-config's words are meant to split
${CC:-cc} -shared -fPIC -O2 -Wall -Wextra -Werror -I"$INC" $(pkg-config --cflags glib-2.0) \
    -o "$OUT/insn-prof.so.new" "$HERE/insn-prof.c" $(pkg-config --libs glib-2.0)
mv "$OUT/insn-prof.so.new" "$OUT/insn-prof.so"
echo "insn-prof build: $OUT/insn-prof.so"
