#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Obtains the pinned Xen source and unpacks it as a git tree with one commit
# ("pristine") that the series is applied on.
#
#   fetch-xen.sh DEST        unpack into DEST (a new git tree)
#   XEN_SRC=DIR fetch-xen.sh DEST
#                            copy an existing tree DIR instead of fetching
#
# The source is Debian bookworm's source package `xen` (the upstream orig
# tarball; Debian's own patches in debian/patches are not applied: they are
# packaging and tools changes, and the series is meant for upstream Xen).
# scripts/apt-source.sh downloads it with a private deb-src list derived at
# run time from the system's own apt sources, so the system's configuration
# is untouched.
# Downloads are cached under build/xen/dl and checked against pinned sha256.
set -euo pipefail

XEN_DEB_VERSION=4.17.5+72-g01140da4e8-1
XEN_UPSTREAM=4.17.5+72-g01140da4e8
declare -A SHA256=(
    [xen_${XEN_UPSTREAM}.orig.tar.xz]=53922f4d0a02c577f2ea9d63f65989cd88715779eebeed879ca1d314103ee06e
    [xen_${XEN_DEB_VERSION}.debian.tar.xz]=5bcf3812c64585e270e0b3fa6ee8fd16dff7b9bc0f61375d648c64672484c4d9
    [xen_${XEN_DEB_VERSION}.dsc]=f13956b67fb7a65707c2b0620d89b41ee5d203434dd7bb913017356791ee66c1
)
ORIG=xen_${XEN_UPSTREAM}.orig.tar.xz

die() { echo "fetch-xen: error: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: [XEN_SRC=DIR] $0 DEST"
DEST=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DL=${XEN_DL_DIR:-$ROOT/build/xen/dl}

verify() {
    local f ok=1
    for f in "${!SHA256[@]}"; do
        [ -f "$DL/$f" ] || { ok=0; continue; }
        echo "${SHA256[$f]}  $DL/$f" | sha256sum -c --quiet - >/dev/null 2>&1 || {
            echo "fetch-xen: sha256 mismatch: $DL/$f" >&2
            return 2
        }
    done
    [ $ok = 1 ]
}

fetch() {
    "$ROOT/scripts/apt-source.sh" "$DL" "xen=$XEN_DEB_VERSION" \
        || die "apt-get source xen=$XEN_DEB_VERSION failed (set XEN_SRC= to use an existing tree)"
}

if [ -e "$DEST" ]; then
    die "$DEST exists"
fi

if [ -n "${XEN_SRC:-}" ]; then
    [ -f "$XEN_SRC/xen/Makefile" ] || die "XEN_SRC=$XEN_SRC is not a Xen source tree (no xen/Makefile)"
    echo "fetch-xen: copying $XEN_SRC"
    mkdir -p "$DEST"
    tar -C "$XEN_SRC" --exclude=.git -cf - . | tar -C "$DEST" -xf -
else
    mkdir -p "$DL"
    rc=0; verify || rc=$?
    [ $rc = 2 ] && die "cached download does not match the pinned sha256 (remove $DL)"
    if [ $rc != 0 ]; then
        fetch
        verify || die "downloaded xen $XEN_DEB_VERSION does not match the pinned sha256"
    fi
    echo "fetch-xen: sha256 ok, unpacking $ORIG"
    mkdir -p "$DEST.tmp"
    tar -C "$DEST.tmp" -xJf "$DL/$ORIG"
    top=$(ls "$DEST.tmp")
    [ "$(echo "$top" | wc -l)" = 1 ] || die "unexpected layout of $ORIG"
    mv "$DEST.tmp/$top" "$DEST"
    rmdir "$DEST.tmp"
fi

cd "$DEST"
git init -q
git config user.name "rust-hv build"
git config user.email "rust-hv-build@localhost"
git config core.autocrlf false
# The tarball ships a .gitignore; add everything regardless so the tree is
# exactly the source.
git add -A -f . >/dev/null
git commit -q -m "Xen ${XEN_UPSTREAM} (pristine)" --no-verify
git tag pristine
echo "fetch-xen: $DEST ready at tag 'pristine'"
