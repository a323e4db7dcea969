#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the hypervisor at every commit of the series, with the features on
# (x86_64 defconfig + xen-patches/config), so that the series bisects: each
# patch must build with every configuration, not only the last one.
#
#   build-each.sh WORKDIR      (make series-build-each: build/series-each)
#
# WORKDIR gets a copy of the fetched Xen tree (build/xen/src, make xen first)
# with the series applied; each commit is checked out in turn and built
# incrementally. One line per commit, OK or FAIL with the build's last
# lines; exit status 1 if any failed. Takes a while: the Rust component is
# built (with its library from source) the first time a commit has it.
set -euo pipefail
die() { echo "build-each: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 WORKDIR"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SRC=$ROOT/build/xen/src
[ -d "$SRC/.git" ] || die "no fetched Xen tree in $SRC (make xen)"
W=$1
if [ ! -d "$W/.git" ]; then
    rm -rf "$W"
    git clone -q --no-checkout "$SRC" "$W"
    git -C "$W" fetch -q "$SRC" 'refs/tags/pristine:refs/tags/pristine'
    git -C "$W" checkout -q pristine
fi
bash "$HERE/apply.sh" "$W" >/dev/null
cd "$W/xen"
rc=0
for c in $(git rev-list --reverse pristine..HEAD); do
    git checkout -q "$c"
    if [ ! -f .config ]; then
        make -s defconfig >/dev/null
        cat "$HERE/config" >> .config
    fi
    make -s olddefconfig >/dev/null 2>&1
    subject=$(git log -1 --format=%s "$c")
    if make -s -j"$(nproc)" >"$W/build.log" 2>&1; then
        echo "OK   $subject"
    else
        echo "FAIL $subject"
        tail -n 15 "$W/build.log" | sed 's/^/     /'
        rc=1
    fi
done
exit $rc
